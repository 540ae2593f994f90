/* SPDX-License-Identifier: MIT */
/* A pool of warm workers for one interpreter, and the pipeline every job of
 * that interpreter goes through:
 *
 *   queued ─▶ preparing (I/O thread) ─▶ prepared ─▶ compiling (worker)
 *          ─▶ committing (I/O thread) ─▶ done
 *
 * Preparation runs ahead of the workers by a bounded number of jobs, so a
 * worker finishing a job finds the next source already read and locked.
 * A worker that dies or times out is replaced; its job is retried once on a
 * fresh worker and then fails with the reason. An interpreter whose workers
 * all die before their handshake makes the pool fail, and every job of it
 * fails with that error instead of retrying forever. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "manager.h"
#include "pool.h"
#include "util.h"

#define POOL_MAX_FAILED_STARTS 5
#define POOL_LOCK_RETRY_USEC (50 * 1000)
#define POOL_HANDSHAKE_TIMEOUT_USEC (30 * 1000000ULL)

struct WorkerSlot {
        Pool *pool;
        Worker *worker;
        Job *job;
        bool ready;
};

static void pool_schedule(Pool *p);
static int pool_spawn_worker(Pool *p);

static const WorkerCallbacks pool_worker_callbacks;

static void fifo_push(Job **head, Job **tail, Job *j) {
        j->next = NULL;
        if (*tail)
                (*tail)->next = j;
        else
                *head = j;
        *tail = j;
}

static void fifo_push_front(Job **head, Job **tail, Job *j) {
        j->next = *head;
        *head = j;
        if (!*tail)
                *tail = j;
}

static Job *fifo_pop(Job **head, Job **tail) {
        Job *j = *head;
        if (!j)
                return NULL;
        *head = j->next;
        if (!*head)
                *tail = NULL;
        j->next = NULL;
        return j;
}

/* Retires a finished job: out of the queue at once (no new request joins
 * it), to its waiters through the manager's completion event. */
static void pool_finish_job(Pool *p, Job *j) {
        Manager *m = p->manager;

        j->state = JOB_DONE;
        j->end_usec = now_usec(CLOCK_REALTIME);
        job_release(j);
        queue_remove(m->queue, j);
        if (j->outcome == OUTCOME_COMPILED)
                manager_count_compiled(m);
        else if (j->outcome == OUTCOME_FAILED)
                manager_record_failure(m, j->source, j->error_type ? j->error_type : "OSError",
                                       j->error_line, j->error_message ? j->error_message : "failed");
        manager_job_finished(m, j);
}

static void pool_fail_job(Pool *p, Job *j, const char *type, const char *message) {
        if (job_set_error(j, type, 0, message) < 0)
                j->outcome = OUTCOME_FAILED;
        pool_finish_job(p, j);
}

static void pool_fail_everything(Pool *p) {
        Job *j;

        while ((j = fifo_pop(&p->queued_head, &p->queued_tail))) {
                p->n_queued--;
                pool_fail_job(p, j, "OSError", p->error);
        }
        while ((j = fifo_pop(&p->prepared_head, &p->prepared_tail))) {
                p->n_prepared--;
                pool_fail_job(p, j, "OSError", p->error);
        }
}

static void pool_on_ready(Worker *w, const WorkerInfo *info, void *userdata) {
        WorkerSlot *s = userdata;
        Pool *p = s->pool;

        s->ready = true;
        p->failed_starts = 0;
        if (p->state == POOL_STARTING) {
                p->info = (WorkerInfo){
                        .hash_algo = info->hash_algo,
                        .cache_tag = strdup(info->cache_tag),
                        .version = strdup(info->version),
                        .implementation = strdup(info->implementation),
                };
                memcpy(p->info.magic, info->magic, 4);
                if (!p->info.cache_tag || !p->info.version || !p->info.implementation) {
                        p->state = POOL_FAILED;
                        p->error = strdup("out of memory");
                } else {
                        content_cache_interpreter_id(p->info.magic, p->info.implementation, p->info.version,
                                                     p->info.cache_tag, p->cache_interpreter);
                        p->state = POOL_READY;
                        /* A root's pool starts for each request that needs it
                         * (it must not outlive them): not news each time. */
                        log_full_errno(p->root ? LOG_DEBUG : LOG_INFO, 0,
                                 "Interpreter %s ready: %s %s, cache tag %s, %u worker(s)", p->interpreter,
                                 info->implementation, info->version, info->cache_tag, p->max_workers);
                }
                manager_pool_changed(p->manager, p);
        }
        pool_schedule(p);
}

