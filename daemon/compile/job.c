/* SPDX-License-Identifier: MIT */
/* One compile job and its two blocking stages.
 *
 * Prepare (I/O thread): open the source relative to its directory fd, which
 * was reached without following symlinks (a source that is itself a
 * symlink is opened as its owner, see below); take flock(LOCK_EX|LOCK_NB) on it
 * so that a cooperating writer in another process never writes its .pyc at
 * the same time (a busy lock returns -EAGAIN and the pool retries later,
 * bounded); read it whole; and unless forced, decide whether the existing
 * .pyc is current as the importer would. The lock is held until the commit
 * stage has renamed the new .pyc into place.
 *
 * Commit (I/O thread): create __pycache__ if needed (never through a
 * symlink; again if a clean removed it meanwhile) and write the .pyc
 * atomically (writer.c). An explicit target (the Python module's cfile) is
 * written in its own directory instead, which exists already (the client
 * creates it, as py_compile does) and is walked from / without following
 * symlinks at each use, like a source's; the walk holds no descriptor
 * between the stages.
 *
 * Sources read on behalf of others. Debian links some stdlib modules into
 * /etc, so a source may be a symlink, read through its link as the importer
 * does. But a link is only as trustworthy as its owner: a user who plants
 * `a.py -> /root/secret` in a tree that root compiles must not make root
 * read that file (its bytes would go to a worker, its sha256 and error text
 * to the database). So the link's target is opened with the filesystem
 * identity of the link's owner (fsid.h, on this thread only, for the open
 * alone): the daemon reads exactly what the owner could, and a failure is
 * the one the owner would see (PermissionError, FileNotFoundError), which
 * tells the owner nothing new. Root's links are read as root. The link is
 * pinned with O_PATH before its owner and target are read, so the link
 * checked is the link followed.
 *
 * Whoever owns it, a source on a pseudo file system (/proc, /sys, debugfs,
 * ...) is never read: its "file" is kernel or process state, such as the
 * daemon's own environment. Non-regular files (devices, FIFOs, sockets)
 * are refused too. */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/magic.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "fsid.h"
#include "job.h"
#include "list.h"
#include "macro.h"
#include "pycpath.h"
#include "safepath.h"
#include "util.h"
#include "writer.h"

int job_new(uint64_t id, const char *source, const char *target, size_t root_len, Pool *pool,
            unsigned opt_level, InvalidationMode mode, Job **ret) {
        Job *j = calloc(1, sizeof(*j));
        const char *slash;

        if (!j)
                return -ENOMEM;
        j->id = id;
        j->source = strdup(source);
        j->target = strdup(target);
        if (!j->source || !j->target) {
                job_free(j);
                return -ENOMEM;
        }
        j->display_offset = root_len < strlen(j->source) ? root_len : 0;
        slash = strrchr(j->target, '/');
        j->target_name = slash ? slash + 1 : j->target;
        j->pool = pool;
        j->opt_level = opt_level;
        j->mode = mode;
        j->dir_fd = j->source_fd = -1;
        j->state = JOB_QUEUED;
        *ret = j;
        return 0;
}

void job_release(Job *j) {
        j->source_fd = safe_close(j->source_fd); /* releases the flock */
        j->dir_fd = safe_close(j->dir_fd);
        free(j->data);
        j->data = NULL;
        j->data_size = 0;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        job_release(j);
        free(j->source);
        free(j->target);
        free(j->waiters);
        free(j->error_type);
        free(j->error_message);
        free(j->error_detail);
        free(j->display);
        free(j);
        return NULL;
}

int job_add_waiter(Job *j, Request *r, bool coalesced) {
        if (GREEDY_REALLOC(j->waiters, j->allocated_waiters, j->n_waiters + 1) < 0)
                return -ENOMEM;
        j->waiters[j->n_waiters++] = (JobWaiter){ .request = r, .coalesced = coalesced, .requeue = false };
        return 0;
}

int job_set_explicit(Job *j, const char *display, bool explicit_target) {
        char *d = NULL;

        if (display) {
                d = strdup(display);
                if (!d)
                        return -ENOMEM;
        }
        free(j->display);
        j->display = d;
        j->explicit_target = explicit_target;
        return 0;
}

