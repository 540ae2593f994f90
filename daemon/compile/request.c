/* SPDX-License-Identifier: MIT */
/* Requests.
 *
 * A compile request goes through: waiting for its interpreters' pools to
 * complete their handshake (their cache tag and magic name the targets);
 * expansion of its paths on an I/O thread; then, on the loop, one pass over
 * the targets that either reports "up to date", coalesces onto the job
 * already queued or in flight for that target, or creates a job. The request
 * then only counts: each finished job reports to every request waiting on
 * it, and when nothing is outstanding the summary goes out.
 *
 * A request outlives its connection: a client that disconnects does not
 * cancel jobs another client may be waiting on. A wait request is answered
 * once no compile request (of its package, if it named one) is left.
 *
 * A --no-wait request answers once it is durably queued (with its
 * provenance record, in one commit) and goes on without its client; a
 * failure nobody saw — every failure after that answer, and every failure
 * of a request replayed after a restart — is recorded as "unattended" and
 * kept in the database until a privileged `wait --failures` (dpkg's
 * trigger) collects it: that wait, once the queue is drained, sends each
 * as a MSG_RESULT and clears them. */

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connection.h"
#include "expand.h"
#include "joblog.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "pool.h"
#include "recorder.h"
#include "request.h"
#include "rootpath.h"
#include "safepath.h"
#include "spec.h"
#include "util.h"

#define REQUEST_MAX_PYTHONS 8
#define REQUEST_PROGRESS_INTERVAL_USEC (100 * 1000)

static int request_alloc(Manager *m, Connection *c, RequestKind kind, Request **ret) {
        Request *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->manager = m;
        r->connection = c;
        r->kind = kind;
        r->mode = INVALIDATION_TIMESTAMP;
        if (c) {
                r->uid = c->uid;
                r->gid = c->gid;
                r->pid = c->pid;
        }
        *ret = r;
        return 0;
}

static void request_free_per_path(Request *r) {
        for (size_t i = 0; r->path_targets && i < r->n_paths; i++)
                free(r->path_targets[i]);
        free(r->path_targets);
        for (size_t i = 0; r->path_displays && i < r->n_paths; i++)
                free(r->path_displays[i]);
        free(r->path_displays);
}

/* The explicit targets and display names of the paths (spec.c checked that
 * each list is empty or has one entry per path). */
static void request_take_per_path(Request *r, Spec *s) {
        if (s->n_path_targets == r->n_paths) {
                r->path_targets = TAKE_PTR(s->path_targets);
                s->n_path_targets = 0;
        }
        if (s->n_path_displays == r->n_paths) {
                r->path_displays = TAKE_PTR(s->path_displays);
                s->n_path_displays = 0;
        }
}

Request *request_free(Request *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_paths; i++)
                free(r->paths[i]);
        free(r->paths);
        request_free_per_path(r);
        for (size_t i = 0; i < r->n_excludes; i++)
                regfree(&r->excludes[i]);
        free(r->excludes);
        free(r->pools);
        free(r->package);
        free(r->tool);
        free(r->dpkg_package);
        free(r->dpkg_script);
        free(r->root);
        free(r->peer_root);
        free(r->spec);
        expand_result_free(r->expanded);
        free(r);
        return NULL;
}

/* Compiles the exclude patterns: only now, after authorisation, and for a
 * privileged caller (spec.c bounded their number and size). */
static int request_take_excludes(Request *r, const Spec *s, char **ret_message) {
        if (s->n_excludes == 0)
                return 0;
        r->excludes = calloc(s->n_excludes, sizeof(regex_t));
        if (!r->excludes)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_excludes; i++) {
                int k = regcomp(&r->excludes[i], s->excludes[i], REG_EXTENDED | REG_NOSUB);

                if (k != 0) {
                        char err[256];
                        regerror(k, &r->excludes[i], err, sizeof(err));
                        if (asprintf(ret_message, "invalid exclude pattern \"%s\": %s", s->excludes[i],
                                     err) < 0)
                                *ret_message = NULL;
                        return -EINVAL;
                }
                r->n_excludes++;
        }
        return 0;
}

/* The pools of the named interpreters (default python3), started if new:
 * the caller is privileged, so it may name any trusted interpreter. */