static void pool_commit_done(IoWork *w);

/* @j->data holds the .pyc to write: from a worker, or rebuilt from the
 * content cache. */
static void pool_submit_commit(Pool *p, Job *j) {
        j->state = JOB_COMMITTING;
        j->io = (IoWork){ .run = job_commit_run, .done = pool_commit_done };
        p->n_committing++;
        iopool_submit(p->manager->commitpool, &j->io);
}

static bool pyc_matches_job(Pool *p, Job *j, const uint8_t *pyc, size_t size) {
        PycHeader h;

        if (pyc_header_parse(pyc, size, &h) < 0 || size <= PYC_HEADER_SIZE)
                return false;
        if (memcmp(h.magic, p->info.magic, 4) != 0 || pyc_header_mode(&h) != j->mode)
                return false;
        if (j->mode == INVALIDATION_TIMESTAMP)
                return h.mtime == j->mtime && h.size == j->size;
        if (p->info.hash_algo == PYC_HASH_UNKNOWN)
                return true;
        return h.hash == pyc_source_hash(p->info.hash_algo, p->info.magic, j->data, j->data_size);
}

static void pool_on_reply(Worker *w, const WorkerReply *reply, void *userdata) {
        WorkerSlot *s = userdata;
        Pool *p = s->pool;
        Job *j = s->job;
        uint8_t *pyc;

        s->job = NULL;
        if (!j)
                return;
        p->n_compiling--;

        if (!reply->ok) {
                (void)job_set_error(j, reply->error_type, reply->error_line, reply->error_message);
                (void)job_set_error_detail(j, reply->error_detail);
                j->outcome = OUTCOME_FAILED;
                pool_finish_job(p, j);
                pool_schedule(p);
                return;
        }
        if (!pyc_matches_job(p, j, reply->pyc, reply->pyc_size)) {
                pool_fail_job(p, j, "WorkerError",
                              "the worker returned a .pyc whose header does not match the source");
                pool_schedule(p);
                return;
        }
        pyc = malloc(reply->pyc_size);
        if (!pyc) {
                pool_fail_job(p, j, "MemoryError", "out of memory");
                pool_schedule(p);
                return;
        }
        memcpy(pyc, reply->pyc, reply->pyc_size);
        free(j->data);
        j->data = pyc;
        j->data_size = reply->pyc_size;
        pool_submit_commit(p, j);
        pool_schedule(p);
}

static int pool_on_defer(sd_event_source *src, void *userdata) {
        Pool *p = userdata;

        for (unsigned i = 0; i < p->n_dead; i++) {
                WorkerSlot *s = p->dead[i];
                worker_free(s->worker);
                free(s);
        }
        p->n_dead = 0;

        /* While stopping, replace workers only as long as accepted jobs need them. */
        if (p->state != POOL_FAILED && (!p->manager->stopping || pool_jobs(p) > 0))
                while (p->n_workers < p->max_workers && p->failed_starts < POOL_MAX_FAILED_STARTS)
                        if (pool_spawn_worker(p) < 0) {
                                p->failed_starts++;
                                break;
                        }
        if (p->state != POOL_FAILED && p->n_workers == 0 && p->failed_starts >= POOL_MAX_FAILED_STARTS &&
            (p->state == POOL_STARTING || p->n_queued + p->n_prepared > 0)) {
                if (!p->error &&
                    asprintf(&p->error, "cannot start interpreter %s: it exited before its handshake",
                                          p->interpreter) < 0)
                        p->error = NULL;
                p->state = POOL_FAILED;
                log_error("%s", p->error ? p->error : "interpreter failed");
                pool_fail_everything(p);
                manager_pool_changed(p->manager, p);
        }
        pool_schedule(p);
        return 0;
}

