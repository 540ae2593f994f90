/* SPDX-License-Identifier: MIT */
/* The worker user: workers compile untrusted source and the checker loads
 * untrusted marshal data, so each may end up running code someone else
 * chose. What keeps that contained is that they run as a uid that nothing
 * else on the machine runs as: a process of another user can then neither
 * ptrace nor signal them, and they can reach no file but world-readable
 * ones. `nobody` is the classic wrong answer — every service that drops
 * privileges shares it — so it is refused outright.
 *
 * The package creates a system user for this (WORKER_USER_DEFAULT). Where
 * it does not exist (a daemon built from source, a chroot, the tests), the
 * daemon takes a transient uid for its lifetime, like systemd's dynamic
 * users but without a database entry: a number from a range nobody hands
 * out, that no passwd or group entry names, that no process runs as, and
 * whose lock file no other daemon holds. The lock is flock(): it goes away
 * with the daemon however it dies, and two daemons starting at once never
 * get the same uid. The lock is taken before the process scan, so a uid is
 * only ever judged free by the one daemon holding its lock. */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"
#include "workeruser.h"

/* Candidates tried before giving up: each costs two NSS look-ups, a lock
 * and a scan of /proc. */
#define WORKER_UID_TRIES 64
#define WORKER_UID_SPREAD 1024u

void worker_user_release(WorkerUser *u) {
        u->lock_fd = safe_close(u->lock_fd);
        *u = WORKER_USER_NULL;
}

static uid_t overflow_uid(void) {
        _cleanup_close_ int fd = open("/proc/sys/kernel/overflowuid", O_RDONLY | O_CLOEXEC);
        char buf[32];
        unsigned v;
        ssize_t n;

        if (fd < 0 || (n = loop_read(fd, buf, sizeof(buf) - 1)) <= 0)
                return 65534;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return safe_atou(buf, &v) == 0 ? (uid_t)v : 65534;
}

/* Does the "Uid:"/"Gid:" line @line (after the colon) name @id? */
static bool status_line_has(const char *line, unsigned id) {
        for (int i = 0; i < 4; i++) {
                char *end;
                unsigned long v;

                while (*line == ' ' || *line == '\t')
                        line++;
                if (!isdigit((unsigned char)*line))
                        return false;
                errno = 0;
                v = strtoul(line, &end, 10);
                if (errno == 0 && v == id)
                        return true;
                line = end;
        }
        return false;
}

int worker_user_ids_in_use(uid_t uid, gid_t gid) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        int r = 0;

        if (!d)
                return negative_errno();
        while (r == 0 && (errno = 0, de = readdir(d))) {
                char path[sizeof(de->d_name) + 8], buf[4096];
                _cleanup_close_ int fd = -1;
                ssize_t n;

                if (!isdigit((unsigned char)de->d_name[0]))
                        continue;
                snprintf(path, sizeof(path), "%s/status", de->d_name);
                fd = openat(dirfd(d), path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue; /* gone meanwhile */
                n = loop_read(fd, buf, sizeof(buf) - 1);
                if (n <= 0)
                        continue;
                buf[n] = '\0';
                for (char *line = buf; line && *line;) {
                        char *nl = strchr(line, '\n');
                        if (nl)
                                *nl = '\0';
                        if ((strncmp(line, "Uid:", 4) == 0 && status_line_has(line + 4, (unsigned)uid)) ||
                            (strncmp(line, "Gid:", 4) == 0 && status_line_has(line + 4, (unsigned)gid)))
                                r = 1;
                        line = nl ? nl + 1 : NULL;
                }
        }
        if (r == 0 && errno != 0)
                r = negative_errno();
        closedir(d);
        return r;
}

/* Is @id mapped in our user namespace (@map: /proc/self/uid_map or
 * gid_map)? In a container that maps only a small range, a uid outside it
 * cannot be taken at all: setresuid() would fail in every worker. */
static bool id_is_mapped(const char *map, unsigned id) {
        _cleanup_close_ int fd = open(map, O_RDONLY | O_CLOEXEC);
        char buf[4096];
        ssize_t n;

        if (fd < 0)
                return true; /* no user namespaces: everything is mapped */
        n = loop_read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        for (char *line = buf; line && *line;) {
                unsigned long inside, outside, count;
                char *nl = strchr(line, '\n');

                if (nl)
                        *nl = '\0';
                if (sscanf(line, "%lu %lu %lu", &inside, &outside, &count) == 3 && id >= inside &&
                    id - inside < count)
                        return true;
                line = nl ? nl + 1 : NULL;
        }
        return false;
}

