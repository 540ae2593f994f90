/* SPDX-License-Identifier: MIT */
/* One compile job and its two blocking stages.
 *
 * Prepare (I/O thread): open the source relative to its directory fd, which
 * was reached without following symlinks; take flock(LOCK_EX|LOCK_NB) on it
 * so that a cooperating writer in another process never writes its .pyc at
 * the same time (a busy lock returns -EAGAIN and the pool retries later,
 * bounded); read it whole; and unless forced, decide whether the existing
 * .pyc is current as the importer would. The lock is held until the commit
 * stage has renamed the new .pyc into place.
 *
 * Commit (I/O thread): create __pycache__ if needed (never through a
 * symlink) and write the .pyc atomically (writer.c). */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "job.h"
#include "list.h"
#include "macro.h"
#include "pycpath.h"
#include "safepath.h"
#include "util.h"
#include "writer.h"

int job_new(uint64_t id, const char *source, const char *target, Pool *pool, unsigned opt_level,
            InvalidationMode mode, Job **ret) {
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
        free(j);
        return NULL;
}

int job_add_waiter(Job *j, Request *r, bool coalesced) {
        if (GREEDY_REALLOC(j->waiters, j->allocated_waiters, j->n_waiters + 1) < 0)
                return -ENOMEM;
        j->waiters[j->n_waiters++] = (JobWaiter){ .request = r, .coalesced = coalesced, .requeue = false };
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

        if (writer_open_cache_dir(j->dir_fd, false, &cache_fd) < 0)
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
        return pyc_header_is_current(&h, j->params.magic, j->params.hash_algo, j->mode, j->mtime, j->size, j->data,
                                     j->data_size);
}

void job_prepare_run(IoWork *w) {
        Job *j = job_from_io(w);
        _cleanup_close_ int dir_fd = -1, fd = -1;
        const char *name;
        struct stat st;
        int r;

        j->up_to_date = false;
        r = safepath_open_parent(j->source, &dir_fd, &name);
        if (r < 0)
                goto fail;
        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 && errno == ELOOP)
                /* A symlinked source (Debian links some stdlib modules into
                 * /etc) is read through its link, as the importer does; its
                 * .pyc is still written beside the link, in the directory we
                 * reached without following anything. */
                fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                r = negative_errno();
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
        j->io_result = 0;
        return;
fail:
        free(j->data);
        j->data = NULL;
        j->data_size = 0;
        j->io_result = r;
}

void job_commit_run(IoWork *w) {
        Job *j = job_from_io(w);
        _cleanup_close_ int cache_fd = -1;
        int r;

        r = writer_open_cache_dir(j->dir_fd, true, &cache_fd);
        if (r < 0) {
                /* A symlink or a file where __pycache__ should be. */
                j->io_result = r == -ELOOP || r == -ENOTDIR ? -EEXIST : r;
                return;
        }
        if (j->params.hash) {
                sha256(j->data, j->data_size, j->pyc_sha256);
                j->have_pyc_sha256 = true;
        }
        j->io_result = writer_replace_at(cache_fd, j->target_name, j->data, j->data_size, j->pyc_mode,
                                         j->params.durable);
}
