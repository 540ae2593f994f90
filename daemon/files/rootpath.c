/* SPDX-License-Identifier: MIT */
/* Resolving a path inside another root (see rootpath.h).
 *
 * realpath(3) would resolve an absolute symlink inside a chroot against the
 * host's / — /target/usr/lib/python3/dist-packages/x -> /usr/share/x would
 * name the host's /usr/share/x — so the walk here is our own: one component
 * at a time from a descriptor of the root, with O_NOFOLLOW, reading each
 * symlink and splicing its target into what is left (an absolute target
 * starts again at the root). The kernel's RESOLVE_IN_ROOT would do the same
 * but clamps a ".." at the root to the root, as chroot does; an installer's
 * path that climbs out of its target is a mistake or an attack, and is
 * refused here with EXDEV instead of quietly meaning something else.
 *
 * The result is a string, ROOT + the canonical inside path. Later opens walk
 * that string component by component with O_NOFOLLOW again (safepath.c), so
 * a symlink swapped in after this resolution is refused, not followed. A
 * mount point inside the root that shows a tree from elsewhere on the host
 * (a bind mount) is not an escape: it is where the chroot's own processes
 * would find that tree too. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "rootpath.h"
#include "safepath.h"

/* As the kernel's bound on symlinks in one lookup. */
#define ROOTPATH_MAX_LINKS 40

static char *mfree_str(char *s) {
        free(s);
        return NULL;
}

typedef struct Chase {
        int root_fd;
        char inside[PATH_MAX]; /* canonical so far, "" for the root itself */
        size_t len;
        int fd; /* the directory @inside names */
} Chase;

static int chase_reopen(Chase *c) {
        int fd = fcntl(c->root_fd, F_DUPFD_CLOEXEC, 3);

        /* After "..": down again from the root, one name at a time with
         * O_NOFOLLOW — the path is canonical, free of symlinks. */
        for (size_t i = 0; fd >= 0 && i < c->len;) {
                char name[NAME_MAX + 1];
                size_t n;
                int nfd;

                i++; /* the '/' */
                n = strcspn(c->inside + i, "/");
                memcpy(name, c->inside + i, n);
                name[n] = '\0';
                i += n;
                nfd = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                safe_close(fd);
                fd = nfd;
        }
        if (fd < 0)
                return negative_errno();
        safe_close(c->fd);
        c->fd = fd;
        return 0;
}

static int chase_append(Chase *c, const char *name, size_t n) {
        if (c->len + 1 + n >= sizeof(c->inside))
                return -ENAMETOOLONG;
        c->inside[c->len++] = '/';
        memcpy(c->inside + c->len, name, n);
        c->len += n;
        c->inside[c->len] = '\0';
        return 0;
}

/* True when @rest still holds a component that is neither "" nor ".". */
static bool has_more(const char *rest) {
        for (;;) {
                size_t n;

                rest += strspn(rest, "/");
                if (*rest == '\0')
                        return false;
                n = strcspn(rest, "/");
                if (!(n == 1 && rest[0] == '.'))
                        return true;
                rest += n;
        }
}

/* Walks @path inside @root_fd. @follow_last: resolve a symlink in the last
 * component too. @allow_missing: a component that does not exist ends the
 * walk, and what is left is kept as named (without "..", which could not
 * be resolved). */
