/* SPDX-License-Identifier: MIT */
/* The recorder: provenance off the hot path.
 *
 * Records are appended to in-memory batches on the loop. A timer (or a
 * full batch) hands the whole batch to one I/O thread that writes it in one
 * transaction; only one flush runs at a time, so rows keep their order.
 *
 * If the database cannot be written — disk full, locked by another writer,
 * corrupt, state directory missing — compiles go on: the recorder turns
 * "degraded", says so loudly in the log and in `status`, keeps the records
 * (up to RECORDER_MAX_PENDING, then drops the oldest and counts them) and
 * retries every few seconds, reopening the database if needed. When a write
 * succeeds again it says so and carries on.
 *
 * Retention (age and row count, from the configuration) runs on the same
 * thread, after a flush, at most every RECORDER_RETENTION_INTERVAL, and the
 * row count also after any flush that took it past the limit. After each
 * flush the WAL's size is checked too (provdb_bound_wal()).
 *
 * The database and its state directory are the daemon's alone (0600 and
 * 0700, fixed at every open by provdb_open()): the records hold other
 * users' command lines, and no other user can hold a reader that would make
 * the WAL grow. */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "manager.h"
#include "message-ids.h"
#include "recorder.h"
#include "util.h"

#define RECORDER_FLUSH_USEC (200 * 1000)
#define RECORDER_RETRY_USEC (3 * 1000000ULL)
#define RECORDER_BATCH_JOBS 4096
#define RECORDER_MAX_PENDING 200000
#define RECORDER_RETENTION_INTERVAL (600 * 1000000ULL)

typedef struct Batch {
        ProvRequest *requests;
        size_t n_requests, allocated_requests;
        ProvJob *jobs;
        size_t n_jobs, allocated_jobs;
        uint64_t *dequeued; /* finished --no-wait requests, to leave the queue */
        size_t n_dequeued, allocated_dequeued;
} Batch;

typedef struct Flush {
        IoWork io;
        Recorder *recorder;
        Batch batch;
        int result;
        char *error;
        bool retain;
        uint64_t rows;
} Flush;

typedef struct QueueOp {
        IoWork io;
        Recorder *recorder;
        uint64_t request_id;
        ProvRequest request; /* recorded with the queue entry */
        uid_t uid;
        char *peer_root;
        uint8_t *spec;
        size_t spec_size;
        recorder_done_fn done;
        void *userdata;
        int result;
        char *error;
} QueueOp;

struct Recorder {
        Manager *manager;
        bool enabled;
        char *path;
        ProvDb *db; /* touched on I/O threads only, one at a time */
        pthread_mutex_t open_lock;
        Batch pending;
        bool flushing;
        bool degraded;
        char *degraded_reason;
        uint64_t dropped;
        uint64_t rows;
        uint64_t next_request_id;
        uint64_t last_retention;
        uint64_t retry_after;
        sd_event_source *timer;
        struct SyncWaiter *sync_waiters;
};

typedef struct SyncWaiter {
        void (*fn)(void *userdata);
        void *userdata;
        struct SyncWaiter *next;
} SyncWaiter;

static void recorder_run_sync_waiters(Recorder *r) {
        SyncWaiter *w = r->sync_waiters;

        r->sync_waiters = NULL;
        while (w) {
                SyncWaiter *next = w->next;
                w->fn(w->userdata);
                free(w);
                w = next;
        }
}

static void batch_done(Batch *b) {
        for (size_t i = 0; i < b->n_requests; i++)
                prov_request_done(&b->requests[i]);
        for (size_t i = 0; i < b->n_jobs; i++)
                prov_job_done(&b->jobs[i]);
        free(b->requests);
        free(b->jobs);
        free(b->dequeued);
        *b = (Batch){};
}

static bool batch_empty(const Batch *b) {
        return b->n_jobs + b->n_requests + b->n_dequeued == 0;
}