static int request_take_pythons(Request *r, const Spec *s, char **ret_message) {
        static const char *const def[] = { "/usr/bin/python3" };
        const char *const *names = s->n_pythons > 0 ? (const char *const *)s->pythons : def;
        size_t n = s->n_pythons > 0 ? s->n_pythons : 1;

        r->pools = calloc(n, sizeof(Pool *));
        if (!r->pools)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                Pool *p;
                bool dup = false;
                int k = manager_get_pool(r->manager, r->root, names[i], &p, ret_message);

                if (k < 0)
                        return k;
                for (size_t j = 0; j < r->n_pools; j++)
                        dup = dup || r->pools[j] == p;
                if (!dup)
                        r->pools[r->n_pools++] = p;
        }
        return 0;
}

/* The root the request works in: its client's, with its --root inside. */
static int request_take_root(Request *r, const char *peer_root, const char *requested, char **ret_message) {
        int k;

        if (peer_root) {
                r->peer_root = strdup(peer_root);
                if (!r->peer_root)
                        return -ENOMEM;
        }
        k = rootpath_join(peer_root, requested, &r->root);
        if (k < 0)
                return error_message(ret_message, k, "--root %s: %s", requested, strerror(-k));
        return 0;
}

static int request_new_compile_in(Manager *m, Connection *c, const char *peer_root, Spec *spec,
                                  const MsgReader *msg, Request **ret, char **ret_message) {
        _cleanup_(spec_freep) Spec *s = spec;
        _cleanup_(request_freep) Request *r = NULL;
        int k;

        *ret_message = NULL;
        assert(s->verb == VERB_COMPILE);
        if (c && c->root_error < 0)
                return error_message(ret_message, -EOPNOTSUPP,
                                     "the client's root directory cannot be reached from pycqueued's file "
                                     "system (another mount namespace?)");
        k = request_alloc(m, c, REQUEST_COMPILE, &r);
        if (k < 0)
                return k;
        k = request_take_root(r, peer_root, s->root, ret_message);
        if (k < 0)
                return k;
        r->paths = TAKE_PTR(s->paths);
        r->n_paths = s->n_paths;
        s->n_paths = 0;
        request_take_per_path(r, s);
        memcpy(r->opt_levels, s->opt_levels, sizeof(r->opt_levels));
        r->n_opt_levels = s->n_opt_levels;
        r->mode = s->mode;
        r->force = s->force;
        r->report_all = s->report_all;
        r->no_wait = s->no_wait;
        r->package = TAKE_PTR(s->package);
        r->tool = TAKE_PTR(s->tool);
        r->dpkg_package = TAKE_PTR(s->dpkg_package);
        r->dpkg_script = TAKE_PTR(s->dpkg_script);
        if (r->n_paths > m->config->max_paths_per_request) {
                if (asprintf(ret_message, "the request names more than %u paths",
                             m->config->max_paths_per_request) < 0)
                        *ret_message = NULL;
                k = -E2BIG;
        }
        if (k >= 0)
                k = request_take_excludes(r, s, ret_message);
        if (k >= 0)
                k = request_take_pythons(r, s, ret_message);
        if (k >= 0 && r->no_wait) {
                /* Kept whole: the durable queue stores and replays it. */
                r->spec = malloc(msg->size);
                if (!r->spec)
                        k = -ENOMEM;
                else {
                        memcpy(r->spec, msg->data, msg->size);
                        r->spec_size = msg->size;
                }
        }
        if (k < 0) {
                if (!*ret_message && asprintf(ret_message, "invalid compile request: %s", strerror(-k)) < 0)
                        *ret_message = NULL;
                return k;
        }
        *ret = TAKE_PTR(r);
        return 0;
}

int request_new_compile(Manager *m, Connection *c, Spec *spec, const MsgReader *msg, Request **ret,
                        char **ret_message) {
        return request_new_compile_in(m, c, c ? c->root : NULL, spec, msg, ret, ret_message);
}

int request_new_internal(Manager *m, const char *root, char **paths, size_t n_paths, Pool *pool,
                         unsigned opt_level, InvalidationMode mode, const RequestHooks *hooks,
                         void *userdata, Request **ret) {
        Request *r;
        int k;

        k = request_alloc(m, NULL, REQUEST_COMPILE, &r);
        if (k < 0)
                return k;
        r->paths = calloc(MAX(n_paths, (size_t)1), sizeof(char *));
        r->pools = calloc(1, sizeof(Pool *));
        r->tool = strdup("pycqueued (repair)");
        r->root = root ? strdup(root) : NULL;
        if (!r->paths || !r->pools || !r->tool || (root && !r->root)) {
                request_free(r);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_paths; i++) {
                r->paths[i] = strdup(rootpath_inside(root, paths[i]));
                if (!r->paths[i]) {
                        request_free(r);
                        return -ENOMEM;
                }
                r->n_paths++;
        }
        r->pools[r->n_pools++] = pool;
        r->opt_levels[r->n_opt_levels++] = opt_level;
        r->mode = mode;
        r->force = true;
        r->hooks = hooks;
        r->hooks_data = userdata;
        *ret = r;
        return 0;
}

