/* SPDX-License-Identifier: MIT */
#pragma once

/* A pool of warm workers for one interpreter (see pool.c). */

#include <stdbool.h>

#include "interpreter.h"
#include "job.h"
#include "worker.h"
#include "forward.h"
#include "macro.h"

typedef enum PoolState {
        POOL_STARTING,  /* no worker has completed its handshake yet */
        POOL_READY,
        POOL_FAILED,    /* the interpreter cannot be used; @error says why */
} PoolState;

typedef struct Pool {
        Manager *manager;
        char *interpreter;       /* canonical path, on the host */
        char *root;              /* its workers run chrooted here (rootpath.h); NULL: ours */
        InterpreterId id;        /* the file when the pool started: its identity */
        bool retired;            /* the file was replaced: takes no new work */
        uint64_t last_used_usec; /* CLOCK_MONOTONIC of the last job or request */
        PoolState state;
        char *error;
        WorkerInfo info;         /* from the first handshake */
        uint8_t cache_interpreter[CONTENT_CACHE_ID_SIZE]; /* @info as the content cache keys it */

        WorkerSlot **workers;
        unsigned n_workers, max_workers;
        unsigned failed_starts;  /* consecutive deaths before a handshake */

        Job *queued_head, *queued_tail;
        Job *prepared_head, *prepared_tail;
        unsigned n_queued, n_preparing, n_prepared, n_compiling, n_committing;

        sd_event_source *defer_source; /* frees dead workers, schedules */
        WorkerSlot **dead;
        unsigned n_dead;
} Pool;

/* @root: the interpreter belongs to that root and runs chrooted into it;
 * @interpreter is its host path (below @root). */
int pool_new(Manager *m, const char *root, const char *interpreter, unsigned n_workers, Pool **ret);
Pool *pool_free(Pool *p);
DEFINE_CLEANUP(Pool *, pool_free);

/* Where a request waiting for all of @pools stands: 1 when every one is
 * ready, 0 while one still starts, -ENOEXEC when one failed (its reason in
 * @ret_error). With @failed_ok a failed pool is skipped instead. The one
 * rule by which compile and administration requests wait for pools. */
int pools_ready(Pool *const *pools, size_t n, bool failed_ok, const char **ret_error);
/* Takes a new job (already in the manager's queue) into this pool's FIFO. */
void pool_enqueue(Pool *p, Job *j);
/* Jobs anywhere in this pool, for status and idleness. */
unsigned pool_jobs(const Pool *p);
unsigned pool_busy_workers(const Pool *p);