/* Opens the database if it is not open. I/O threads only. */
static int recorder_ensure_open(Recorder *r, char **ret_error) {
        int k = 0;

        pthread_mutex_lock(&r->open_lock);
        if (!r->db)
                k = provdb_open(r->path, &r->db, ret_error);
        pthread_mutex_unlock(&r->open_lock);
        return k;
}

static void flush_run(IoWork *w) {
        Flush *f = (Flush *)w;
        Recorder *r = f->recorder;
        Config *c = r->manager->config;

        f->result = recorder_ensure_open(r, &f->error);
        if (f->result < 0)
                return;
        f->result = provdb_write(r->db, f->batch.requests, f->batch.n_requests, f->batch.jobs,
                                 f->batch.n_jobs, f->batch.dequeued, f->batch.n_dequeued, &f->error);
        if (f->result < 0)
                return;
        if (f->retain) {
                uint64_t now = now_usec(CLOCK_REALTIME), min_time = 0;
                if (c->retention_days > 0 && now > c->retention_days * 86400ULL * 1000000ULL)
                        min_time = now - c->retention_days * 86400ULL * 1000000ULL;
                (void)provdb_retain(r->db, min_time, c->retention_rows, NULL);
        }
        (void)provdb_count_jobs(r->db, &f->rows);
        /* The row limit holds after every flush, not only after the periodic
         * retention: once at the limit, a flush deletes as many of the
         * oldest rows as it added (a range delete on the primary key). */
        if (!f->retain && c->retention_rows > 0 && f->rows > c->retention_rows) {
                (void)provdb_retain(r->db, 0, c->retention_rows, NULL);
                (void)provdb_count_jobs(r->db, &f->rows);
        }
        (void)provdb_bound_wal(r->db);
}

static void recorder_schedule(Recorder *r, uint64_t usec);
static void recorder_flush(Recorder *r);

static void recorder_set_degraded(Recorder *r, const char *reason) {
        if (!r->degraded) {
                LogField fields[] = {
                        LOG_FIELD_STR("MESSAGE_ID", PYCQUEUE_MESSAGE_DEGRADED),
                        LOG_FIELD_STR("PYCQUEUE_DEGRADED_REASON", reason),
                };
                log_struct_internal(
                        LOG_ERR, 0, fields, ELEMENTSOF(fields),
                        "Provenance recording is DEGRADED: %s. Compiles go on; records are kept in "
                        "memory and written once the database works again.",
                        reason);
        }
        r->degraded = true;
        free(r->degraded_reason);
        r->degraded_reason = strdup(reason);
        manager_status_changed(r->manager);
}

