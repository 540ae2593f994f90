/* SPDX-License-Identifier: MIT */
/* The Manager: one sd-event loop that owns every source of the daemon.
 *
 * Only non-blocking work happens on the loop: reading and writing client
 * and worker pipes, queue bookkeeping, timers. Everything that may wait on
 * a disk runs on the I/O thread pool and comes back through its eventfd.
 *
 * Stopping (SIGTERM, SIGINT, or --idle-exit): stop accepting, tell systemd
 * STOPPING=1, let every accepted request finish, then leave the loop. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "audit.h"
#include "bus.h"
#include "connection.h"
#include "interpreter.h"
#include "job.h"
#include "listener.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "pool.h"
#include "recorder.h"
#include "request.h"
#include "rootpath.h"
#include "status.h"
#include "util.h"
#include "workeruser.h"

#define MANAGER_MAX_JOBS (4u * 1024u * 1024u)
#define MANAGER_MAX_POOLS 16
#define MANAGER_STATUS_INTERVAL_USEC (500 * 1000)
#define MANAGER_POOL_CHECK_USEC (30 * 1000000ULL)
#define WORKER_UIDS_LOCK_DIR RUNSTATEDIR "/pycqueue/worker-uids"

static int manager_on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (m->stopping) {
                log_notice("Second signal: exiting without waiting for the queue");
                sd_event_exit(m->event, 1);
                return 0;
        }
        log_info("Received %s; finishing the accepted work, then exiting", strsignal((int)si->ssi_signo));
        manager_stop(m);
        return 0;
}

/* The content cache (cache/contentcache.c). A cache that cannot be
 * trusted or opened is off, said once here; compiles go on without it. */
static int manager_open_cache(Manager *m) {
        const char *dir = m->config->cache_directory ? m->config->cache_directory : CONFIG_DEFAULT_CACHE_DIR;
        _cleanup_free_ char *reason = NULL;
        int r;

        if (m->config->cache_max_size == 0)
                return 0;
        r = content_cache_open(dir, m->config->cache_max_size, &m->cache, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (reason)
                        log_warning("Content cache off: %s", reason);
                else
                        log_warning_errno(r, "Content cache off: cannot open %s: %m", dir);
                if (!reason && asprintf(&reason, "cannot open %s: %s", dir, strerror(-r)) < 0)
                        reason = NULL;
                m->cache_off_reason = TAKE_PTR(reason);
        }
        return 0;
}

