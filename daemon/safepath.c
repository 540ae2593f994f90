/* SPDX-License-Identifier: MIT */
/* Component-by-component directory walking with O_NOFOLLOW (see safepath.h). */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "safepath.h"

int safepath_canonicalize(const char *path, char **ret) {
        char *r = realpath(path, NULL);

        if (!r)
                return negative_errno();
        *ret = r;
        return 0;
}

/* Walks the first @len bytes of absolute @path. */
static int open_dir_prefix(const char *path, size_t len, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        size_t i = 0;

        if (len == 0 || path[0] != '/')
                return -EINVAL;
        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();

        while (i < len) {
                char name[NAME_MAX + 1];
                size_t n;
                int nfd;

                while (i < len && path[i] == '/')
                        i++;
                if (i >= len)
                        break;
                n = strcspn(path + i, "/");
                if (i + n > len)
                        n = len - i;
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(name, path + i, n);
                name[n] = '\0';
                i += n;
                /* A canonical path holds neither "." nor ".."; refuse them
                 * rather than reason about them. */
                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        return -EINVAL;
                nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0)
                        return negative_errno();
                safe_close(fd);
                fd = nfd;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int safepath_open_dir(const char *path, int *ret_fd) {
        return open_dir_prefix(path, strlen(path), ret_fd);
}

int safepath_open_parent(const char *path, int *ret_dir_fd, const char **ret_name) {
        const char *slash = strrchr(path, '/');
        int r, fd;

        if (!slash || path[0] != '/' || slash[1] == '\0')
                return -EINVAL;
        if (strlen(slash + 1) > NAME_MAX)
                return -ENAMETOOLONG;
        if (strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
                return -EINVAL;
        r = open_dir_prefix(path, slash == path ? 1 : (size_t)(slash - path), &fd);
        if (r < 0)
                return r;
        *ret_dir_fd = fd;
        *ret_name = slash + 1;
        return 0;
}