int request_new_wait(Manager *m, Connection *c, Spec *spec, Request **ret) {
        _cleanup_(spec_freep) Spec *s = spec;
        Request *r;
        int k;

        k = request_alloc(m, c, REQUEST_WAIT, &r);
        if (k < 0)
                return k;
        /* The failures are every --no-wait request's: collecting waits for
         * the whole queue. */
        r->collect_failures = s->verb == VERB_COLLECT_FAILURES;
        /* A client in a chroot (a target's dpkg) collects the failures of
         * its own root's requests only. */
        if (r->collect_failures && c && c->root && !(r->root = strdup(c->root))) {
                request_free(r);
                return -ENOMEM;
        }
        if (!r->collect_failures)
                r->package = TAKE_PTR(s->package);
        *ret = r;
        return 0;
}

static void request_send(Request *r, MsgWriter *w, bool droppable) {
        uint8_t *frame;
        size_t size;

        if (!r->connection) {
                msg_writer_done(w);
                return;
        }
        if (msg_writer_finish(w, &frame, &size) < 0)
                return;
        connection_send(r->connection, frame, size, droppable);
}

static void request_send_counts(Request *r, uint16_t type) {
        MsgWriter w;

        if (msg_writer_init(&w, type) < 0)
                return;
        msg_put_u64(&w, TAG_COUNT_TOTAL, r->total);
        msg_put_u64(&w, TAG_COUNT_DONE, r->done);
        msg_put_u64(&w, TAG_COUNT_COMPILED, r->compiled);
        msg_put_u64(&w, TAG_COUNT_UP_TO_DATE, r->up_to_date);
        msg_put_u64(&w, TAG_COUNT_COALESCED, r->coalesced);
        msg_put_u64(&w, TAG_COUNT_FAILED, r->failed);
        request_send(r, &w, type == MSG_PROGRESS);
}

static void request_send_result_detail(Request *r, const char *source, const char *target, Outcome outcome,
                                       const char *type, uint32_t line, const char *message,
                                       const char *detail);

static void request_send_result(Request *r, const char *source, const char *target, Outcome outcome,
                                const char *type, uint32_t line, const char *message) {
        request_send_result_detail(r, source, target, outcome, type, line, message, NULL);
}

/* As request_send_result(), with the text the compile error would carry in
 * py_compile's PyCompileError (TAG_ERROR_DETAIL), when the worker gave it. */
static void request_send_result_detail(Request *r, const char *source, const char *target, Outcome outcome,
                                       const char *type, uint32_t line, const char *message,
                                       const char *detail) {
        MsgWriter w;

        if (r->hooks && r->hooks->on_file)
                r->hooks->on_file(r, source, target, outcome, type, message, r->hooks_data);
        if (!r->connection || (outcome != OUTCOME_FAILED && !r->report_all))
                return;
        if (msg_writer_init(&w, MSG_RESULT) < 0)
                return;
        /* As the client sees them: inside its root. */
        msg_put_string(&w, TAG_RESULT_SOURCE, rootpath_inside(r->root, source));
        if (target)
                msg_put_string(&w, TAG_RESULT_TARGET, rootpath_inside(r->root, target));
        msg_put_u64(&w, TAG_RESULT_OUTCOME, outcome);
        if (outcome == OUTCOME_FAILED) {
                msg_put_string(&w, TAG_ERROR_TYPE, type ? type : "OSError");
                msg_put_u64(&w, TAG_ERROR_LINE, line);
                msg_put_string(&w, TAG_ERROR_MESSAGE, message ? message : "failed");
                if (detail)
                        msg_put_string(&w, TAG_ERROR_DETAIL, detail);
        }
        request_send(r, &w, false);
}

static char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

/* Records one file result of this request. @j may be NULL (up to date from
 * the walk, or a path that failed before any job existed). */
