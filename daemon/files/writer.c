/* SPDX-License-Identifier: MIT */
/* Atomic, durable .pyc writes.
 *
 * The data goes into an anonymous O_TMPFILE inode in the target directory,
 * is written in full and fsynced. When no file exists at the target name the
 * inode is linked there directly: linkat() cannot replace, so it either
 * creates the complete file or fails with EEXIST — nothing is ever visible
 * half-written and a crash leaves no name behind. When a file exists (the
 * common recompile case) the inode is linked to a temporary name and renamed
 * over the target; only a crash between those two calls can leave the
 * temporary name, whose suffix never looks like a .pyc and which the next
 * daemon removes (writer_remove_stale_temps()). Where O_TMPFILE is not
 * supported a named O_EXCL temporary is used instead, with the same rename.
 * Finally the directory is fsynced so the new name survives a crash. That
 * fsync is a group commit: threads that renamed into the same directory at
 * about the same time share one fsync (writer_sync_dir()).
 *
 * A __pycache__ is created on demand and may vanish under us: a clean
 * removes it once it is empty, and it is empty exactly while our file is
 * still an anonymous inode. Writing into a removed directory fails
 * (ENOENT, or EPERM from linkat()); writer_replace_in_cache() then sees the
 * directory's link count at zero, creates __pycache__ anew and writes again (a few times at most:
 * a clean that keeps removing it is not waited out forever). */

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "pycpath.h"
#include "util.h"
#include "writer.h"

int writer_open_cache_dir(int source_dir_fd, bool create, int *ret_fd) {
        int fd;

        for (int attempt = 0; attempt < 2; attempt++) {
                fd = openat(source_dir_fd, PYCACHE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd >= 0) {
                        *ret_fd = fd;
                        return 0;
                }
                if (errno != ENOENT || !create)
                        return negative_errno();
                if (mkdirat(source_dir_fd, PYCACHE_DIR, 0755) == 0) {
                        /* 0755 whatever the umask: every user imports these. */
                        fd = openat(source_dir_fd, PYCACHE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0)
                                return negative_errno();
                        (void)fchmod(fd, 0755);
                        *ret_fd = fd;
                        return 0;
                }
                if (errno != EEXIST)
                        return negative_errno();
        }
        return -ENOENT;
}

int writer_check_target(int dir_fd, const char *name) {
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        return S_ISREG(st.st_mode) ? 0 : -EEXIST;
}

static atomic_uint temp_counter;

/* Directory group commit. An entry per directory being synced: a thread
 * that renamed into it asks for generation ++requested and returns once
 * synced has reached it. One thread at a time runs the fsync, for every
 * generation requested before it started; the others wait for it. */
#define DIRSYNC_SLOTS 64

typedef struct DirSync {
        dev_t dev;
        ino_t ino;
        unsigned users;
        bool busy;
        uint64_t requested, synced;
} DirSync;

static pthread_mutex_t dirsync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dirsync_cond = PTHREAD_COND_INITIALIZER;
static DirSync dirsync[DIRSYNC_SLOTS];

static DirSync *dirsync_get(dev_t dev, ino_t ino) {
        DirSync *free_slot = NULL;

        for (unsigned i = 0; i < DIRSYNC_SLOTS; i++) {
                DirSync *d = &dirsync[i];
                if (d->users > 0 && d->dev == dev && d->ino == ino)
                        return d;
                if (d->users == 0 && !free_slot)
                        free_slot = d;
        }
        if (free_slot)
                *free_slot = (DirSync){ .dev = dev, .ino = ino };
        return free_slot;
}

int writer_sync_dir(int dir_fd) {
        struct stat st;
        uint64_t gen;
        DirSync *d;
        int r = 0;

        if (fstat(dir_fd, &st) < 0)
                return negative_errno();
        pthread_mutex_lock(&dirsync_lock);
        d = dirsync_get(st.st_dev, st.st_ino);
        if (!d) {
                /* Every slot busy: sync alone. */
                pthread_mutex_unlock(&dirsync_lock);
                return fsync(dir_fd) < 0 ? negative_errno() : 0;
        }
        d->users++;
        gen = ++d->requested;
        while (d->synced < gen && r == 0) {
                if (d->busy) {
                        pthread_cond_wait(&dirsync_cond, &dirsync_lock);
                        continue;
                }
                uint64_t covers = d->requested;
                d->busy = true;
                pthread_mutex_unlock(&dirsync_lock);
                r = fsync(dir_fd) < 0 ? negative_errno() : 0;
                pthread_mutex_lock(&dirsync_lock);
                d->busy = false;
                if (r == 0 && covers > d->synced)
                        d->synced = covers;
                pthread_cond_broadcast(&dirsync_cond);
        }
        d->users--;
        pthread_mutex_unlock(&dirsync_lock);
        return r;
}