static void pool_on_dead(Worker *w, int reason, void *userdata) {
        WorkerSlot *s = userdata;
        Pool *p = s->pool;
        Job *j = s->job;

        /* Move the slot to the dead list; freeing happens outside the
         * worker's own callback. */
        for (unsigned i = 0; i < p->n_workers; i++)
                if (p->workers[i] == s) {
                        p->workers[i] = p->workers[--p->n_workers];
                        break;
                }
        p->dead[p->n_dead++] = s;
        s->job = NULL;
        if (s->ready)
                p->manager->totals.worker_restarts++;
        else
                p->failed_starts++;

        if (j) {
                p->n_compiling--;
                j->attempts++;
                if (j->attempts < 2 && !(p->manager->stopping && reason == -ETIMEDOUT)) {
                        log_warning("Worker %d of %s died (%s) compiling %s; retrying on a fresh worker",
                                    (int)worker_pid(w), p->interpreter,
                                    reason == -ETIMEDOUT ? "timeout" : strerror(-reason), j->source);
                        j->state = JOB_PREPARED;
                        fifo_push_front(&p->prepared_head, &p->prepared_tail, j);
                        p->n_prepared++;
                } else if (reason == -ETIMEDOUT) {
                        char msg[256];
                        snprintf(msg, sizeof(msg), "compiling took longer than %.1f s (tried %u times)",
                                 (double)p->manager->config->job_timeout_usec / 1e6, j->attempts);
                        pool_fail_job(p, j, "TimeoutError", msg);
                } else
                        pool_fail_job(p, j, "WorkerError",
                                      "the interpreter died while compiling this file (tried twice)");
        } else if (reason == -ETIMEDOUT && !s->ready)
                log_warning("Interpreter %s did not complete its handshake in time", p->interpreter);

        (void)sd_event_source_set_enabled(p->defer_source, SD_EVENT_ONESHOT);
}

static const WorkerCallbacks pool_worker_callbacks = {
        .on_ready = pool_on_ready,
        .on_reply = pool_on_reply,
        .on_dead = pool_on_dead,
};

static int pool_spawn_worker(Pool *p) {
        Manager *m = p->manager;
        WorkerOptions opts = {
                .uid = m->worker_uid,
                .gid = m->worker_gid,
                .memory_limit = m->config->worker_memory_limit,
                .handshake_timeout_usec = POOL_HANDSHAKE_TIMEOUT_USEC,
                .max_reply = (size_t)MIN(m->config->max_source_size * 16 + (64u << 20),
                                         (uint64_t)UINT32_MAX - 64),
                .root = p->root,
        };
        WorkerSlot *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->pool = p;
        r = worker_spawn(m->event, p->interpreter, &opts, &pool_worker_callbacks, s, &s->worker);
        if (r < 0) {
                free(s);
                if (!p->error &&
                    asprintf(&p->error, "cannot start interpreter %s: %s", p->interpreter, strerror(-r)) < 0)
                        p->error = NULL;
                return r;
        }
        p->workers[p->n_workers++] = s;
        return 0;
}

static int pool_lock_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        Job *j = userdata;
        Pool *p = j->pool;

        j->state = JOB_QUEUED;
        fifo_push_front(&p->queued_head, &p->queued_tail, j);
        p->n_queued++;
        p->n_preparing--; /* counted as preparing while it waited */
        pool_schedule(p);
        return 0;
}