bool job_writes_as(const Job *j, const char *source, size_t root_len, const char *display, bool explicit_target) {
        const char *want = display ? display : source + root_len;

        return j->explicit_target == explicit_target && strcmp(j->source, source) == 0 &&
               strcmp(job_display(j), want) == 0;
}

int job_set_error_detail(Job *j, const char *detail) {
        char *d = NULL;

        if (detail) {
                d = strdup(detail);
                if (!d)
                        return -ENOMEM;
        }
        free(j->error_detail);
        j->error_detail = d;
        return 0;
}

int job_set_error(Job *j, const char *type, uint32_t line, const char *message) {
        char *t = strdup(type), *m = strdup(message);

        if (!t || !m) {
                free(t);
                free(m);
                return -ENOMEM;
        }
        free(j->error_type);
        free(j->error_message);
        free(j->error_detail);
        j->error_detail = NULL;
        j->error_type = t;
        j->error_message = m;
        j->error_line = line;
        j->outcome = OUTCOME_FAILED;
        return 0;
}

const char *errno_to_exception(int error) {
        switch (-error) {
        case ENOENT:
                return "FileNotFoundError";
        case EACCES:
        case EPERM:
                return "PermissionError";
        case EEXIST:
                return "FileExistsError";
        case EISDIR:
                return "IsADirectoryError";
        case ENOTDIR:
                return "NotADirectoryError";
        case ETIMEDOUT:
                return "TimeoutError";
        case EAGAIN:
                return "BlockingIOError";
        default:
                return "OSError";
        }
}

int job_set_errno(Job *j, int error, const char *what) {
        char msg[512];

        snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-error));
        return job_set_error(j, errno_to_exception(error), 0, msg);
}

static void sha256(const uint8_t *data, size_t size, uint8_t out[32]) {
        struct sha256_ctx ctx;

        sha256_init(&ctx);
        sha256_update(&ctx, size, data);
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}

static int check_current(Job *j) {
        _cleanup_close_ int cache_fd = -1, fd = -1;
        uint8_t buf[PYC_HEADER_SIZE];
        PycHeader h;
        struct stat st;
        ssize_t n;

        if (j->explicit_target) {
                const char *name;

                if (safepath_open_parent(j->target, &cache_fd, &name) < 0)
                        return 0;
        } else if (writer_open_cache_dir(j->dir_fd, false, &cache_fd) < 0)
                return 0;
        fd = openat(cache_fd, j->target_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        n = loop_read(fd, buf, sizeof(buf));
        if (n != (ssize_t)sizeof(buf) || st.st_size <= (off_t)PYC_HEADER_SIZE)
                return 0;
        if (pyc_header_parse(buf, sizeof(buf), &h) < 0)
                return 0;
        return pyc_header_is_current(&h, j->params.magic, j->params.hash_algo, j->mode, j->mtime, j->size,
                                     j->data, j->data_size);
}

/* The kernel's overflow gid ("nogroup"): the group of a link owner that has
 * no passwd entry, so that it gets no group's rights. */
#define JOB_OVERFLOW_GID ((gid_t)65534)

/* The filesystem identity of @uid: its passwd entry's group and the
 * supplementary groups getgrouplist() gives, or, without an entry, no group
 * at all. */
static int fsid_of_owner(uid_t uid, FsId *ret) {
        struct passwd pw, *found = NULL;
        char buf[16384];
        int n = FSID_MAX_GROUPS;

        *ret = (FsId){ .uid = uid, .gid = JOB_OVERFLOW_GID };
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || !found)
                return 0;
        ret->gid = pw.pw_gid;
        /* With more groups than fit, none rather than some unfilled ones. */
        if (getgrouplist(pw.pw_name, pw.pw_gid, ret->groups, &n) >= 0 && n >= 0 && n <= FSID_MAX_GROUPS)
                ret->n_groups = (size_t)n;
        return 0;
}

#define JOB_MAX_LINK_HOPS 40

static bool trusted_link_owner(uid_t uid) {
        return uid == 0 || uid == geteuid();
}