int manager_new(Config *config, Manager **ret) {
        Manager *m;
        sigset_t mask;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->config = config;
        m->start_usec = now_usec(CLOCK_MONOTONIC);
        m->worker_uid = (uid_t)-1;
        m->worker_gid = (gid_t)-1;
        m->workers_per_pool = config->workers;
        if (m->workers_per_pool == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                m->workers_per_pool = n > 0 ? (unsigned)MIN(n, 64L) : 1;
        }

        m->worker_uid_lock_fd = -1;
        if (geteuid() == 0) {
                const char *user = config->worker_user ? config->worker_user : WORKER_USER_DEFAULT;
                WorkerUser wu = WORKER_USER_NULL;

                r = worker_user_acquire(config->worker_user, WORKER_UIDS_LOCK_DIR, &wu);
                if (r == -EPERM)
                        log_error("Worker user \"%s\" is refused: workers run untrusted code and need a "
                                  "user of "
                                  "their own, never root, the root group or nobody",
                                  user);
                else if (r == -ENOENT)
                        log_error("Worker user \"%s\" does not exist", user);
                else if (r == -ERANGE)
                        log_error(
                                "No user \"%s\", and this user namespace does not map the transient worker "
                                  "uids %u-%u: create the user",
                                  user, WORKER_UID_FIRST, WORKER_UID_LAST);
                else if (r < 0)
                        log_error_errno(r, "Cannot allocate a transient worker uid (locks in %s): %m",
                                        WORKER_UIDS_LOCK_DIR);
                if (r < 0) {
                        free(m);
                        return r == -ENOENT ? -EINVAL : r;
                }
                if (wu.transient)
                        log_info("Workers run as transient uid %u (no user \"%s\" exists)", (unsigned)wu.uid,
                                 user);
                else
                        log_info("Workers run as user %s (uid %u, gid %u)", user, (unsigned)wu.uid,
                                 (unsigned)wu.gid);
                if (wu.in_use)
                        log_warning("Other processes already run as worker user %s; workers are only "
                                    "protected from them by a user of their own",
                                    user);
                m->worker_uid = wu.uid;
                m->worker_gid = wu.gid;
                m->worker_uid_lock_fd = TAKE_FD(wu.lock_fd);
        }

        /* Block the signals sd-event handles before any thread exists. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&m->event);
        if (r < 0)
                goto fail;
        r = sd_event_add_signal(m->event, NULL, SIGTERM, manager_on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, manager_on_signal, m);
        if (r < 0)
                goto fail;
        r = queue_new(MANAGER_MAX_JOBS, &m->queue);
        if (r < 0)
                goto fail;
        r = iopool_new(m->event, config->io_threads, &m->iopool);
        if (r < 0)
                goto fail;
        /* Commits mostly sleep in fsync(): keep them from delaying the
         * reads that feed the workers. */
        r = iopool_new(m->event, MIN(config->io_threads * 2, 64u), &m->commitpool);
        if (r < 0)
                goto fail;
        /* Read-only verbs (anyone may ask) get threads of their own, so
         * however many of them run, root's compiles keep theirs. */
        r = iopool_new(m->event, MAX(config->io_threads / 2, 1u), &m->querypool);
        if (r < 0)
                goto fail;
        r = manager_open_cache(m);
        if (r < 0)
                goto fail;
        m->spec_limits = SPEC_LIMITS_DEFAULT;
        m->spec_limits.max_paths = config->max_paths_per_request;
        r = recorder_new(m, config->state_dir, config->recording, &m->recorder);
        if (r < 0)
                goto fail;
        if (config->audit_roots) {
                r = audit_new(m, config->audit_roots, &m->audit);
                if (r < 0) {
                        log_error_errno(r, "Cannot start the audit of %s: %m", config->audit_roots);
                        goto fail;
                }
        }
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Threads first: their work items point into requests, admins and
         * jobs, so those go only after every thread has finished. */
        m->iopool = iopool_free(m->iopool);
        m->commitpool = iopool_free(m->commitpool);
        m->querypool = iopool_free(m->querypool);
        m->cache = content_cache_free(m->cache); /* no thread uses it any more */
        free(m->cache_off_reason);
        while (m->connections)
                connection_free(m->connections);
        while (m->admins)
                admin_free(m->admins);
        while (m->requests) {
                Request *r = m->requests;
                m->requests = r->next;
                request_free(r);
        }
        /* After the requests: nothing calls back into it any more. */
        m->bus = bus_free(m->bus);
        m->listener = listener_free(m->listener);
        m->audit = audit_free(m->audit);
        /* What is left to record is written synchronously. */
        m->recorder = recorder_free(m->recorder);
        for (size_t i = 0; i < m->n_pools; i++)
                pool_free(m->pools[i]);
        free(m->pools);
        /* Only now, with every worker reaped, may another daemon take the uid. */
        m->worker_uid_lock_fd = safe_close(m->worker_uid_lock_fd);
        queue_free(m->queue);
        for (unsigned i = 0; i < MANAGER_RECENT_ERRORS; i++) {
                free(m->recent[i].source);
                free(m->recent[i].type);
                free(m->recent[i].message);
        }
        sd_event_source_disable_unref(m->idle_source);
        sd_event_source_disable_unref(m->wait_source);
        sd_event_source_disable_unref(m->order_source);
        sd_event_source_disable_unref(m->completion_source);
        sd_event_source_disable_unref(m->pool_timer_source);
        while (m->finished_head) {
                Job *j = m->finished_head;
                m->finished_head = j->next;
                job_free(j);
        }
        sd_event_source_disable_unref(m->status_source);
        sd_event_unref(m->event);
        free(m->last_status);
        free(m);
        return NULL;
}

static bool manager_pool_in_use(Manager *m, Pool *p) {
        if (pool_jobs(p) > 0 || queue_holds_pool(m->queue, p))
                return true;
        for (Request *r = m->requests; r; r = r->next)
                for (size_t i = 0; i < r->n_pools; i++)
                        if (r->pools[i] == p)
                                return true;
        for (Admin *a = m->admins; a; a = admin_next(a))
                if (admin_uses_pool(a, p))
                        return true;
        for (Job *j = m->finished_head; j; j = j->next)
                if (j->pool == p)
                        return true;
        return false;
}