/* Puts the records of a failed batch back in front of the pending ones. */
static void recorder_requeue(Recorder *r, Batch *b) {
        Batch *p = &r->pending;
        size_t nj = b->n_jobs + p->n_jobs, nr = b->n_requests + p->n_requests;
        size_t nd = b->n_dequeued + p->n_dequeued;
        ProvJob *jobs;
        ProvRequest *reqs;
        uint64_t *deq;

        jobs = malloc(MAX(nj, (size_t)1) * sizeof(ProvJob));
        reqs = malloc(MAX(nr, (size_t)1) * sizeof(ProvRequest));
        deq = malloc(MAX(nd, (size_t)1) * sizeof(uint64_t));
        if (!jobs || !reqs || !deq) {
                free(jobs);
                free(reqs);
                free(deq);
                r->dropped += b->n_jobs;
                batch_done(b);
                return;
        }
        /* An empty batch may have no arrays at all: memcpy() from NULL is
         * undefined even for zero bytes. */
        if (b->n_jobs > 0)
                memcpy(jobs, b->jobs, b->n_jobs * sizeof(ProvJob));
        if (p->n_jobs > 0)
                memcpy(jobs + b->n_jobs, p->jobs, p->n_jobs * sizeof(ProvJob));
        if (b->n_requests > 0)
                memcpy(reqs, b->requests, b->n_requests * sizeof(ProvRequest));
        if (p->n_requests > 0)
                memcpy(reqs + b->n_requests, p->requests, p->n_requests * sizeof(ProvRequest));
        if (b->n_dequeued > 0)
                memcpy(deq, b->dequeued, b->n_dequeued * sizeof(uint64_t));
        if (p->n_dequeued > 0)
                memcpy(deq + b->n_dequeued, p->dequeued, p->n_dequeued * sizeof(uint64_t));
        free(b->jobs);
        free(b->requests);
        free(b->dequeued);
        free(p->jobs);
        free(p->requests);
        free(p->dequeued);
        *b = (Batch){};
        *p = (Batch){ .requests = reqs,
                      .n_requests = nr,
                      .allocated_requests = MAX(nr, (size_t)1),
                      .jobs = jobs,
                      .n_jobs = nj,
                      .allocated_jobs = MAX(nj, (size_t)1),
                      .dequeued = deq,
                      .n_dequeued = nd,
                      .allocated_dequeued = MAX(nd, (size_t)1) };

        /* Bounded: past the limit the oldest job records go. */
        if (p->n_jobs > RECORDER_MAX_PENDING) {
                size_t drop = p->n_jobs - RECORDER_MAX_PENDING;
                for (size_t i = 0; i < drop; i++)
                        prov_job_done(&p->jobs[i]);
                memmove(p->jobs, p->jobs + drop, (p->n_jobs - drop) * sizeof(ProvJob));
                p->n_jobs -= drop;
                r->dropped += drop;
        }
}

static void flush_done(IoWork *w) {
        Flush *f = (Flush *)w;
        Recorder *r = f->recorder;
        bool failed;

        r->flushing = false;
        if (f->result < 0) {
                recorder_set_degraded(r, f->error ? f->error : "cannot write the database");
                recorder_requeue(r, &f->batch);
                r->retry_after = now_usec(CLOCK_MONOTONIC) + RECORDER_RETRY_USEC;
        } else {
                if (r->degraded) {
                        char dropped[24];

                        snprintf(dropped, sizeof(dropped), "%llu", (unsigned long long)r->dropped);
                        LogField fields[] = {
                                LOG_FIELD_STR("MESSAGE_ID", PYCQUEUE_MESSAGE_RECOVERED),
                                LOG_FIELD_STR("PYCQUEUE_DROPPED_RECORDS", dropped),
                        };
                        log_struct_internal(
                                LOG_NOTICE, 0, fields, ELEMENTSOF(fields),
                                "Provenance recording works again (%s record(s) dropped meanwhile)",
                                dropped);
                        r->degraded = false;
                        free(r->degraded_reason);
                        r->degraded_reason = NULL;
                        manager_status_changed(r->manager);
                }
                r->rows = f->rows;
                if (f->retain)
                        r->last_retention = now_usec(CLOCK_MONOTONIC);
                batch_done(&f->batch);
        }
        failed = f->result < 0;
        free(f->error);
        free(f);
        /* Waiters see what was pending when they asked: done now, or the
         * database is failing and waiting would not help. */
        if (failed || batch_empty(&r->pending))
                recorder_run_sync_waiters(r);
        else
                recorder_flush(r);
        if (!batch_empty(&r->pending))
                recorder_schedule(r, failed ? RECORDER_RETRY_USEC : RECORDER_FLUSH_USEC);
        manager_check_idle(r->manager);
}

static void recorder_flush(Recorder *r) {
        Flush *f;

        if (r->flushing || batch_empty(&r->pending))
                return;
        f = calloc(1, sizeof(*f));
        if (!f)
                return;
        f->io = (IoWork){ .run = flush_run, .done = flush_done };
        f->recorder = r;
        f->batch = r->pending;
        r->pending = (Batch){};
        f->retain = now_usec(CLOCK_MONOTONIC) - r->last_retention >= RECORDER_RETENTION_INTERVAL ||
                    r->last_retention == 0;
        r->flushing = true;
        iopool_submit(r->manager->iopool, &f->io);
}