static int chase(int root_fd, const char *path, bool follow_last, bool allow_missing, char *ret_inside,
                 size_t *ret_len) {
        _cleanup_free_ char *todo = NULL;
        Chase c = { .root_fd = root_fd, .fd = -1 };
        unsigned links = 0;
        const char *p;
        int r;

        todo = strdup(path);
        if (!todo)
                return -ENOMEM;
        r = chase_reopen(&c);
        if (r < 0)
                return r;
        p = todo;
        for (;;) {
                char name[NAME_MAX + 1];
                struct stat st;
                size_t n;
                bool last;

                p += strspn(p, "/");
                if (*p == '\0')
                        break;
                n = strcspn(p, "/");
                if (n > NAME_MAX) {
                        r = -ENAMETOOLONG;
                        goto out;
                }
                memcpy(name, p, n);
                name[n] = '\0';
                p += n;
                last = !has_more(p);

                if (strcmp(name, ".") == 0)
                        continue;
                if (strcmp(name, "..") == 0) {
                        char *slash;

                        if (c.len == 0) {
                                r = -EXDEV; /* above the root */
                                goto out;
                        }
                        slash = strrchr(c.inside, '/');
                        c.len = (size_t)(slash - c.inside);
                        c.inside[c.len] = '\0';
                        r = chase_reopen(&c);
                        if (r < 0)
                                goto out;
                        continue;
                }

                if (fstatat(c.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = negative_errno();
                        if ((r == -ENOENT || r == -ENOTDIR) && allow_missing && !strstr(p, "/..") &&
                            strcmp(p, "..") != 0) {
                                /* Kept as named: the rest is plain names. */
                                r = chase_append(&c, name, n);
                                while (r >= 0 && *(p += strspn(p, "/")) != '\0') {
                                        size_t m = strcspn(p, "/");

                                        if (!(m == 1 && p[0] == '.'))
                                                r = chase_append(&c, p, m);
                                        p += m;
                                }
                        }
                        goto out;
                }
                if (S_ISLNK(st.st_mode) && (!last || follow_last)) {
                        char target[PATH_MAX];
                        ssize_t k;
                        char *next;

                        if (++links > ROOTPATH_MAX_LINKS) {
                                r = -ELOOP;
                                goto out;
                        }
                        k = readlinkat(c.fd, name, target, sizeof(target) - 1);
                        if (k < 0) {
                                r = negative_errno();
                                goto out;
                        }
                        if (k == 0) {
                                r = -ENOENT;
                                goto out;
                        }
                        target[k] = '\0';
                        if (target[0] == '/') {
                                c.len = 0;
                                c.inside[0] = '\0';
                                r = chase_reopen(&c);
                                if (r < 0)
                                        goto out;
                        }
                        next = malloc((size_t)k + 1 + strlen(p) + 1);
                        if (!next) {
                                r = -ENOMEM;
                                goto out;
                        }
                        strcpy(next, target);
                        strcat(next, "/");
                        strcat(next, p);
                        free(todo);
                        todo = next;
                        p = todo;
                        continue;
                }
                r = chase_append(&c, name, n);
                if (r < 0)
                        goto out;
                if (S_ISDIR(st.st_mode)) {
                        int fd = openat(c.fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                        if (fd < 0) {
                                r = negative_errno();
                                goto out;
                        }
                        safe_close(c.fd);
                        c.fd = fd;
                } else if (!last) {
                        r = -ENOTDIR;
                        goto out;
                }
        }
        r = 0;
out:
        safe_close(c.fd);
        if (r >= 0) {
                memcpy(ret_inside, c.inside, c.len + 1);
                *ret_len = c.len;
        }
        return r;
}

/* Opens canonical @root as safepath_open_dir() does, one name at a time
 * without following links, but with O_PATH: a caller whose rights we take
 * needs to search the directories on the way, not to read them. */
static int open_root(const char *root, int *ret_fd) {
        _cleanup_close_ int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        const char *p = root;

        if (fd < 0)
                return negative_errno();
        if (root[0] != '/')
                return -EINVAL;
        for (;;) {
                char name[NAME_MAX + 1];
                size_t n;
                int nfd;

                p += strspn(p, "/");
                if (*p == '\0')
                        break;
                n = strcspn(p, "/");
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(name, p, n);
                name[n] = '\0';
                p += n;
                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        return -EINVAL; /* canonical: it holds neither */
                nfd = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0)
                        return negative_errno();
                safe_close(fd);
                fd = nfd;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int chase_in(const char *root, const char *path, bool follow_last, bool allow_missing, char **ret) {
        _cleanup_close_ int root_fd = -1;
        char inside[PATH_MAX];
        size_t len, rlen = strlen(root);
        char *s;
        int r;

        if (path[0] != '/')
                return -EINVAL;
        r = open_root(root, &root_fd);
        if (r < 0)
                return r;
        r = chase(root_fd, path, follow_last, allow_missing, inside, &len);
        if (r < 0)
                return r;
        if (rlen + len >= PATH_MAX)
                return -ENAMETOOLONG;
        s = malloc(rlen + len + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, root, rlen);
        memcpy(s + rlen, inside, len + 1);
        *ret = s;
        return 0;
}

int rootpath_canonicalize(const char *root, const char *path, char **ret) {
        if (!root)
                return safepath_canonicalize(path, ret);
        return chase_in(root, path, true, false, ret);
}

int rootpath_canonicalize_named(const char *root, const char *path, bool allow_missing, char **ret) {
        _cleanup_free_ char *full = NULL;
        struct stat st;
        int r;

        if (!root)
                return safepath_canonicalize_named(path, allow_missing, ret);
        /* A directory fully; anything else by its directory. */
        r = chase_in(root, path, true, false, &full);
        if (r >= 0 && stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
                *ret = TAKE_PTR(full);
                return 0;
        }
        if (r == -EXDEV)
                return r;
        return chase_in(root, path, false, allow_missing, ret);
}

int rootpath_join(const char *peer_root, const char *requested, char **ret) {
        _cleanup_free_ char *root = NULL;
        struct stat st;
        int r;

        if (!requested) {
                root = peer_root ? strdup(peer_root) : NULL;
                if (peer_root && !root)
                        return -ENOMEM;
                *ret = TAKE_PTR(root);
                return 0;
        }
        r = rootpath_canonicalize(peer_root, requested, &root);
        if (r < 0)
                return r;
        if (stat(root, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if (strcmp(root, "/") == 0)
                root = mfree_str(root);
        *ret = TAKE_PTR(root);
        return 0;
}

size_t rootpath_prefix_len(const char *root) {
        return root ? strlen(root) : 0;
}

const char *rootpath_inside(const char *root, const char *host) {
        size_t n = rootpath_prefix_len(root);

        if (!host || n == 0 || strncmp(host, root, n) != 0)
                return host;
        if (host[n] == '\0')
                return "/";
        if (host[n] != '/')
                return host;
        return host + n;
}