static void request_record(Request *r, Job *j, const char *source, const char *target, Pool *p, unsigned opt,
                           Outcome outcome, const char *error_type, uint32_t line, const char *message) {
        Recorder *rec = r->manager->recorder;
        ProvJob pj = {
                .request_id = r->id,
                .opt_level = opt,
                .mode = r->mode,
                .outcome = outcome,
                .error_line = line,
                /* No client is there to hear of it. */
                .unattended = r->no_wait && !r->connection && !r->hooks,
        };
        uint64_t now = now_usec(CLOCK_REALTIME);

        joblog_file(r, source, target, outcome, error_type, line, message);
        if (!rec || !recorder_enabled(rec))
                return;
        pj.target = strdup_or_null(target);
        pj.source = strdup_or_null(source);
        pj.error_type = strdup_or_null(error_type);
        pj.error_message = strdup_or_null(message);
        if (p && p->state == POOL_READY) {
                pj.interpreter = strdup_or_null(p->interpreter);
                pj.cache_tag = strdup_or_null(p->info.cache_tag);
                snprintf(pj.magic, sizeof(pj.magic), "%02x%02x%02x%02x", p->info.magic[0], p->info.magic[1],
                         p->info.magic[2], p->info.magic[3]);
        }
        if (j) {
                pj.source_mtime = j->source_mtime;
                pj.source_size = j->size;
                memcpy(pj.source_sha256, j->source_sha256, 32);
                pj.have_source_sha256 = j->have_source_sha256;
                memcpy(pj.pyc_sha256, j->pyc_sha256, 32);
                pj.have_pyc_sha256 = j->have_pyc_sha256 && outcome != OUTCOME_FAILED;
                pj.start_usec = j->start_usec;
                pj.end_usec = j->end_usec ? j->end_usec : now;
        } else
                pj.start_usec = pj.end_usec = now;
        if (!pj.target)
                pj.target = strdup(source ? source : "");
        recorder_add_job(rec, &pj);
}

/* Answers and retires the request. */
static void request_finish(Request *r, int error, const char *message) {
        Manager *m = r->manager;

        if (r->state == REQUEST_FINISHED)
                return;
        r->state = REQUEST_FINISHED;
        /* A --no-wait request that fails as a whole once its client has
         * gone (an interpreter that cannot start, a walk that fails) has
         * no file result to keep: each of its paths is kept as failed,
         * so that `wait --failures` reports it. */
        if (error < 0 && r->kind == REQUEST_COMPILE && r->no_wait && !r->connection && !r->hooks)
                for (size_t i = 0; i < r->n_paths; i++)
                        request_record(r, NULL, r->paths[i], NULL, NULL, 0, OUTCOME_FAILED, "Error", 0,
                                       message ? message : strerror(-error));
        /* Done, one way or the other: nothing left to replay. */
        if (r->no_wait && r->spec_size > 0)
                recorder_queue_remove(m->recorder, r->id);
        /* Its client may unmount the tree right after the answer: nothing
         * of the request may pin it by then. The directories walked for it
         * are let go of now; a job holds descriptors of its own only while
         * it runs (job_release()); the workers of a root run chrooted in
         * it and go only when the completion event frees their pool, so
         * the answer is held until then (manager_reclaim_pools()). */
        safepath_forget_cached();
        if (r->connection)
                connection_hold_output(r->connection);
        if (error < 0) {
                if (r->connection)
                        connection_send_error(r->connection, error, message);
        } else
                request_send_counts(r, MSG_DONE);

        LIST_REMOVE(m->requests, r);

        if (r->connection)
                connection_unbind(r->connection, r);
        if (r->hooks && r->hooks->on_finish)
                r->hooks->on_finish(r, error, message, r->hooks_data);
        joblog_request_finished(r, error, message);
        manager_request_finished(m, r);
        request_free(r);
}

static void request_progress(Request *r) {
        uint64_t now;

        if (!r->connection)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        if (now - r->last_progress_usec < REQUEST_PROGRESS_INTERVAL_USEC)
                return;
        r->last_progress_usec = now;
        request_send_counts(r, MSG_PROGRESS);
}

static void request_count(Request *r, Outcome o) {
        Manager *m = r->manager;

        r->done++;
        switch (o) {
        case OUTCOME_COMPILED:
                r->compiled++;
                break;
        case OUTCOME_UP_TO_DATE:
                r->up_to_date++;
                m->totals.up_to_date++;
                break;
        case OUTCOME_COALESCED:
                r->coalesced++;
                m->totals.coalesced++;
                break;
        default:
                r->failed++;
                break;
        }
}

