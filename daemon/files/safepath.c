/* SPDX-License-Identifier: MIT */
/* Component-by-component directory walking with O_NOFOLLOW (see safepath.h). */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "safepath.h"

int safepath_canonicalize(const char *path, char **ret) {
        char *r = realpath(path, NULL);

        if (!r)
                return negative_errno();
        *ret = r;
        return 0;
}

int safepath_canonicalize_named(const char *path, bool allow_missing, char **ret) {
        _cleanup_free_ char *dir = NULL, *real = NULL;
        const char *slash = strrchr(path, '/');
        struct stat st;
        char *r;
        int k;

        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return safepath_canonicalize(path, ret);
        if (!slash || slash[1] == '\0' || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
                return safepath_canonicalize(path, ret);
        dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
        if (!dir)
                return -ENOMEM;
        k = safepath_canonicalize(dir, &real);
        if (k == -ENOENT && allow_missing && slash != path)
                k = safepath_canonicalize_named(dir, true, &real);
        if (k < 0)
                return k;
        r = malloc(strlen(real) + strlen(slash) + 1);
        if (!r)
                return -ENOMEM;
        strcpy(r, strcmp(real, "/") == 0 ? "" : real);
        strcat(r, slash);
        *ret = r;
        return 0;
}

/* Walks the first @len bytes of absolute @path; @mode is O_RDONLY, or
 * O_PATH for a directory only looked up in (which needs search rights on
 * the way, not read rights). */
static int open_dir_prefix(const char *path, size_t len, int mode, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        size_t i = 0;

        if (len == 0 || path[0] != '/')
                return -EINVAL;
        fd = open("/", mode | O_DIRECTORY | O_CLOEXEC);
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
                nfd = openat(fd, name, mode | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0)
                        return negative_errno();
                safe_close(fd);
                fd = nfd;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int safepath_open_dir(const char *path, int *ret_fd) {
        return open_dir_prefix(path, strlen(path), O_RDONLY, ret_fd);
}

int safepath_open_dir_path(const char *path, int *ret_fd) {
        return open_dir_prefix(path, strlen(path), O_PATH, ret_fd);
}

/* A small cache of the directories walked last: the pools prepare the
 * files of one directory one after another, and a walk costs a system call
 * per component. A cached fd is reused only while the path still names the
 * same directory (device and inode), so a directory that was replaced, or a
 * path that now leads elsewhere, is walked again.
 *
 * The cache is shared by all threads, not one entry per thread, so that the
 * event loop can empty it: every fd kept here pins a directory, and with it
 * the file system it is on. An installer unmounts its target as soon as its
 * compile is answered, so the requests empty the cache before they answer
 * (safepath_forget_cached()); a request running at the same time only walks
 * its next directory again. The LRU keeps it bounded. */
#define SAFEPATH_CACHE_SLOTS 16

typedef struct CachedDir {
        char *path; /* NULL: a free slot, and then @fd means nothing */
        size_t len;
        int fd;
        uint64_t used;
} CachedDir;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static CachedDir cache[SAFEPATH_CACHE_SLOTS];
static uint64_t cache_clock;

/* A free slot (zeroed, path NULL) holds no fd: its fd field is not -1. */
static void cached_dir_clear(CachedDir *c) {
        if (!c->path)
                return;
        free(c->path);
        safe_close(c->fd);
        *c = (CachedDir){};
}

static int cached_lookup(const char *path, size_t len) {
        struct stat st, cst;
        char buf[PATH_MAX];
        int fd = -1;

        if (len >= sizeof(buf))
                return -1;
        pthread_mutex_lock(&cache_lock);
        for (size_t i = 0; i < ELEMENTSOF(cache); i++)
                if (cache[i].path && cache[i].len == len && memcmp(cache[i].path, path, len) == 0) {
                        fd = fcntl(cache[i].fd, F_DUPFD_CLOEXEC, 3);
                        cache[i].used = ++cache_clock;
                        break;
                }
        pthread_mutex_unlock(&cache_lock);
        if (fd < 0)
                return -1;
        /* Checked on our own copy, outside the lock: the stat() walks the
         * path and may be slow. */
        memcpy(buf, path, len);
        buf[len] = '\0';
        if (stat(buf, &st) < 0 || fstat(fd, &cst) < 0 || st.st_dev != cst.st_dev ||
            st.st_ino != cst.st_ino || !S_ISDIR(st.st_mode)) {
                safe_close(fd);
                return -1;
        }
        return fd;
}

static void cached_store(const char *path, size_t len, int fd) {
        CachedDir *slot = NULL;
        char *copy;
        int dup_fd;

        if (len >= PATH_MAX)
                return;
        copy = strndup(path, len);
        if (!copy)
                return;
        dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0) {
                free(copy);
                return;
        }
        pthread_mutex_lock(&cache_lock);
        for (size_t i = 0; i < ELEMENTSOF(cache); i++) {
                CachedDir *c = &cache[i];
                if (c->path && c->len == len && memcmp(c->path, path, len) == 0) {
                        slot = c; /* another thread walked it meanwhile: replace */
                        break;
                }
                if (!slot || (slot->path && (!c->path || c->used < slot->used)))
                        slot = c;
        }
        cached_dir_clear(slot);
        *slot = (CachedDir){ .path = copy, .len = len, .fd = dup_fd, .used = ++cache_clock };
        pthread_mutex_unlock(&cache_lock);
}

void safepath_forget_cached(void) {
        pthread_mutex_lock(&cache_lock);
        for (size_t i = 0; i < ELEMENTSOF(cache); i++)
                cached_dir_clear(&cache[i]);
        pthread_mutex_unlock(&cache_lock);
}

int safepath_open_parent(const char *path, int *ret_dir_fd, const char **ret_name) {
        const char *slash = strrchr(path, '/');
        size_t len;
        int r, fd;

        if (!slash || path[0] != '/' || slash[1] == '\0')
                return -EINVAL;
        if (strlen(slash + 1) > NAME_MAX)
                return -ENAMETOOLONG;
        if (strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
                return -EINVAL;
        len = slash == path ? 1 : (size_t)(slash - path);
        fd = cached_lookup(path, len);
        if (fd < 0) {
                r = open_dir_prefix(path, len, O_RDONLY, &fd);
                if (r < 0)
                        return r;
                cached_store(path, len, fd);
        }
        *ret_dir_fd = fd;
        *ret_name = slash + 1;
        return 0;
}