/* Follows the symlink @name in @dir_fd by hand, one component at a time
 * and never letting the kernel follow anything, so that every link on the
 * way is seen with its owner. When all of them belong to a trusted user
 * (root, or the daemon's own uid) the final file is opened here, by the
 * same walk, and its fd returned: nobody can swap a link in between. At the
 * first link another user owns, the walk stops with -EPERM and that owner
 * in *@ret_uid: the caller then opens with that owner's rights. Other
 * errors are what the walk met.
 *
 * In a root (a chroot client's, an installer's target), @root_fd is that
 * root and @depth how many directories @dir_fd is below it: an absolute
 * link starts again at the root, and a ".." that would climb above it ends
 * the walk with -EXDEV, as rootpath.c resolves the paths of such requests. */
static int open_trusted_chain(int dir_fd, const char *name, int root_fd, int depth, uid_t *ret_uid) {
        _cleanup_close_ int cur = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        char rest[PATH_MAX], link[PATH_MAX];
        unsigned hops = 0;

        if (cur < 0)
                return negative_errno();
        if (strlen(name) >= sizeof(rest))
                return -ENAMETOOLONG;
        strcpy(rest, name);
        for (;;) {
                char *p = rest, *slash, comp[NAME_MAX + 1];
                _cleanup_close_ int fd = -1;
                struct stat st;
                bool last;
                size_t len;
                ssize_t n;

                if (*p == '/') {
                        cur = safe_close(cur);
                        cur = root_fd >= 0 ? fcntl(root_fd, F_DUPFD_CLOEXEC, 3)
                                           : open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (cur < 0)
                                return negative_errno();
                        depth = 0;
                        while (*p == '/')
                                p++;
                }
                slash = strchr(p, '/');
                len = slash ? (size_t)(slash - p) : strlen(p);
                if (len > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, p, len);
                comp[len] = '\0';
                while (slash && *slash == '/')
                        slash++;
                last = !slash || !*slash;
                memmove(rest, slash && *slash ? slash : "", strlen(slash && *slash ? slash : "") + 1);
                if (len == 0 || strcmp(comp, ".") == 0) {
                        if (last)
                                return -EISDIR;
                        continue;
                }
                if (root_fd >= 0 && strcmp(comp, "..") == 0) {
                        if (depth == 0)
                                return -EXDEV;
                        depth -= 2; /* the step below counts one down */
                }
                /* The last component is opened for reading at once, unless
                 * it is a link: nothing changes between looking and opening. */
                fd = openat(cur, comp,
                            (last ? O_RDONLY | O_NONBLOCK | O_NOCTTY : O_PATH) | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 && !(last && errno == ELOOP))
                        return negative_errno();
                if (fd >= 0) {
                        if (fstat(fd, &st) < 0)
                                return negative_errno();
                        if (!S_ISLNK(st.st_mode)) {
                                if (last)
                                        return TAKE_FD(fd);
                                safe_close(cur);
                                cur = TAKE_FD(fd);
                                depth++;
                                continue;
                        }
                } else {
                        fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0 || fstat(fd, &st) < 0)
                                return negative_errno();
                }
                /* A symlink: whose is it, and where does it lead? */
                if (!S_ISLNK(st.st_mode))
                        return -EAGAIN; /* replaced while we looked */
                if (!trusted_link_owner(st.st_uid)) {
                        *ret_uid = st.st_uid;
                        return -EPERM;
                }
                if (++hops > JOB_MAX_LINK_HOPS)
                        return -ELOOP;
                n = readlinkat(fd, "", link, sizeof(link));
                if (n < 0)
                        return negative_errno();
                if ((size_t)n >= sizeof(link) || (size_t)n + 1 + strlen(rest) >= sizeof(rest))
                        return -ENAMETOOLONG;
                link[n] = '\0';
                /* The link's text, then what was left after it. */
                if (*rest) {
                        memmove(rest + n + 1, rest, strlen(rest) + 1);
                        memcpy(rest, link, (size_t)n);
                        rest[n] = '/';
                } else
                        memcpy(rest, link, (size_t)n + 1);
        }
}

/* Opens what the symlink @name in @dir_fd points to. A chain of links that
 * only trusted users own is followed by the daemon; from the first link
 * another user owns, the file is opened with that owner's filesystem
 * identity, so a link never makes the daemon read what its owner could not.
 * A daemon that is not root has no rights beyond its own uid's (the only one
 * it serves mutating requests for) and just follows. Returns the fd, or a
 * negative errno as the owner would have met it; -EAGAIN when @name is no
 * longer a symlink (the caller retries). */