static bool streq_ptr(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static void manager_drop_pool(Manager *m, size_t i) {
        pool_free(m->pools[i]);
        m->pools[i] = m->pools[--m->n_pools];
}

static void manager_reclaim_pools_now(Manager *m) {
        for (size_t i = 0; i < m->n_pools;) {
                Pool *p = m->pools[i];

                /* A root's workers run inside it and would keep its file
                 * system busy: an installer must be able to unmount its
                 * target once its requests are done, so they go at once. */
                bool idle = p->root ||
                            (m->config->pool_idle_usec > 0 &&
                             now_usec(CLOCK_MONOTONIC) - p->last_used_usec >= m->config->pool_idle_usec);

                if ((p->retired || p->state == POOL_FAILED || idle) && !manager_pool_in_use(m, p)) {
                        log_debug("Freeing the pool of %s (%s)", p->interpreter,
                                  p->retired                ? "replaced"
                                  : p->state == POOL_FAILED ? "failed"
                                                            : "unused");
                        manager_drop_pool(m, i);
                } else
                        i++;
        }
}

/* Delivers finished jobs to their requests, and frees what nothing uses
 * any more. Runs from its own event, never from inside a pool's or a
 * request's callback, so no list is changed under a walk. */
static int manager_on_completion(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        Job *j;

        while ((j = m->finished_head)) {
                m->finished_head = j->next;
                if (!m->finished_head)
                        m->finished_tail = NULL;
                j->next = NULL;
                for (size_t i = 0; i < j->n_waiters; i++)
                        request_job_done(j->waiters[i].request, j, &j->waiters[i]);
                /* Only now, after a waiter that goes round again has
                 * queued its new job, may a clean it came before run. */
                queue_job_retired(m->queue, j);
                job_free(j);
                manager_order_changed(m);
        }
        manager_reclaim_pools_now(m);
        /* Only now are the workers of a root whose last request ended
         * gone (reaped, so their chroot no longer pins the target). */
        manager_release_output(m);
        manager_status_changed(m);
        manager_check_idle(m);
        return 0;
}

void manager_release_output(Manager *m) {
        for (Connection *c = m->connections; c; c = c->next)
                connection_release_output(c);
}

static void manager_schedule_completion(Manager *m) {
        if (!m->completion_source &&
            sd_event_add_defer(m->event, &m->completion_source, manager_on_completion, m) < 0) {
                m->completion_source = NULL;
                /* No event to send held answers from: send them now
                 * rather than never. */
                manager_release_output(m);
                return;
        }
        (void)sd_event_source_set_enabled(m->completion_source, SD_EVENT_ONESHOT);
}

void manager_job_finished(Manager *m, Job *j) {
        j->next = NULL;
        if (m->finished_tail)
                m->finished_tail->next = j;
        else
                m->finished_head = j;
        m->finished_tail = j;
        manager_schedule_completion(m);
}

void manager_reclaim_pools(Manager *m) {
        manager_schedule_completion(m);
}

Pool *manager_find_pool(Manager *m, const char *path) {
        for (size_t i = 0; i < m->n_pools; i++)
                if (!m->pools[i]->retired && m->pools[i]->state != POOL_FAILED && !m->pools[i]->root &&
                    strcmp(m->pools[i]->interpreter, path) == 0)
                        return m->pools[i];
        return NULL;
}

/* Pools nobody used for pool_idle_timeout go: only a privileged request
 * (or the configuration) brings an interpreter back. */
static int manager_on_pool_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        manager_reclaim_pools_now(m);
        (void)sd_event_source_set_time_relative(s, MANAGER_POOL_CHECK_USEC);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

bool manager_interpreter_known(Manager *m, const char *path) {
        if (manager_find_pool(m, path))
                return true;
        for (size_t i = 0; i < m->config->n_interpreters; i++)
                if (strcmp(m->config->interpreters[i], path) == 0)
                        return true;
        return false;
}

unsigned manager_requests_of_uid(Manager *m, uid_t uid) {
        unsigned n = 0;

        for (Request *r = m->requests; r; r = r->next)
                if (r->connection && r->uid == uid)
                        n++;
        for (Admin *a = m->admins; a; a = admin_next(a))
                if (admin_uid(a) == uid) /* a request whose client left still works */
                        n++;
        return n;
}

int manager_get_pool(Manager *m, const char *root, const char *name, Pool **ret, char **ret_message) {
        _cleanup_free_ char *real = NULL, *message = NULL, *host = NULL;
        InterpreterId id;
        Pool *p, **np;
        int r;

        if (root) {
                /* The root's own interpreter, found as the root would find
                 * it; then held to the same trust rules on its host path
                 * (the root's directories above it included). */
                r = rootpath_canonicalize(root, name, &host);
                if (r < 0)
                        return error_message(ret_message, r, "interpreter %s: cannot be found inside %s: %s",
                                             name, root,
                                             r == -EXDEV ? "it leads out of the root" : strerror(-r));
        }
        r = interpreter_resolve(host ? host : name, &real, &id, &message);
        if (r < 0) {
                if (ret_message)
                        *ret_message = TAKE_PTR(message);
                return r;
        }
        for (size_t i = 0; i < m->n_pools; i++) {
                p = m->pools[i];
                if (p->retired || strcmp(p->interpreter, real) != 0 || !streq_ptr(p->root, root))
                        continue;
                if (!interpreter_id_equal(&p->id, &id)) {
                        /* Another file now (an upgrade): new work goes to a
                         * new pool; this one finishes what it has. */
                        p->retired = true;
                        continue;
                }
                if (p->state == POOL_FAILED && !manager_pool_in_use(m, p)) {
                        /* Try again: the interpreter may have been fixed or
                         * installed since. */
                        manager_drop_pool(m, i);
                        break;
                }
                p->last_used_usec = now_usec(CLOCK_MONOTONIC);
                *ret = p;
                return 0;
        }
        manager_reclaim_pools_now(m);
        if (m->n_pools >= MANAGER_MAX_POOLS) {
                if (ret_message &&
                    asprintf(ret_message, "interpreter %s: this pycqueued already runs %d interpreters",
                                            real, MANAGER_MAX_POOLS) < 0)
                        *ret_message = NULL;
                return -EMFILE;
        }
        np = realloc(m->pools, (m->n_pools + 1) * sizeof(Pool *));
        if (!np)
                return -ENOMEM;
        m->pools = np;
        r = pool_new(m, root, real, m->workers_per_pool, &p);
        if (r < 0)
                return r;
        p->id = id;
        p->last_used_usec = now_usec(CLOCK_MONOTONIC);
        m->pools[m->n_pools++] = p;
        log_debug("Starting %u worker(s) for %s", m->workers_per_pool, real);
        *ret = p;
        return 0;
}

void manager_pool_changed(Manager *m, Pool *p) {
        Request *r, *next;

        admin_pools_changed(m, p);
        for (r = m->requests; r; r = next) {
                next = r->next;
                for (size_t i = 0; i < r->n_pools; i++)
                        if (r->pools[i] == p) {
                                request_pools_changed(r);
                                break;
                        }
        }
}

static int manager_on_check_waits(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        Request *r, *next;

        for (r = m->requests; r; r = next) {
                next = r->next; /* a wait finishes nothing but itself */
                request_check_wait(r);
        }
        return 0;
}

static int manager_on_order(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        Job *j;

        if (!queue_has_barriers(m->queue) && !queue_holds_any(m->queue))
                return 0;
        while ((j = queue_pop_released(m->queue)))
                pool_enqueue(j->pool, j);
        admin_order_changed(m);
        return 0;
}

void manager_order_changed(Manager *m) {
        /* Always scheduled (one cheap event per loop iteration at most): a
         * clean that ends before its cover was known leaves held jobs. */
        if (!m->order_source && sd_event_add_defer(m->event, &m->order_source, manager_on_order, m) < 0) {
                m->order_source = NULL;
                return;
        }
        (void)sd_event_source_set_enabled(m->order_source, SD_EVENT_ONESHOT);
}

bool manager_compiles_unexpanded_before(Manager *m, uint64_t seq) {
        for (Request *r = m->requests; r; r = r->next)
                if (r->kind == REQUEST_COMPILE && r->seq < seq && r->state != REQUEST_RUNNING &&
                    r->state != REQUEST_FINISHED)
                        return true;
        return false;
}

void manager_request_finished(Manager *m, Request *finished) {
        /* Waits are answered from a deferred event, not from here: the
         * caller may be walking the request list, and finishing a wait now
         * would free an element under it. */
        if (finished->kind == REQUEST_COMPILE) {
                if (!m->wait_source)
                        (void)sd_event_add_defer(m->event, &m->wait_source, manager_on_check_waits, m);
                (void)sd_event_source_set_enabled(m->wait_source, SD_EVENT_ONESHOT);
        }
        manager_order_changed(m);
        manager_reclaim_pools(m);
        manager_status_changed(m);
        manager_check_idle(m);
}

static void rate_advance(Manager *m) {
        uint64_t sec = now_usec(CLOCK_MONOTONIC) / 1000000u;

        if (sec - m->rate_second >= MANAGER_RATE_SLOTS)
                memset(m->rate, 0, sizeof(m->rate));
        else
                for (uint64_t s = m->rate_second + 1; s <= sec; s++)
                        m->rate[s % MANAGER_RATE_SLOTS] = 0;
        m->rate_second = sec;
}

double manager_throughput(Manager *m) {
        uint64_t sum = 0;

        rate_advance(m);
        for (unsigned i = 0; i < MANAGER_RATE_SLOTS; i++)
                sum += m->rate[i];
        return (double)sum / MANAGER_RATE_SLOTS;
}

void manager_count_compiled(Manager *m) {
        m->totals.compiled++;
        rate_advance(m);
        m->rate[m->rate_second % MANAGER_RATE_SLOTS]++;
}

void manager_record_failure(Manager *m, const char *source, const char *type, uint32_t line,
                            const char *message) {
        RecentError *e = &m->recent[m->recent_next];

        m->totals.failed++;
        free(e->source);
        free(e->type);
        free(e->message);
        e->source = strdup(source);
        e->type = strdup(type);
        e->message = strdup(message);
        e->line = line;
        e->realtime_usec = now_usec(CLOCK_REALTIME);
        m->recent_next = (m->recent_next + 1) % MANAGER_RECENT_ERRORS;
        if (m->n_recent < MANAGER_RECENT_ERRORS)
                m->n_recent++;
        /* Logged per request, with its fields, by joblog.c. */
}

bool manager_busy(Manager *m) {
        if (queue_size(m->queue) > 0 || iopool_pending(m->iopool) > 0 || iopool_pending(m->commitpool) > 0 ||
            m->admins)
                return true;
        for (Request *r = m->requests; r; r = r->next)
                if (r->kind == REQUEST_COMPILE)
                        return true;
        return false;
}

static int manager_on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->n_connections == 0 && !manager_busy(m)) {
                log_info("Idle for %.0f s; exiting", (double)m->config->idle_exit_usec / 1e6);
                manager_stop(m);
        }
        return 0;
}