static void request_add_target(Request *r, const char *source, const char *target, Pool *p, unsigned opt,
                               bool up_to_date_hint, const char *display, bool explicit_target);

void request_job_done(Request *r, Job *j, const JobWaiter *waiter) {
        Outcome o = j->outcome;

        if (waiter->requeue) {
                /* The job was not the kind this request asked for: take the
                 * target again now that it is free. */
                r->outstanding--;
                request_add_target(r, j->source, j->target, j->pool, j->opt_level, false, j->display,
                                   j->explicit_target);
                if (r->state == REQUEST_RUNNING && r->outstanding == 0)
                        request_finish(r, 0, NULL);
                return;
        }

        if (o == OUTCOME_COMPILED && waiter->coalesced)
                o = OUTCOME_COALESCED;
        request_count(r, o);
        request_record(r, j, j->source, j->target, j->pool, j->opt_level, o, j->error_type, j->error_line,
                       j->error_message);
        request_send_result_detail(r, j->source, j->target, o, j->error_type, j->error_line,
                                   j->error_message, j->error_detail);
        r->outstanding--;
        if (r->state != REQUEST_RUNNING)
                return; /* still being set up; it checks at the end */
        if (r->outstanding == 0)
                request_finish(r, 0, NULL);
        else
                request_progress(r);
}

/* Takes one target into the request: joins the job already queued or in
 * flight for it, reports it up to date, or creates its job. A job that
 * would not give this request what it asked for — another invalidation
 * mode, or not forced when this request forces — is waited for and the
 * target then taken again (request_job_done()), so one writer per target
 * holds and every request still gets its own kind of .pyc. A clean of the
 * source between the job and this request is the same case: the order of
 * arrival decides on which side of the clean each compile lands (queue.c). */
static void request_add_target(Request *r, const char *source, const char *target, Pool *p, unsigned opt,
                               bool up_to_date_hint, const char *display, bool explicit_target) {
        Manager *m = r->manager;
        Job *j = queue_lookup(m->queue, target);
        int err = 0;

        if (j) {
                /* A job of another root, or with another display name,
                 * compiles the file under another co_filename: not this
                 * request's. */
                bool fits = j->mode == r->mode && (!r->force || j->params.force) &&
                            job_writes_as(j, source, rootpath_prefix_len(r->root), display, explicit_target);
                /* The job is from before a clean this request comes after:
                 * its .pyc is about to be removed, so take the target again. */
                bool after_clean = queue_barrier_between(m->queue, j->source, j->seq, r->seq);

                if (r->seq < j->seq && queue_barrier_between(m->queue, j->source, r->seq, j->seq)) {
                        /* A job held for a clean this request came before:
                         * it serves this request now, before the clean, and
                         * the waiters from after the clean go round again. */
                        queue_job_set_seq(m->queue, j, r->seq);
                        for (size_t i = 0; i < j->n_waiters; i++)
                                if (queue_barrier_between(m->queue, j->source, r->seq,
                                                          j->waiters[i].request->seq))
                                        j->waiters[i].requeue = true;
                        manager_order_changed(m);
                }
                err = job_add_waiter(j, r, true);
                if (err == 0) {
                        j->waiters[j->n_waiters - 1].requeue = !fits || after_clean;
                        r->outstanding++;
                        return;
                }
        }
        /* Up to date when the walk looked, but a clean that came before
         * this request has yet to run: after it, it will not be. */
        if (err == 0 && up_to_date_hint && !r->force &&
            !queue_barrier_between(m->queue, source, 0, r->seq)) {
                request_count(r, OUTCOME_UP_TO_DATE);
                request_record(r, NULL, source, target, p, opt, OUTCOME_UP_TO_DATE, NULL, 0, NULL);
                request_send_result(r, source, target, OUTCOME_UP_TO_DATE, NULL, 0, NULL);
                return;
        }
        if (err == 0)
                err = job_new(++m->next_job_id, source, target, rootpath_prefix_len(r->root), p, opt,
                              r->mode, &j);
        if (err == 0 && (display || explicit_target)) {
                err = job_set_explicit(j, display, explicit_target);
                if (err < 0)
                        j = job_free(j);
        }
        if (err == 0) {
                j->params.force = r->force;
                j->seq = r->seq;
                err = job_add_waiter(j, r, false);
                if (err == 0)
                        err = queue_add(m->queue, j);
                if (err < 0)
                        j = job_free(j);
        }
        if (err < 0) {
                const char *msg = err == -ENOSPC ? "the daemon's queue is full" : strerror(-err);
                request_count(r, OUTCOME_FAILED);
                request_record(r, NULL, source, target, p, opt, OUTCOME_FAILED, "OSError", 0, msg);
                manager_record_failure(m, source, "OSError", 0, msg);
                request_send_result(r, source, target, OUTCOME_FAILED, "OSError", 0, msg);
                return;
        }
        r->outstanding++;
        if (queue_job_blocked(m->queue, j))
                queue_hold(m->queue, j); /* manager_order_changed() lets it go after the clean */
        else
                pool_enqueue(p, j);
}

