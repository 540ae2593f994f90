/* SPDX-License-Identifier: MIT */
#pragma once

/* A job: compile one source into one target .pyc (see job.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "contentcache.h"
#include "iopool.h"
#include "pycheader.h"
#include "protocol.h"
#include "forward.h"
#include "macro.h"

typedef enum JobState {
        JOB_QUEUED,      /* waiting in its pool's FIFO */
        JOB_PREPARING,   /* on an I/O thread: open, lock, read, up-to-date check */
        JOB_PREPARED,    /* source in memory and locked, waiting for a worker */
        JOB_COMPILING,   /* on a worker */
        JOB_COMMITTING,  /* on an I/O thread: atomic write */
        JOB_DONE,
} JobState;

typedef struct JobWaiter {
        Request *request;
        bool coalesced;  /* joined a job another request created */
        bool requeue;    /* the job does not fit the request: take the target again after it */
} JobWaiter;

/* What the I/O thread needs, copied in before submission so the thread
 * never reads loop-owned state. */
typedef struct JobParams {
        uint8_t magic[4];
        PycHashAlgo hash_algo;
        bool force;
        bool durable;
        bool hash;             /* compute sha256s for provenance */
        uint64_t max_source_size;
        ContentCache *cache;   /* NULL: no content cache */
        uint8_t cache_interpreter[CONTENT_CACHE_ID_SIZE];
} JobParams;

typedef struct Job {
        uint64_t id;
        char *target;          /* absolute .pyc path: the queue key */
        char *source;          /* canonical absolute source path */
        size_t display_offset;   /* source + this: the source inside its root (rootpath.h) */
        const char *target_name; /* points into @target, after its last '/' */
        char *display;           /* co_filename when not the source (TAG_PATH_DISPLAY); NULL: the source */
        bool explicit_target;    /* @target is a client's explicit path, not PEP 3147's (TAG_PATH_TARGET) */
        Pool *pool;
        unsigned opt_level;
        InvalidationMode mode;
        JobState state;
        unsigned attempts;     /* worker attempts so far */
        uint64_t lock_deadline;
        struct Job *next;      /* pool FIFO link, or the queue's list of held jobs */
        uint64_t seq;          /* order of arrival: its earliest request's (queue.c) */
        bool held;             /* waits for a clean that came before it (queue.c) */
        bool live;             /* counted by the queue until delivered (queue_job_retired()) */
        struct Job *live_next, *live_prev;

        JobWaiter *waiters;
        size_t n_waiters, allocated_waiters;

        /* Owned by whichever thread the state says. */
        IoWork io;
        JobParams params;
        int dir_fd;            /* the source's directory */
        int source_fd;         /* holds flock(LOCK_EX) until the commit is done */
        uint8_t *data;         /* source bytes, then pyc bytes */
        size_t data_size;
        uint32_t mtime, size;
        mode_t pyc_mode;
        int io_result;         /* negative errno from the last I/O stage */
        bool up_to_date;
        int64_t source_mtime;  /* full seconds, for provenance */
        uint8_t source_sha256[32];
        uint8_t pyc_sha256[32];
        bool have_source_sha256, have_pyc_sha256;
        uint8_t cache_key[CONTENT_CACHE_KEY_SIZE];
        bool have_cache_key;   /* the compiled payload is to be stored under it */
        bool cache_hit;        /* @data is the .pyc rebuilt from the cache: no worker needed */

        /* The result, once JOB_DONE. */
        Outcome outcome;
        char *error_type;
        char *error_message;
        char *error_detail; /* a compile error's py_compile text, from the worker; else NULL */
        uint32_t error_line;
        uint64_t start_usec, end_usec;
} Job;

/* @root_len: the length of the root prefix of @source (rootpath.h), 0 for
 * none; what follows it is the path compiled into the code objects. */
int job_new(uint64_t id, const char *source, const char *target, size_t root_len, Pool *pool,
            unsigned opt_level, InvalidationMode mode, Job **ret);
Job *job_free(Job *j);
DEFINE_CLEANUP(Job *, job_free);
int job_add_waiter(Job *j, Request *r, bool coalesced);
/* Gives @j a display name (NULL: its source) and marks its target as an
 * explicit path, written in that path's own directory instead of the
 * source's __pycache__. */
int job_set_explicit(Job *j, const char *display, bool explicit_target);
/* True when @j compiles @source into its target under the name @display
 * (NULL = the source as seen inside the root whose prefix is @root_len
 * bytes of it) the way a request for it asks. */
bool job_writes_as(const Job *j, const char *source, size_t root_len, const char *display, bool explicit_target);
/* The name a job's code is compiled with, co_filename: the explicit display
 * name, else the source as seen from inside its root. */
static inline const char *job_display(const Job *j) {
        return j->display ? j->display : j->source + j->display_offset;
}

/* Thread-side stages; set @io_result, never touch loop state. */
void job_prepare_run(IoWork *w);
void job_commit_run(IoWork *w);
/* Drops the source data and closes the fds (releasing the lock). */
void job_release(Job *j);

/* Records a failure; @type is a Python-style exception name. */
int job_set_error(Job *j, const char *type, uint32_t line, const char *message);
/* Records a failure from a negative errno, with a Python-style name for it. */
int job_set_errno(Job *j, int error, const char *what);
/* Records the py_compile text of a compile error (after job_set_error()). */
int job_set_error_detail(Job *j, const char *detail);
const char *errno_to_exception(int error);

static inline Job *job_from_io(IoWork *w) {
        return (Job *)((char *)w - offsetof(Job, io));
}
