/* SPDX-License-Identifier: MIT */
/* System-call helpers that retry what must be retried and bound what must be
 * bounded; nothing here logs. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"

int loop_write(int fd, const void *data, size_t size) {
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -EIO;
                p += n;
                size -= (size_t)n;
        }
        return 0;
}

ssize_t loop_read(int fd, void *data, size_t size) {
        uint8_t *p = data;
        size_t done = 0;

        while (done < size) {
                ssize_t n = read(fd, p + done, size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        return (ssize_t)done;
}

int read_full_fd(int fd, size_t max, uint8_t **ret_data, size_t *ret_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t allocated, size = 0;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;

        /* The size may change under us: read until EOF, bounded by @max. */
        allocated = (size_t)st.st_size + 1;
        buf = malloc(allocated);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (size == allocated) {
                        uint8_t *nb;
                        if (allocated > max)
                                return -EFBIG;
                        allocated = MIN(allocated * 2, max + 1);
                        nb = realloc(buf, allocated);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                n = read(fd, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                size += (size_t)n;
        }
        if (size > max)
                return -EFBIG;

        *ret_data = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int safe_atou64(const char *s, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -errno;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int safe_atou(const char *s, unsigned *ret) {
        uint64_t v;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT_MAX)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

int parse_seconds_usec(const char *s, uint64_t *ret_usec) {
        double d;
        char *end;

        if (!s || *s == '\0' || *s == '-' || *s == ' ')
                return -EINVAL;
        errno = 0;
        d = strtod(s, &end);
        if (errno != 0 || *end != '\0' || !(d >= 0) || d > 1e9)
                return -EINVAL;
        *ret_usec = (uint64_t)(d * 1e6);
        return 0;
}

uint64_t now_usec(int clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool path_is_absolute(const char *p) {
        return p && p[0] == '/';
}

char *path_join(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        bool slash = la > 0 && a[la - 1] == '/';
        char *r = malloc(la + lb + 2);

        if (!r)
                return NULL;
        memcpy(r, a, la);
        if (!slash)
                r[la++] = '/';
        memcpy(r + la, b, lb + 1);
        return r;
}

int find_executable(const char *name, char **ret) {
        const char *path;

        if (strchr(name, '/')) {
                char *r;
                if (access(name, X_OK) < 0)
                        return negative_errno();
                if (name[0] == '/')
                        r = strdup(name);
                else {
                        char cwd[PATH_MAX];
                        if (!getcwd(cwd, sizeof(cwd)))
                                return negative_errno();
                        r = path_join(cwd, name);
                }
                if (!r)
                        return -ENOMEM;
                *ret = r;
                return 0;
        }

        path = getenv("PATH");
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                size_t n = strcspn(path, ":");
                _cleanup_free_ char *dir = strndup(path, n), *full = NULL;
                struct stat st;

                if (!dir)
                        return -ENOMEM;
                full = path_join(n > 0 ? dir : ".", name);
                if (!full)
                        return -ENOMEM;
                if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0) {
                        if (full[0] != '/') {
                                char cwd[PATH_MAX];
                                if (!getcwd(cwd, sizeof(cwd)))
                                        return negative_errno();
                                *ret = path_join(cwd, full);
                                return *ret ? 0 : -ENOMEM;
                        }
                        *ret = TAKE_PTR(full);
                        return 0;
                }
                path += n;
                if (*path == ':')
                        path++;
        }
        return -ENOENT;
}

int error_message(char **ret_message, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(ret_message, fmt, ap) < 0)
                *ret_message = NULL;
        va_end(ap);
        return error;
}