static int recorder_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        recorder_flush(userdata);
        return 0;
}

static void recorder_schedule(Recorder *r, uint64_t usec) {
        int enabled = SD_EVENT_OFF;

        if (!r->timer) {
                (void)sd_event_add_time_relative(r->manager->event, &r->timer, CLOCK_MONOTONIC, usec, 50000,
                                                 recorder_on_timer, r);
                return;
        }
        (void)sd_event_source_get_enabled(r->timer, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        (void)sd_event_source_set_time_relative(r->timer, usec);
        (void)sd_event_source_set_enabled(r->timer, SD_EVENT_ONESHOT);
}

static void recorder_kick(Recorder *r) {
        if (r->pending.n_jobs >= RECORDER_BATCH_JOBS && !r->degraded)
                recorder_flush(r);
        else
                recorder_schedule(r, r->degraded ? RECORDER_RETRY_USEC : RECORDER_FLUSH_USEC);
}

void recorder_add_request(Recorder *r, ProvRequest *req) {
        Batch *b = &r->pending;

        if (!r->enabled) {
                prov_request_done(req);
                return;
        }
        if (b->n_requests == b->allocated_requests) {
                size_t n = MAX(b->allocated_requests * 2, (size_t)16);
                ProvRequest *nr = realloc(b->requests, n * sizeof(*nr));
                if (!nr) {
                        prov_request_done(req);
                        return;
                }
                b->requests = nr;
                b->allocated_requests = n;
        }
        b->requests[b->n_requests++] = *req;
        *req = (ProvRequest){};
        recorder_kick(r);
}

void recorder_add_job(Recorder *r, ProvJob *job) {
        Batch *b = &r->pending;

        if (!r->enabled) {
                prov_job_done(job);
                return;
        }
        if (b->n_jobs >= RECORDER_MAX_PENDING) {
                r->dropped++;
                prov_job_done(job);
                return;
        }
        if (b->n_jobs == b->allocated_jobs) {
                size_t n = MAX(b->allocated_jobs * 2, (size_t)256);
                ProvJob *nj = realloc(b->jobs, n * sizeof(*nj));
                if (!nj) {
                        r->dropped++;
                        prov_job_done(job);
                        return;
                }
                b->jobs = nj;
                b->allocated_jobs = n;
        }
        b->jobs[b->n_jobs++] = *job;
        *job = (ProvJob){};
        recorder_kick(r);
}

static void queue_op_run(IoWork *w) {
        QueueOp *op = (QueueOp *)w;
        Recorder *r = op->recorder;
        ProvQueued q = {
                .request_id = op->request_id,
                .uid = op->uid,
                .spec = op->spec,
                .spec_size = op->spec_size,
                .peer_root = op->peer_root,
        };

        op->result = recorder_ensure_open(r, &op->error);
        if (op->result >= 0)
                op->result = provdb_queue_add(r->db, &q, &op->request, &op->error);
}

static void queue_op_done(IoWork *w) {
        QueueOp *op = (QueueOp *)w;
        Manager *m = op->recorder->manager;

        op->done(op->result, op->error, op->userdata);
        prov_request_done(&op->request);
        free(op->spec);
        free(op->peer_root);
        free(op->error);
        free(op);
        manager_check_idle(m);
}

void recorder_queue_add(Recorder *r, ProvRequest *request, uid_t uid, const char *peer_root,
                        const uint8_t *spec, size_t size, recorder_done_fn done, void *userdata) {
        QueueOp *op;

        if (!r->enabled) {
                prov_request_done(request);
                done(-EOPNOTSUPP, "provenance recording is turned off, so there is no durable queue",
                     userdata);
                return;
        }
        op = calloc(1, sizeof(*op));
        if (!op || (size > 0 && !(op->spec = malloc(size))) ||
            (peer_root && !(op->peer_root = strdup(peer_root)))) {
                if (op)
                        free(op->spec);
                free(op);
                prov_request_done(request);
                done(-ENOMEM, "out of memory", userdata);
                return;
        }
        op->io = (IoWork){ .run = queue_op_run, .done = queue_op_done };
        op->recorder = r;
        op->request_id = request->id;
        op->request = *request;
        *request = (ProvRequest){};
        op->uid = uid;
        if (size > 0)
                memcpy(op->spec, spec, size);
        op->spec_size = size;
        op->done = done;
        op->userdata = userdata;
        iopool_submit(r->manager->iopool, &op->io);
}

void recorder_queue_remove(Recorder *r, uint64_t request_id) {
        Batch *b = &r->pending;

        if (!r->enabled)
                return;
        if (b->n_dequeued == b->allocated_dequeued) {
                size_t n = MAX(b->allocated_dequeued * 2, (size_t)16);
                uint64_t *nd = realloc(b->dequeued, n * sizeof(*nd));
                if (!nd) {
                        /* Left queued: a restart replays it, and finds its
                         * files up to date. */
                        log_warning(
                                "Cannot remove finished request %llu from the durable queue: out of memory",
                                (unsigned long long)request_id);
                        return;
                }
                b->dequeued = nd;
                b->allocated_dequeued = n;
        }
        b->dequeued[b->n_dequeued++] = request_id;
        recorder_kick(r);
}

/* ---- the failures of --no-wait requests -------------------------------- */

typedef struct FailuresOp {
        IoWork io;
        Recorder *recorder;
        bool clear;
        uint64_t limit;  /* read: at most this many */
        uint64_t max_id; /* clear: up to this id */
        char *root;      /* only the failures of requests in this root (NULL: ours) */
        ProvFailure *failures;
        size_t n_failures;
        int result;
        char *error;
        recorder_failures_fn done;
        void *userdata;
} FailuresOp;

static void failures_op_run(IoWork *w) {
        FailuresOp *op = (FailuresOp *)w;
        Recorder *r = op->recorder;

        op->result = recorder_ensure_open(r, &op->error);
        if (op->result < 0)
                return;
        if (op->clear)
                op->result = provdb_failures_clear(r->db, op->max_id, op->root, &op->error);
        else
                op->result = provdb_failures_read(r->db, op->limit, op->root, &op->failures, &op->n_failures);
}

static void failures_op_done(IoWork *w) {
        FailuresOp *op = (FailuresOp *)w;
        Manager *m = op->recorder->manager;

        if (op->clear && op->result < 0)
                log_warning("Cannot clear the collected failures: %s", op->error ? op->error : "error");
        if (op->done)
                op->done(op->result, op->failures, op->n_failures, op->userdata);
        for (size_t i = 0; i < op->n_failures; i++)
                prov_failure_done(&op->failures[i]);
        free(op->failures);
        free(op->error);
        free(op->root);
        free(op);
        manager_check_idle(m);
}

static void failures_submit(void *userdata) {
        FailuresOp *op = userdata;

        iopool_submit(op->recorder->manager->iopool, &op->io);
}

void recorder_failures_read(Recorder *r, uint64_t limit, const char *root, recorder_failures_fn done,
                            void *userdata) {
        FailuresOp *op;

        if (!r->enabled) {
                done(0, NULL, 0, userdata);
                return;
        }
        op = calloc(1, sizeof(*op));
        if (!op || (root && !(op->root = strdup(root)))) {
                free(op);
                done(-ENOMEM, NULL, 0, userdata);
                return;
        }
        *op = (FailuresOp){ .io = { .run = failures_op_run, .done = failures_op_done },
                            .recorder = r,
                            .limit = limit,
                            .root = op->root,
                            .done = done,
                            .userdata = userdata };
        /* What finished requests recorded is in the database first. */
        recorder_sync(r, failures_submit, op);
}

void recorder_failures_clear(Recorder *r, uint64_t max_id, const char *root) {
        FailuresOp *op;
        char *dup = NULL;

        if (!r->enabled || (root && !(dup = strdup(root))) || !(op = calloc(1, sizeof(*op)))) {
                free(dup);
                return;
        }
        *op = (FailuresOp){ .io = { .run = failures_op_run, .done = failures_op_done },
                            .recorder = r,
                            .clear = true,
                            .max_id = max_id,
                            .root = dup };
        iopool_submit(r->manager->iopool, &op->io);
}

int recorder_queue_load(Recorder *r, int (*fn)(const ProvQueued *q, void *userdata), void *userdata) {
        if (!r->enabled || !r->db)
                return 0;
        return provdb_queue_load(r->db, fn, userdata);
}

int recorder_new(Manager *m, const char *state_dir, bool enabled, Recorder **ret) {
        _cleanup_free_ char *error = NULL;
        Recorder *r;
        int k;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->manager = m;
        r->enabled = enabled;
        pthread_mutex_init(&r->open_lock, NULL);
        r->path = path_join(state_dir, PROVDB_FILE);
        if (!r->path) {
                free(r);
                return -ENOMEM;
        }
        r->next_request_id = 1;
        if (enabled) {
                /* Opened here, before the loop runs, so the queue can be
                 * replayed; a failure only makes us degraded. */
                k = provdb_open(r->path, &r->db, &error);
                if (k < 0)
                        recorder_set_degraded(r, error ? error : "cannot open the database");
                else {
                        r->next_request_id = provdb_max_request_id(r->db) + 1;
                        (void)provdb_count_jobs(r->db, &r->rows);
                }
        }
        /* Ids stay unique across restarts even when the database was
         * unreadable at startup: fall back to the clock. */
        r->next_request_id = MAX(r->next_request_id, now_usec(CLOCK_REALTIME) / 1000u);
        *ret = r;
        return 0;
}

Recorder *recorder_free(Recorder *r) {
        if (!r)
                return NULL;
        if (r->db && !batch_empty(&r->pending))
                (void)provdb_write(r->db, r->pending.requests, r->pending.n_requests, r->pending.jobs,
                                   r->pending.n_jobs, r->pending.dequeued, r->pending.n_dequeued, NULL);
        batch_done(&r->pending);
        /* Their owners are gone at exit: drop the waiters, do not call them. */
        while (r->sync_waiters) {
                SyncWaiter *w = r->sync_waiters;
                r->sync_waiters = w->next;
                free(w);
        }
        sd_event_source_disable_unref(r->timer);
        provdb_close(r->db);
        pthread_mutex_destroy(&r->open_lock);
        free(r->degraded_reason);
        free(r->path);
        free(r);
        return NULL;
}

void recorder_sync(Recorder *r, void (*fn)(void *userdata), void *userdata) {
        SyncWaiter *w;

        if (!r->enabled || (!r->flushing && batch_empty(&r->pending))) {
                fn(userdata);
                return;
        }
        w = calloc(1, sizeof(*w));
        if (!w) {
                fn(userdata);
                return;
        }
        *w = (SyncWaiter){ .fn = fn, .userdata = userdata, .next = r->sync_waiters };
        r->sync_waiters = w;
        recorder_flush(r);
}

bool recorder_enabled(const Recorder *r) {
        return r->enabled;
}

uint64_t recorder_next_request_id(Recorder *r) {
        return r->next_request_id++;
}

bool recorder_degraded(const Recorder *r) {
        return r->degraded;
}

const char *recorder_degraded_reason(const Recorder *r) {
        return r->degraded_reason;
}

const char *recorder_path(const Recorder *r) {
        return r->path;
}

uint64_t recorder_rows(const Recorder *r) {
        return r->rows;
}

uint64_t recorder_dropped(const Recorder *r) {
        return r->dropped;
}

ProvDb *recorder_db(Recorder *r) {
        return r->db;
}