static int open_as_link_owner(int dir_fd, const char *name, const Job *j) {
        _cleanup_close_ int root_fd = -1;
        uid_t owner = (uid_t)-1;
        FsId id;
        int fd, r;

        if (j->display_offset > 0) {
                /* In a root the kernel must not follow anything: it would
                 * resolve an absolute link against the host's /. A link
                 * another user owns is refused rather than opened with that
                 * user's rights, for the same reason. */
                _cleanup_free_ char *root = strndup(j->source, j->display_offset);
                const char *d = j->source + j->display_offset;
                int depth = 0;

                if (!root)
                        return -ENOMEM;
                r = safepath_open_dir(root, &root_fd);
                if (r < 0)
                        return r;
                for (const char *s = strchr(d + 1, '/'); s; s = strchr(s + 1, '/'))
                        depth++;
                r = open_trusted_chain(dir_fd, name, root_fd, depth, &owner);
                return r == -EPERM && owner != (uid_t)-1 ? -EPERM : r;
        }
        if (geteuid() != 0) {
                fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                return fd < 0 ? negative_errno() : fd;
        }
        r = open_trusted_chain(dir_fd, name, -1, 0, &owner);
        if (r != -EPERM || owner == (uid_t)-1)
                return r;
        r = fsid_of_owner(owner, &id);
        if (r < 0)
                return r;
        r = fsid_enter(&id);
        if (r < 0)
                return r;
        /* The whole chain again, as that owner: the kernel checks every
         * step with its rights. */
        fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        r = fd < 0 ? negative_errno() : fd;
        fsid_leave();
        return r;
}

/* True for the file systems whose files are views of kernel or process
 * state rather than data on a disk. */
static bool is_pseudo_fs(const struct statfs *sfs) {
        switch ((unsigned long)sfs->f_type) {
        case PROC_SUPER_MAGIC:
        case SYSFS_MAGIC:
        case DEBUGFS_MAGIC:
        case TRACEFS_MAGIC:
        case SECURITYFS_MAGIC:
        case SELINUX_MAGIC:
        case SMACK_MAGIC:
        case CGROUP_SUPER_MAGIC:
        case CGROUP2_SUPER_MAGIC:
        case BPF_FS_MAGIC:
        case PSTOREFS_MAGIC:
        case EFIVARFS_MAGIC:
        case BINFMTFS_MAGIC:
        case DEVPTS_SUPER_MAGIC:
        case NSFS_MAGIC:
                return true;
        default:
                return false;
        }
}

/* The content cache (daemon/cache/contentcache.c), with the source in
 * hand: its key, and on a hit the .pyc a worker would have returned, the
 * cached payload behind a header made for this source. The key's path is
 * the display path the worker would compile with (pool_schedule() sends
 * job_display()), which is in the payload.
 *
 * A job of another root (rootpath.h) keys its entry apart: "@", the length
 * of its host source path, ":", that path, then the display path — a string
 * no host path (which starts with "/") can be. Its payload came from the
 * root's own interpreter, which an installer's target brings with it and
 * the host has no reason to trust: a host compile, or another root's, must
 * never be served what that interpreter produced, even for the same bytes
 * under the same name. A forced compile does not look, but stores what it
 * compiles. */
static void job_cache_lookup(Job *j) {
        _cleanup_free_ char *rooted = NULL;
        uint8_t *pyc;
        size_t size;
        uint64_t hash = 0;

        if (!j->params.cache ||
            (j->mode != INVALIDATION_TIMESTAMP && j->params.hash_algo == PYC_HASH_UNKNOWN))
                return;
        if (!j->have_source_sha256) {
                sha256(j->data, j->data_size, j->source_sha256);
                j->have_source_sha256 = true;
        }
        if (j->display_offset > 0 &&
            asprintf(&rooted, "@%zu:%s%s", strlen(j->source), j->source, job_display(j)) < 0)
                return;
        content_cache_key(j->params.cache_interpreter, rooted ? rooted : job_display(j), j->opt_level, j->mode,
                          j->source_sha256, j->cache_key);
        j->have_cache_key = true;
        if (j->params.force || content_cache_lookup(j->params.cache, j->cache_key, &pyc, &size) <= 0)
                return;
        if (j->mode != INVALIDATION_TIMESTAMP)
                hash = pyc_source_hash(j->params.hash_algo, j->params.magic, j->data, j->data_size);
        content_cache_pyc_header(pyc, j->params.magic, j->mode, j->mtime, j->size, hash);
        free(j->data);
        j->data = pyc;
        j->data_size = size;
        j->cache_hit = true;
}