static int temp_name(const char *name, char *buf, size_t size) {
        int n = snprintf(buf, size, ".%s.%d.%u" WRITER_TEMP_SUFFIX, name, (int)getpid(),
                         atomic_fetch_add(&temp_counter, 1));
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int link_tmpfile(int fd, int dir_fd, const char *name) {
        char proc[64];

        /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc works for everyone. */
        if (linkat(fd, "", dir_fd, name, AT_EMPTY_PATH) == 0)
                return 0;
        if (errno != ENOENT && errno != EPERM)
                return negative_errno();
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, dir_fd, name, AT_SYMLINK_FOLLOW) < 0)
                return negative_errno();
        return 0;
}

static int write_data(int fd, const void *data, size_t size, mode_t mode, bool durable) {
        int r;

        /* The umask must not decide the mode: set it explicitly. */
        if (fchmod(fd, mode) < 0)
                return negative_errno();
        r = loop_write(fd, data, size);
        if (r < 0)
                return r;
        if (durable && fsync(fd) < 0)
                return negative_errno();
        return 0;
}

int writer_replace_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode, bool durable) {
        _cleanup_close_ int fd = -1;
        char tmp[NAME_MAX * 2];
        bool named = false;
        int r;

        r = writer_check_target(dir_fd, name);
        if (r < 0)
                return r;
        r = temp_name(name, tmp, sizeof(tmp));
        if (r < 0)
                return r;

        fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) {
                if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                        return negative_errno();
                fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return negative_errno();
                named = true;
        }

        r = write_data(fd, data, size, mode, durable);
        if (r < 0)
                goto fail;

        if (!named) {
                r = link_tmpfile(fd, dir_fd, name);
                if (r == 0)
                        goto sync_dir;
                if (r != -EEXIST)
                        goto fail;
                r = link_tmpfile(fd, dir_fd, tmp);
                if (r < 0)
                        goto fail;
                named = true;
        }
        /* The target may have become a symlink or FIFO since the check; a
         * rename replaces the name itself, never what it points to, but we
         * still refuse to turn such a thing into a regular file. */
        r = writer_check_target(dir_fd, name);
        if (r < 0)
                goto fail;
        if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
                r = negative_errno();
                goto fail;
        }

sync_dir:
        return durable ? writer_sync_dir(dir_fd) : 0;

fail:
        if (named)
                (void)unlinkat(dir_fd, tmp, 0);
        return r;
}

/* How often a vanished __pycache__ is created again for one write. */
#define WRITER_CACHE_RETRIES 32

static bool dir_removed(int dir_fd) {
        struct stat st;

        return fstat(dir_fd, &st) == 0 && st.st_nlink == 0;
}

int writer_replace_in_cache(int source_dir_fd, const char *name, const void *data, size_t size, mode_t mode,
                            bool durable) {
        int r = -ENOENT;

        for (unsigned attempt = 0; attempt < WRITER_CACHE_RETRIES; attempt++) {
                _cleanup_close_ int cache_fd = -1;

                r = writer_open_cache_dir(source_dir_fd, true, &cache_fd);
                if (r == -ELOOP || r == -ENOTDIR)
                        return -EEXIST; /* a symlink or a file where __pycache__ should be */
                if (r == -ENOENT)
                        continue; /* removed between mkdir and open: again */
                if (r < 0)
                        return r;
                r = writer_replace_at(cache_fd, name, data, size, mode, durable);
                /* Into a removed directory the kernel refuses the new name
                 * with ENOENT, or EPERM for linkat() of the anonymous inode. */
                if (r >= 0 || !dir_removed(cache_fd))
                        return r;
        }
        return r;
}

/* ".NAME.PID.N.pycqueue-tmp": the PID is the writer's. */
static bool temp_is_stale(const char *name) {
        size_t n = strlen(name), sl = strlen(WRITER_TEMP_SUFFIX);
        const char *p, *q;
        char comm[64] = "", path[64];
        long pid;
        FILE *f;

        if (name[0] != '.' || n <= sl || strcmp(name + n - sl, WRITER_TEMP_SUFFIX) != 0)
                return false;
        /* find ".PID.N" before the suffix */
        q = name + n - sl;
        for (p = q - 1; p > name && *p != '.'; p--) /* N */
                ;
        if (p <= name)
                return false;
        for (p = p - 1; p > name && *p != '.'; p--) /* PID */
                ;
        if (p <= name)
                return false;
        pid = strtol(p + 1, NULL, 10);
        if (pid <= 0)
                return false;
        if (pid == (long)getpid())
                return false;
        snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
        f = fopen(path, "re");
        if (!f)
                return true;
        if (!fgets(comm, sizeof(comm), f))
                comm[0] = '\0';
        fclose(f);
        /* A live pycqueued may be writing it right now. */
        return strncmp(comm, "pycqueued", 9) != 0;
}

int writer_remove_stale_temps(int dir_fd) {
        _cleanup_close_ int fd = -1;
        struct dirent *de;
        int removed = 0;
        DIR *d;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d)
                return negative_errno();
        fd = -1; /* consumed by the DIR */
        while ((de = readdir(d)))
                if (temp_is_stale(de->d_name) && unlinkat(dir_fd, de->d_name, 0) == 0)
                        removed++;
        closedir(d);
        return removed;
}