static void pool_prepare_done(IoWork *w) {
        Job *j = job_from_io(w);
        Pool *p = j->pool;
        Manager *m = p->manager;
        char msg[512];
        int r = j->io_result;

        if (r == -EWOULDBLOCK) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);

                if (j->lock_deadline == 0)
                        j->lock_deadline = now + m->config->lock_retry_usec;
                if (now < j->lock_deadline &&
                    sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC, POOL_LOCK_RETRY_USEC, 10000,
                                               pool_lock_retry, j) >= 0)
                        return; /* still counted in n_preparing */
                p->n_preparing--;
                snprintf(msg, sizeof(msg), "another process holds a lock on the source for more than %.1f s",
                         (double)m->config->lock_retry_usec / 1e6);
                pool_fail_job(p, j, "BlockingIOError", msg);
                pool_schedule(p);
                return;
        }

        p->n_preparing--;
        if (r < 0) {
                if (r == -EFBIG)
                        snprintf(msg, sizeof(msg), "source is larger than max_source_size (%llu bytes)",
                                 (unsigned long long)m->config->max_source_size);
                else if (r == -EBADFD)
                        snprintf(msg, sizeof(msg), "source is not a regular file");
                else if (r == -EMEDIUMTYPE)
                        snprintf(msg, sizeof(msg),
                                 "source is on /proc, /sys or another pseudo file system; refusing to read "
                                 "it");
                else if (r == -ELOOP || r == -ENOTDIR)
                        snprintf(msg, sizeof(msg),
                                 "a symlink appeared in the source's path; refusing to follow it");
                else
                        snprintf(msg, sizeof(msg), "cannot read source: %s", strerror(-r));
                pool_fail_job(p, j, errno_to_exception(r == -EBADFD ? -EINVAL : r), msg);
        } else if (j->up_to_date) {
                j->outcome = OUTCOME_UP_TO_DATE;
                pool_finish_job(p, j);
        } else if (j->cache_hit) {
                pool_submit_commit(p, j);
        } else {
                j->state = JOB_PREPARED;
                fifo_push(&p->prepared_head, &p->prepared_tail, j);
                p->n_prepared++;
        }
        pool_schedule(p);
}

static void pool_commit_done(IoWork *w) {
        Job *j = job_from_io(w);
        Pool *p = j->pool;
        char msg[512];
        int r = j->io_result;

        p->n_committing--;
        if (r == -EEXIST) {
                snprintf(msg, sizeof(msg),
                         "%s is a symlink, a special file or a directory, or __pycache__ is not a real "
                         "directory; refusing to replace it",
                         j->target);
                pool_fail_job(p, j, "FileExistsError", msg);
        } else if (r < 0) {
                snprintf(msg, sizeof(msg), "cannot write %s: %s", j->target, strerror(-r));
                pool_fail_job(p, j, errno_to_exception(r), msg);
        } else {
                j->outcome = OUTCOME_COMPILED;
                pool_finish_job(p, j);
        }
        pool_schedule(p);
}

static WorkerSlot *pool_idle_slot(Pool *p) {
        for (unsigned i = 0; i < p->n_workers; i++) {
                WorkerSlot *s = p->workers[i];
                if (s->ready && !s->job && !worker_is_busy(s->worker))
                        return s;
        }
        return NULL;
}

static void pool_schedule(Pool *p) {
        Manager *m = p->manager;
        unsigned depth = p->max_workers * 2 + 2;
        Job *j;

        if (p->state == POOL_FAILED) {
                pool_fail_everything(p);
                return;
        }
        if (p->state != POOL_READY)
                return;

        while (p->n_preparing + p->n_prepared < depth && (j = fifo_pop(&p->queued_head, &p->queued_tail))) {
                p->n_queued--;
                p->n_preparing++;
                j->state = JOB_PREPARING;
                memcpy(j->params.magic, p->info.magic, 4);
                j->params.hash_algo = p->info.hash_algo;
                j->params.durable = m->config->durable;
                j->params.hash = m->config->recording;
                j->params.max_source_size = m->config->max_source_size;
                j->params.cache = m->cache;
                memcpy(j->params.cache_interpreter, p->cache_interpreter, CONTENT_CACHE_ID_SIZE);
                j->io = (IoWork){ .run = job_prepare_run, .done = pool_prepare_done };
                iopool_submit(m->iopool, &j->io);
        }

        for (;;) {
                WorkerSlot *s;
                int r;

                if (!p->prepared_head)
                        break;
                s = pool_idle_slot(p);
                if (!s)
                        break;
                j = fifo_pop(&p->prepared_head, &p->prepared_tail);
                p->n_prepared--;
                j->state = JOB_COMPILING;
                s->job = j;
                p->n_compiling++;
                r = worker_send_job(s->worker, j->id, job_display(j), j->mtime, j->size, j->opt_level, j->mode,
                                    j->data, j->data_size, m->config->job_timeout_usec);
                if (r < 0 && s->job == j) {
                        s->job = NULL;
                        p->n_compiling--;
                        pool_fail_job(p, j, "OSError", "cannot send the job to a worker");
                }
        }
}