static void request_expand_run(IoWork *w);
static void request_expand_done(IoWork *w);

void request_pools_changed(Request *r) {
        const char *error = NULL;
        int k;

        if (r->state != REQUEST_WAITING_POOLS)
                return;
        k = pools_ready(r->pools, r->n_pools, false, &error);
        if (k < 0) {
                request_finish(r, k, error);
                return;
        }
        if (k == 0)
                return;
        r->state = REQUEST_EXPANDING;
        r->io = (IoWork){ .run = request_expand_run, .done = request_expand_done };
        iopool_submit(r->manager->iopool, &r->io);
}

static void request_expand_run(IoWork *w) {
        Request *r = (Request *)((char *)w - offsetof(Request, io));
        ExpandInterpreter ips[REQUEST_MAX_PYTHONS];
        ExpandInput in = {
                .paths = r->paths,
                .n_paths = r->n_paths,
                .path_targets = r->path_targets,
                .path_displays = r->path_displays,
                .excludes = r->excludes,
                .n_excludes = r->n_excludes,
                .interpreters = ips,
                .n_interpreters = r->n_pools,
                .opt_levels = r->opt_levels,
                .n_opt_levels = r->n_opt_levels,
                .mode = r->mode,
                .force = r->force,
                .max_files = r->manager->config->max_files_per_request,
                .root = r->root,
        };

        /* Pool info is immutable once the pool is ready. */
        for (size_t i = 0; i < r->n_pools; i++) {
                ips[i].cache_tag = r->pools[i]->info.cache_tag;
                memcpy(ips[i].magic, r->pools[i]->info.magic, 4);
                ips[i].hash_algo = r->pools[i]->info.hash_algo;
        }
        r->expanded = expand_run(&in);
}

static void request_expand_done(IoWork *w) {
        Request *r = (Request *)((char *)w - offsetof(Request, io));
        Manager *m = r->manager;
        ExpandResult *res = r->expanded;
        size_t per = r->n_pools * r->n_opt_levels;

        if (!res || res->error < 0) {
                request_finish(r, res && res->error < 0 ? res->error : -ENOMEM,
                               res && res->error_message ? res->error_message
                                                         : "cannot expand the request's paths");
                return;
        }

        for (size_t i = 0; i < res->n_entries; i++)
                r->total += res->entries[i].error_type ? 1 : per;
        {
                MsgWriter mw;
                if (msg_writer_init(&mw, MSG_ACCEPTED) >= 0) {
                        msg_put_u64(&mw, TAG_COUNT_TOTAL, r->total);
                        request_send(r, &mw, false);
                }
        }

        /* The state stays EXPANDING while jobs are added: a job that
         * finishes synchronously must not finish the request early. */
        for (size_t i = 0; i < res->n_entries; i++) {
                ExpandEntry *e = &res->entries[i];

                if (e->error_type) {
                        request_count(r, OUTCOME_FAILED);
                        request_record(r, NULL, e->source, NULL, NULL, 0, OUTCOME_FAILED, e->error_type, 0,
                                       e->error_message);
                        manager_record_failure(m, e->source, e->error_type, 0, e->error_message);
                        request_send_result(r, e->source, NULL, OUTCOME_FAILED, e->error_type, 0,
                                            e->error_message);
                        continue;
                }
                for (size_t k = 0; k < per; k++)
                        request_add_target(r, e->source, e->targets[k].path, r->pools[k / r->n_opt_levels],
                                           r->opt_levels[k % r->n_opt_levels], e->targets[k].up_to_date,
                                           e->display, e->explicit_target);
        }
        r->expanded = expand_result_free(r->expanded);
        r->state = REQUEST_RUNNING;
        manager_status_changed(m);
        /* Its jobs exist now: a clean that waited for its walk can look. */
        manager_order_changed(m);
        if (r->no_wait && r->connection) {
                /* Durably queued before the walk: answer now and go on
                 * without the client. */
                Connection *c = r->connection;
                request_send_counts(r, MSG_DONE);
                r->connection = NULL;
                connection_unbind(c, r);
        }
        if (r->outstanding == 0)
                request_finish(r, 0, NULL);
        else {
                r->last_progress_usec = 0;
                request_progress(r);
        }
}