void manager_check_idle(Manager *m) {
        bool idle = !manager_busy(m);

        if (m->stopping) {
                if (idle) {
                        /* Connections may still be open: they get EOF,
                         * after any answer still held. */
                        manager_release_output(m);
                        sd_event_exit(m->event, m->exit_code);
                }
                return;
        }
        if (m->config->idle_exit_usec == 0)
                return;
        if (idle && m->n_connections == 0) {
                if (m->idle_source) {
                        (void)sd_event_source_set_time_relative(m->idle_source, m->config->idle_exit_usec);
                        (void)sd_event_source_set_enabled(m->idle_source, SD_EVENT_ONESHOT);
                } else
                        (void)sd_event_add_time_relative(m->event, &m->idle_source, CLOCK_MONOTONIC,
                                                         m->config->idle_exit_usec, 100000, manager_on_idle,
                                                         m);
        } else if (m->idle_source)
                (void)sd_event_source_set_enabled(m->idle_source, SD_EVENT_OFF);
}

void manager_stop(Manager *m) {
        if (m->stopping)
                return;
        m->stopping = true;
        /* The name goes first: a caller then activates a new daemon rather
         * than calling one that takes no more work. */
        bus_release_name(m->bus);
        (void)sd_notify(false, "STOPPING=1\nSTATUS=Finishing accepted work, then exiting");
        m->listener = listener_free(m->listener);
        if (m->idle_source)
                (void)sd_event_source_set_enabled(m->idle_source, SD_EVENT_OFF);
        manager_check_idle(m);
}