int pools_ready(Pool *const *pools, size_t n, bool failed_ok, const char **ret_error) {
        int state = 1;

        for (size_t i = 0; i < n; i++) {
                if (pools[i]->state == POOL_FAILED) {
                        if (failed_ok)
                                continue;
                        *ret_error = pools[i]->error ? pools[i]->error : "the interpreter cannot be started";
                        return -ENOEXEC;
                }
                if (pools[i]->state != POOL_READY)
                        state = 0;
        }
        return state;
}

void pool_enqueue(Pool *p, Job *j) {
        j->state = JOB_QUEUED;
        j->start_usec = now_usec(CLOCK_REALTIME);
        p->last_used_usec = now_usec(CLOCK_MONOTONIC);
        fifo_push(&p->queued_head, &p->queued_tail, j);
        p->n_queued++;
        pool_schedule(p);
}

unsigned pool_jobs(const Pool *p) {
        return p->n_queued + p->n_preparing + p->n_prepared + p->n_compiling + p->n_committing;
}

unsigned pool_busy_workers(const Pool *p) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_workers; i++)
                if ((p->workers[i])->job)
                        n++;
        return n;
}

int pool_new(Manager *m, const char *root, const char *interpreter, unsigned n_workers, Pool **ret) {
        Pool *p;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->manager = m;
        p->max_workers = n_workers;
        p->interpreter = strdup(interpreter);
        p->root = root ? strdup(root) : NULL;
        /* room for every live worker plus the same number dying at once */
        p->workers = calloc(n_workers, sizeof(WorkerSlot *));
        p->dead = calloc((size_t)n_workers * 2 + POOL_MAX_FAILED_STARTS, sizeof(WorkerSlot *));
        if (!p->interpreter || (root && !p->root) || !p->workers || !p->dead) {
                pool_free(p);
                return -ENOMEM;
        }
        r = sd_event_add_defer(m->event, &p->defer_source, pool_on_defer, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->defer_source, SD_EVENT_OFF);
        if (r < 0) {
                pool_free(p);
                return r;
        }
        for (unsigned i = 0; i < n_workers; i++) {
                r = pool_spawn_worker(p);
                if (r < 0)
                        break;
        }
        if (p->n_workers == 0) {
                p->state = POOL_FAILED;
                if (!p->error)
                        p->error = strdup("cannot start interpreter");
        }
        *ret = p;
        return 0;
}

Pool *pool_free(Pool *p) {
        Job *j;

        if (!p)
                return NULL;
        /* Only at exit, after the I/O threads are gone: jobs still waiting
         * here are dropped (a --no-wait request comes back from the durable
         * queue). */
        while ((j = fifo_pop(&p->queued_head, &p->queued_tail)))
                job_free(j);
        while ((j = fifo_pop(&p->prepared_head, &p->prepared_tail)))
                job_free(j);
        for (unsigned i = 0; i < p->n_workers; i++) {
                WorkerSlot *s = p->workers[i];
                job_free(s->job);
                worker_free(s->worker);
                free(s);
        }
        for (unsigned i = 0; i < p->n_dead; i++) {
                WorkerSlot *s = p->dead[i];
                worker_free(s->worker);
                free(s);
        }
        sd_event_source_disable_unref(p->defer_source);
        worker_info_done(&p->info);
        free(p->workers);
        free(p->dead);
        free(p->interpreter);
        free(p->root);
        free(p->error);
        free(p);
        return NULL;
}