/* Who asked, as a provenance record into @pr. */
static void request_describe(Request *r, ProvRequest *pr) {
        *pr = (ProvRequest){
                .id = r->id,
                .time_usec = now_usec(CLOCK_REALTIME),
                .uid = r->uid,
                .gid = r->gid,
                .pid = r->pid,
        };
        if (r->connection || r->origin) {
                const PeerInfo *peer = connection_peer(r->connection ? r->connection : r->origin);
                pr->exe = strdup_or_null(peer->self.exe);
                pr->cmdline = strdup_or_null(peer->self.cmdline);
                pr->parents = peer_info_parents_text(peer);
        } else if (r->read_peer && r->pid > 0) {
                PeerInfo peer;

                peer_info_read(r->pid, r->uid, r->gid, &peer);
                pr->exe = strdup_or_null(peer.self.exe);
                pr->cmdline = strdup_or_null(peer.self.cmdline);
                pr->parents = peer_info_parents_text(&peer);
                peer_info_done(&peer);
        }
        pr->tool = strdup_or_null(r->tool);
        pr->dpkg_package = strdup_or_null(r->dpkg_package);
        pr->dpkg_script = strdup_or_null(r->dpkg_script);
        pr->package = strdup_or_null(r->package);
        pr->root = strdup_or_null(r->root);
}

static void request_on_queued(int error, const char *message, void *userdata) {
        Request *r = userdata;

        if (error < 0) {
                char buf[512];
                snprintf(buf, sizeof(buf), "cannot queue the request durably: %s",
                         message ? message : strerror(-error));
                request_finish(r, error == -EOPNOTSUPP ? error : -EIO, buf);
                return;
        }
        r->state = REQUEST_WAITING_POOLS;
        request_pools_changed(r);
}

static const ConnectionUser request_connection_user;

void request_start(Request *r) {
        Manager *m = r->manager;

        if (r->connection)
                connection_bind(r->connection, &request_connection_user, r);
        LIST_PREPEND(m->requests, r);

        if (r->kind == REQUEST_WAIT) {
                r->state = REQUEST_RUNNING;
                request_check_wait(r);
                return;
        }
        m->totals.requests++;
        r->seq = queue_next_seq(m->queue);
        if (!r->replayed) {
                ProvRequest pr;

                r->id = m->recorder ? recorder_next_request_id(m->recorder) : 0;
                request_describe(r, &pr);
                r->origin = NULL; /* only needed for the record */
                if (r->no_wait && m->recorder) {
                        /* The record is committed with the queue entry;
                         * the request waits for that commit. */
                        r->state = REQUEST_EXPANDING;
                        recorder_queue_add(m->recorder, &pr, r->uid, r->peer_root, r->spec, r->spec_size,
                                           request_on_queued, r);
                        return;
                }
                if (m->recorder)
                        recorder_add_request(m->recorder, &pr); /* takes the strings */
                else
                        prov_request_done(&pr);
        }
        r->state = REQUEST_WAITING_POOLS;
        request_pools_changed(r);
}

void request_set_origin(Request *r, Connection *c) {
        if (!c)
                return;
        r->origin = c;
        r->uid = c->uid;
        r->gid = c->gid;
        r->pid = c->pid;
}

/* A replayed request that cannot even start: its paths are kept as failed,
 * as the files of one that fails later are, so that `wait --failures`
 * reports it. */
static void request_record_lost(Manager *m, uint64_t id, const MsgReader *msg, const char *message) {
        _cleanup_(spec_freep) Spec *s = NULL;
        _cleanup_free_ char *ignored = NULL;
        uint64_t now = now_usec(CLOCK_REALTIME);

        if (!m->recorder || spec_parse(msg, &m->spec_limits, &s, &ignored) < 0)
                return;
        for (size_t i = 0; i < s->n_paths; i++) {
                ProvJob pj = {
                        .request_id = id,
                        .target = strdup(s->paths[i]),
                        .source = strdup(s->paths[i]),
                        .outcome = OUTCOME_FAILED,
                        .error_type = strdup("Error"),
                        .error_message = strdup(message),
                        .start_usec = now,
                        .end_usec = now,
                        .unattended = true,
                };

                if (!pj.target || !pj.source || !pj.error_type || !pj.error_message) {
                        prov_job_done(&pj);
                        return;
                }
                recorder_add_job(m->recorder, &pj);
        }
}