/* Opens @path as a directory that only we can change, creating it. */
static int open_lock_dir(const char *path) {
        _cleanup_free_ char *parent = strdup(path);
        _cleanup_close_ int fd = -1;
        struct stat st;
        char *slash;

        if (!parent)
                return -ENOMEM;
        /* The parents (the last one is also the socket's directory: others
         * must reach it) are made as needed, whatever the prefix. Errors
         * here are about the lock directory, never the user: -EPERM would
         * read as a refused user, so an unsafe directory is -EACCES. */
        for (char *p = parent + 1; (slash = strchr(p, '/')); p = slash + 1) {
                *slash = '\0';
                if (mkdir(parent, 0755) < 0 && errno != EEXIST)
                        return errno == ENOENT ? -ENOTDIR : negative_errno();
                *slash = '/';
        }
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return errno == ENOENT ? -ENOTDIR : negative_errno();
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ENOTDIR : negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_uid != geteuid() || (st.st_mode & 0022))
                return -EACCES;
        return TAKE_FD(fd);
}

static int allocate_transient(const char *lock_dir, WorkerUser *ret) {
        const uint32_t count = WORKER_UID_LAST - WORKER_UID_FIRST + 1;
        _cleanup_close_ int dfd = -1;
        uint32_t start;
        int r;

        if (!id_is_mapped("/proc/self/uid_map", WORKER_UID_FIRST) ||
            !id_is_mapped("/proc/self/gid_map", WORKER_UID_FIRST) ||
            !id_is_mapped("/proc/self/uid_map", WORKER_UID_LAST) ||
            !id_is_mapped("/proc/self/gid_map", WORKER_UID_LAST))
                return -ERANGE;
        dfd = open_lock_dir(lock_dir);
        if (dfd < 0)
                return dfd;
        /* A random start, so that daemons starting together rarely try the
         * same candidates (the lock decides when they do); within the first
         * WORKER_UID_SPREAD of the range, so that the lock files, which
         * stay, stay few. */
        if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != sizeof(start))
                start = (uint32_t)getpid() ^ (uint32_t)now_usec(CLOCK_REALTIME);
        start %= WORKER_UID_SPREAD;

        for (uint32_t i = 0; i < WORKER_UID_TRIES; i++) {
                uid_t uid = WORKER_UID_FIRST + (start + i) % count;
                _cleanup_close_ int fd = -1;
                char name[32];

                if (getpwuid(uid) || getgrgid((gid_t)uid))
                        continue;
                snprintf(name, sizeof(name), "%u.lock", (unsigned)uid);
                fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return negative_errno();
                if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                        if (errno == EWOULDBLOCK)
                                continue; /* another daemon's */
                        return negative_errno();
                }
                r = worker_user_ids_in_use(uid, (gid_t)uid);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue; /* left behind by a daemon that is gone, or someone's */
                *ret = (WorkerUser){
                        .uid = uid, .gid = (gid_t)uid, .transient = true, .lock_fd = TAKE_FD(fd)
                };
                return 0;
        }
        return -EADDRINUSE;
}

int worker_user_acquire(const char *name, const char *lock_dir, WorkerUser *ret) {
        struct passwd *pw;
        int r;

        if (!name)
                name = WORKER_USER_DEFAULT;
        if (strcmp(name, WORKER_USER_DYNAMIC) == 0)
                return allocate_transient(lock_dir, ret);
        if (strcmp(name, "nobody") == 0 || strcmp(name, "root") == 0)
                return -EPERM;

        errno = 0;
        pw = getpwnam(name);
        if (!pw) {
                if (errno != 0 && errno != ENOENT && errno != ESRCH)
                        return negative_errno();
                if (strcmp(name, WORKER_USER_DEFAULT) == 0)
                        return allocate_transient(lock_dir, ret);
                return -ENOENT;
        }
        if (pw->pw_uid == 0 || pw->pw_gid == 0 || pw->pw_uid == overflow_uid() || pw->pw_uid == 65534)
                return -EPERM;

        *ret = (WorkerUser){ .uid = pw->pw_uid, .gid = pw->pw_gid, .lock_fd = -1 };
        r = worker_user_ids_in_use(ret->uid, (gid_t)-1);
        ret->in_use = r > 0;
        return 0;
}