void job_prepare_run(IoWork *w) {
        Job *j = job_from_io(w);
        _cleanup_close_ int dir_fd = -1, fd = -1;
        const char *name;
        struct statfs sfs;
        struct stat st;
        int r;

        j->up_to_date = false;
        j->cache_hit = j->have_cache_key = false;
        r = safepath_open_parent(j->source, &dir_fd, &name);
        if (r < 0)
                goto fail;
        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 && errno == ELOOP) {
                /* A symlinked source: its .pyc is still written beside the
                 * link, in the directory reached without following anything. */
                fd = open_as_link_owner(dir_fd, name, j);
                if (fd < 0) {
                        r = fd;
                        goto fail;
                }
        }
        if (fd < 0) {
                r = negative_errno();
                goto fail;
        }
        if (fstatfs(fd, &sfs) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (is_pseudo_fs(&sfs)) {
                r = -EMEDIUMTYPE;
                goto fail;
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EBADFD;
                goto fail;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = negative_errno();
                goto fail;
        }
        if ((uint64_t)st.st_size > j->params.max_source_size) {
                r = -EFBIG;
                goto fail;
        }
        r = read_full_fd(fd, j->params.max_source_size, &j->data, &j->data_size);
        if (r < 0)
                goto fail;
        /* The header records what we read, not what stat said before it. */
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                goto fail;
        }
        j->mtime = pyc_mtime_field(st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        j->source_mtime = (int64_t)st.st_mtim.tv_sec;
        if (j->params.hash) {
                sha256(j->data, j->data_size, j->source_sha256);
                j->have_source_sha256 = true;
        }
        j->size = (uint32_t)((uint64_t)j->data_size & 0xffffffffu);
        j->pyc_mode = (st.st_mode | 0200) & 0644;
        j->dir_fd = TAKE_FD(dir_fd);
        j->source_fd = TAKE_FD(fd);
        if (!j->params.force)
                j->up_to_date = check_current(j) > 0;
        if (!j->up_to_date)
                job_cache_lookup(j);
        j->io_result = 0;
        return;
fail:
        free(j->data);
        j->data = NULL;
        j->data_size = 0;
        j->io_result = r;
}

/* An explicit target: its directory (canonicalized by the walk) reached
 * again without following symlinks, then the same atomic write, which
 * refuses a symlink, FIFO, device or directory at the name. */
static int job_write_explicit(Job *j) {
        _cleanup_close_ int dir_fd = -1;
        const char *name;
        int r;

        r = safepath_open_parent(j->target, &dir_fd, &name);
        if (r < 0)
                return r;
        return writer_replace_at(dir_fd, name, j->data, j->data_size, j->pyc_mode, j->params.durable);
}

void job_commit_run(IoWork *w) {
        Job *j = job_from_io(w);

        if (j->params.hash) {
                sha256(j->data, j->data_size, j->pyc_sha256);
                j->have_pyc_sha256 = true;
        }
        if (j->explicit_target)
                j->io_result = job_write_explicit(j);
        else
                /* __pycache__ created if needed, again if a clean removed it under us. */
                j->io_result = writer_replace_in_cache(j->dir_fd, j->target_name, j->data, j->data_size,
                                                       j->pyc_mode, j->params.durable);
        /* A fresh compile, written: its payload goes to the content cache.
         * A failure to store costs only a later compile. */
        if (j->io_result == 0 && j->have_cache_key && !j->cache_hit && j->data_size > PYC_HEADER_SIZE)
                (void)content_cache_store(j->params.cache, j->cache_key, j->data + PYC_HEADER_SIZE,
                                          j->data_size - PYC_HEADER_SIZE);
}