unsigned manager_in_flight(Manager *m) {
        unsigned n = 0;
        for (size_t i = 0; i < m->n_pools; i++)
                n += m->pools[i]->n_compiling + m->pools[i]->n_committing;
        return n;
}

static void manager_update_status(Manager *m) {
        char buf[256];
        size_t queued = queue_size(m->queue);

        if (m->stopping)
                return;
        if (queued == 0)
                snprintf(buf, sizeof(buf), "Idle; %llu compiled, %llu failed since start",
                         (unsigned long long)m->totals.compiled, (unsigned long long)m->totals.failed);
        else
                snprintf(buf, sizeof(buf),
                         "%zu queued, %u in flight; %llu compiled, %llu failed since start",
                         queued - MIN(queued, (size_t)manager_in_flight(m)), manager_in_flight(m),
                         (unsigned long long)m->totals.compiled, (unsigned long long)m->totals.failed);
        if (m->last_status && strcmp(m->last_status, buf) == 0)
                return;
        free(m->last_status);
        m->last_status = strdup(buf);
        (void)sd_notifyf(false, "STATUS=%s", buf);
}

static int manager_on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_update_status(userdata);
        return 0;
}

void manager_status_changed(Manager *m) {
        bus_status_changed(m->bus);
        /* Coalesce updates: at most one sd_notify per interval. */
        if (!m->status_source)
                return;
        int enabled = SD_EVENT_OFF;
        (void)sd_event_source_get_enabled(m->status_source, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        (void)sd_event_source_set_time_relative(m->status_source, MANAGER_STATUS_INTERVAL_USEC);
        (void)sd_event_source_set_enabled(m->status_source, SD_EVENT_ONESHOT);
}

int manager_status_reply(Manager *m, bool privileged, uint8_t **ret_frame, size_t *ret_size) {
        _cleanup_(manager_status_done) ManagerStatus st = {};
        MsgWriter w;
        int r;

        r = manager_status_get_for(m, privileged, &st);
        if (r < 0)
                return r;
        r = msg_writer_init(&w, MSG_STATUS_REPLY);
        if (r < 0)
                return r;
        status_write_fields(&st, &w);
        return msg_writer_finish(&w, ret_frame, ret_size);
}

static int manager_replay_one(const ProvQueued *q, void *userdata) {
        Manager *m = userdata;
        int r = request_replay(m, q->request_id, q->uid, q->peer_root, q->spec, q->spec_size);

        if (r < 0) {
                log_warning_errno(r, "Cannot resume queued request %llu, dropping it: %m",
                                  (unsigned long long)q->request_id);
                recorder_queue_remove(m->recorder, q->request_id);
        } else
                log_info("Resuming queued request %llu", (unsigned long long)q->request_id);
        return 0;
}

int manager_run(Manager *m) {
        int r;

        r = listener_new(m, m->config->socket_path, &m->listener);
        if (r < 0)
                return r;
        m->socket_activated = listener_is_activated(m->listener);
        m->started_by = status_started_by(m->socket_activated);
        /* The system bus is optional: without one (yet) the daemon serves
         * its socket, and connects when a bus appears. */
        r = bus_new(m, &m->bus);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(m->event, &m->status_source, CLOCK_MONOTONIC,
                                       MANAGER_STATUS_INTERVAL_USEC, 100000, manager_on_status_timer, m);
        if (r < 0)
                return r;
        (void)sd_event_source_set_enabled(m->status_source, SD_EVENT_OFF);
        if (m->config->pool_idle_usec > 0) {
                r = sd_event_add_time_relative(m->event, &m->pool_timer_source, CLOCK_MONOTONIC,
                                               MANAGER_POOL_CHECK_USEC, 1000000, manager_on_pool_timer, m);
                if (r < 0)
                        return r;
        }

        /* Requests acknowledged with --no-wait before a crash or restart. */
        (void)recorder_queue_load(m->recorder, manager_replay_one, m);

        (void)sd_notify(false, "READY=1\nSTATUS=Idle; 0 compiled, 0 failed since start");
        log_info("pycqueued %s ready on %s (%u worker(s) per interpreter%s)", PACKAGE_VERSION,
                 listener_is_activated(m->listener) ? "a socket passed by systemd" : m->config->socket_path,
                 m->workers_per_pool, geteuid() == 0 ? ", workers run unprivileged" : "");
        manager_check_idle(m);

        r = sd_event_loop(m->event);
        if (r < 0)
                return r;
        return r;
}