int request_replay(Manager *m, uint64_t id, uid_t uid, const char *peer_root, const uint8_t *spec,
                   size_t size) {
        _cleanup_free_ char *message = NULL;
        Spec *s = NULL;
        MsgReader msg;
        Request *r;
        int k;

        k = msg_parse(spec, size, &msg);
        if (k < 0 || msg.type != MSG_COMPILE)
                return k < 0 ? k : -EBADMSG;
        k = spec_parse(&msg, &m->spec_limits, &s, &message);
        if (k < 0)
                return k;
        k = request_new_compile_in(m, NULL, peer_root, s, &msg, &r, &message);
        if (k < 0) {
                request_record_lost(m, id, &msg, message ? message : strerror(-k));
                return k;
        }
        r->id = id;
        r->uid = uid;
        r->replayed = true;
        r->no_wait = true;
        request_start(r);
        return 0;
}

bool request_matches_package(const Request *r, const char *package) {
        if (r->kind != REQUEST_COMPILE)
                return false;
        if (!package)
                return true;
        return (r->package && strcmp(r->package, package) == 0) ||
               (r->dpkg_package && strcmp(r->dpkg_package, package) == 0);
}

/* One stored failure to the collector, as a compile failure is reported,
 * with the package and maintainer script that asked. */
static void request_send_failure(Request *r, const ProvFailure *f) {
        MsgWriter w;

        if (msg_writer_init(&w, MSG_RESULT) < 0)
                return;
        msg_put_string(&w, TAG_RESULT_SOURCE, rootpath_inside(r->root, f->source ? f->source : f->target));
        msg_put_string(&w, TAG_RESULT_TARGET, rootpath_inside(r->root, f->target));
        msg_put_u64(&w, TAG_RESULT_OUTCOME, OUTCOME_FAILED);
        msg_put_string(&w, TAG_ERROR_TYPE, f->error_type ? f->error_type : "OSError");
        msg_put_u64(&w, TAG_ERROR_LINE, f->error_line);
        msg_put_string(&w, TAG_ERROR_MESSAGE, f->error_message ? f->error_message : "failed");
        if (f->package)
                msg_put_string(&w, TAG_PACKAGE, f->package);
        if (f->dpkg_package)
                msg_put_string(&w, TAG_CTX_DPKG_PACKAGE, f->dpkg_package);
        if (f->dpkg_script)
                msg_put_string(&w, TAG_CTX_DPKG_SCRIPT, f->dpkg_script);
        request_send(r, &w, false);
}

static void request_on_failures(int error, const ProvFailure *failures, size_t n, void *userdata) {
        Request *r = userdata;
        Manager *m = r->manager;

        if (error < 0) {
                request_finish(r, error, "cannot read the failures of queued requests");
                return;
        }
        for (size_t i = 0; i < n && r->connection; i++)
                request_send_failure(r, &failures[i]);
        r->total = r->done = r->failed = n;
        /* Cleared only once handed to a client that is still there; one
         * that went away leaves them for the next collector. */
        if (n > 0 && r->connection && !r->connection->closing)
                recorder_failures_clear(m->recorder, failures[n - 1].id, r->root);
        request_finish(r, 0, NULL);
}

void request_check_wait(Request *r) {
        if (r->kind != REQUEST_WAIT || r->state == REQUEST_FINISHED || r->collecting)
                return;
        for (Request *o = r->manager->requests; o; o = o->next)
                if (o != r && o->state != REQUEST_FINISHED && request_matches_package(o, r->package))
                        return;
        if (r->collect_failures && r->manager->recorder) {
                r->collecting = true;
                recorder_failures_read(r->manager->recorder, PROVDB_MAX_FAILURES, r->root, request_on_failures, r);
                return;
        }
        request_finish(r, 0, NULL);
}

/* The client went away: the work goes on (others may wait on its jobs),
 * the replies are dropped. */
static void request_on_detach(void *userdata) {
        Request *r = userdata;

        r->connection = NULL;
        /* A wait has nothing left to do without its client; one reading
         * the failures is finished by that read (which then clears none). */
        if (r->kind == REQUEST_WAIT && !r->collecting)
                request_finish(r, 0, NULL);
}

static const ConnectionUser request_connection_user = {
        .detach = request_on_detach,
};
