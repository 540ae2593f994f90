/* SPDX-License-Identifier: MIT */
/* The administration verbs: the Admin request and its lifecycle.
 *
 * Each request is parsed on the loop and served on an I/O thread, which
 * queries the provenance database on a read connection of its own and walks
 * the file system; the replies (MSG_RECORD frames and a closing MSG_DONE)
 * are built on the thread and sent from the loop. Nothing here blocks the
 * loop, and a reader never stalls the recorder (WAL).
 *
 * This file holds what happens on the loop: admin_start() parses the
 * request and waits for the pools it names, admin_run() dispatches to the
 * verb on the thread, and admin_done() sends the reply, or, for repair,
 * first recompiles through ordinary compile requests (forced), so repair is
 * serialised with every other writer. The verbs themselves live in
 * admin-query.c (why, history, audit), admin-verify.c (verify, repair) and
 * admin-clean.c (clean); admin-util.c has what they share.
 *
 * A front end without a socket connection (the system bus) starts the same
 * request with admin_start_hooked(): who the caller is comes as an
 * AdminCaller, with the same rules (privileged or not, the filesystem
 * identity of read-only verbs), and the reply goes to AdminHooks, one
 * record at a time as the loop takes them from the thread, then the end
 * exactly once. Records are taken as fast as the thread makes them: the
 * front end bounds what it keeps (bus-admin.c), and an unprivileged
 * caller's request_time_limit holds as on the socket. */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin-private.h"
#include "connection.h"
#include "list.h"
#include "macro.h"
#include "manager.h"
#include "pool.h"
#include "recorder.h"
#include "request.h"
#include "rootpath.h"
#include "safepath.h"
#include "spec.h"
#include "util.h"

static void item_done(Item *i) {
        free(i->pyc);
        free(i->source);
        free(i->detail);
        free(i->interpreter);
        free(i->result_detail);
}

Admin *admin_free(Admin *a) {
        Manager *m;

        if (!a)
                return NULL;
        m = a->manager;
        if (a->hooks) {
                /* Not answered yet: the daemon stops under it. */
                const AdminHooks *h = TAKE_PTR(a->hooks);
                h->on_done(-ESHUTDOWN, "pycqueued is stopping", NULL, 0, a->hooks_data);
        }
        LIST_REMOVE(m->admins, a);
        if (a->connection)
                connection_unbind(a->connection, a);
        for (size_t i = 0; i < a->n_paths; i++)
                free(a->paths[i]);
        free(a->paths);
        free(a->package);
        free(a->root);
        free(a->pools);
        for (size_t i = 0; i < a->n_clean_tags; i++)
                free(a->clean_tags[i]);
        free(a->clean_tags);
        for (size_t i = 0; i < a->n_known; i++) {
                free(a->known[i].interpreter);
                free(a->known[i].cache_tag);
        }
        free(a->known);
        free(a->db_path);
        for (size_t i = 0; i < a->n_source_tags; i++)
                free(a->source_tags[i]);
        free(a->source_tags);
        free(a->tool);
        free(a->dpkg_package);
        strlist_done(&a->cover);
        if (a->barrier) {
                /* Compiles held for this clean may go now. */
                a->barrier = queue_barrier_free(m->queue, a->barrier);
                manager_order_changed(m);
        }
        admin_stream_done(&a->stream);
        msg_writer_done(&a->done);
        free(a->error_message);
        for (size_t i = 0; i < a->n_items; i++)
                item_done(&a->items[i]);
        free(a->items);
        for (size_t i = 0; i < a->n_removed; i++)
                prov_job_done(&a->removed[i]);
        free(a->removed);
        free(a);
        /* A pool it started for a root goes now that nothing uses it; the
         * held answer follows (manager_reclaim_pools()). */
        manager_reclaim_pools(m);
        manager_check_idle(m);
        return NULL;
}

uint16_t admin_message_type(Verb verb) {
        switch (verb) {
        case VERB_WHY:
                return MSG_WHY;
        case VERB_HISTORY:
                return MSG_HISTORY;
        case VERB_VERIFY:
                return MSG_VERIFY;
        case VERB_REPAIR:
                return MSG_REPAIR;
        case VERB_CLEAN:
                return MSG_CLEAN;
        case VERB_AUDIT:
                return MSG_AUDIT;
        default:
                assert_not_reached();
        }
}

static void admin_run(IoWork *w) {
        Admin *a = (Admin *)((char *)w - offsetof(Admin, io));

        a->stream.may_block = true;
        switch (a->verb) {
        case VERB_WHY:
                admin_why_run(a);
                break;
        case VERB_HISTORY:
                admin_history_run(a);
                break;
        case VERB_VERIFY:
                admin_verify_run(a);
                if (a->error >= 0)
                        admin_items_to_records(a, false);
                break;
        case VERB_REPAIR:
                admin_repair_run(a);
                break;
        case VERB_CLEAN:
                admin_clean_run(a);
                admin_rec_u64(&a->done, "removed", a->n_removed);
                if (a->clean_sources)
                        admin_rec_u64(&a->done, "failed", a->n_failed);
                break;
        case VERB_AUDIT:
                admin_audit_run(a);
                break;
        default:
                assert_not_reached();
        }
        /* Whatever happened, the thread goes back to being ours. */
        admin_leave_caller(a);
        a->stream.may_block = false;
        if (a->truncated) {
                if (a->error == -ENOSPC)
                        a->error = 0;
                admin_rec_bool(&a->done, "truncated", true);
        }
}

/* ---- the loop side ------------------------------------------------------ */

/* Moves queued records into the connection while the client keeps up
 * (all of them when @all), and lets the thread go on. */
static void admin_pump(Admin *a, bool all) {
        Frame f;

        /* Sending flushes the connection, and a flush reports the drain
         * back here: the outer call goes on, no recursion per frame. */
        if (a->pumping)
                return;
        a->pumping = true;
        while ((all || !a->connection || connection_pending_output(a->connection) < ADMIN_STREAM_HIGH) &&
               admin_stream_pop(&a->stream, &f)) {
                if (a->connection)
                        connection_send(a->connection, f.data, f.size, false);
                else if (a->hooks)
                        a->hooks->on_record(f.data, f.size, a->hooks_data);
                else
                        free(f.data);
        }
        a->pumping = false;
        admin_stream_release(&a->stream, a->connection || a->hooks ? 0 : -ECANCELED);
}

static int admin_on_stream_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        admin_pump(userdata, false);
        return 0;
}

/* The client took some output: a streamed reply goes on. */
static void admin_on_drained(void *userdata) {
        admin_pump(userdata, false);
}

static void admin_reply(Admin *a) {
        Manager *m = a->manager;

        for (size_t i = 0; i < a->n_removed; i++)
                recorder_add_job(m->recorder, &a->removed[i]);
        a->n_removed = 0;

        /* Nothing of the verb may pin the tree it named once its client
         * has the answer (see request_finish()): the directories its walks
         * kept go now, the pool of a root it started once admin_free()'s
         * reclaim has run, and the final frame waits for that. */
        safepath_forget_cached();
        if (a->connection) {
                if (a->error < 0) {
                        connection_hold_output(a->connection);
                        connection_send_error(a->connection, a->error,
                                              a->error_message ? a->error_message : strerror(-a->error));
                } else {
                        uint8_t *data;
                        size_t size;

                        /* Streamed records go out as before (a held
                         * stream would overrun the output bound). */
                        admin_pump(a, true);
                        connection_hold_output(a->connection);
                        if (msg_writer_finish(&a->done, &data, &size) >= 0)
                                connection_send(a->connection, data, size, false);
                }
        } else if (a->hooks) {
                const AdminHooks *h;
                _cleanup_free_ uint8_t *data = NULL;
                size_t size = 0;
                int k = a->error;

                if (k >= 0) {
                        admin_pump(a, true);
                        k = msg_writer_finish(&a->done, &data, &size);
                }
                h = TAKE_PTR(a->hooks);
                h->on_done(k < 0 ? k : 0, k < 0 ? a->error_message : NULL, data, size, a->hooks_data);
        }
        admin_free(a);
}

static Item *item_by_target(Admin *a, const char *target) {
        for (size_t i = 0; i < a->n_items; i++)
                if (strcmp(a->items[i].pyc, target) == 0)
                        return &a->items[i];
        return NULL;
}

static void repair_on_file(Request *r, const char *source, const char *target, Outcome outcome,
                           const char *error_type, const char *error_message, void *userdata) {
        Admin *a = userdata;
        Item *it = target ? item_by_target(a, target) : NULL;

        if (!it)
                return;
        it->action = "recompiled";
        it->ok = outcome == OUTCOME_COMPILED || outcome == OUTCOME_COALESCED;
        if (!it->ok) {
                free(it->result_detail);
                if (asprintf(&it->result_detail, "%s: %s", error_type ? error_type : "error",
                             error_message ? error_message : "failed") < 0)
                        it->result_detail = NULL;
        }
}

static void repair_on_finish(Request *r, int error, const char *message, void *userdata) {
        Admin *a = userdata;

        if (--a->outstanding > 0)
                return;
        admin_items_to_records(a, true);
        admin_reply(a);
}

static const RequestHooks repair_hooks = {
        .on_file = repair_on_file,
        .on_finish = repair_on_finish,
};

/* Starts one forced compile request per (interpreter, level, mode) group. */
static void repair_compile(Admin *a) {
        Manager *m = a->manager;
        bool *done = calloc(MAX(a->n_items, (size_t)1), sizeof(bool));

        if (!done) {
                a->error = -ENOMEM;
                admin_reply(a);
                return;
        }
        a->outstanding = 1; /* held until every request is started */
        for (size_t i = 0; i < a->n_items; i++) {
                Item *it = &a->items[i];
                StrList sources = {};
                Request *r;
                Pool *p;

                if (done[i] || strcmp(it->problem, "orphan") == 0 || !it->source)
                        continue;
                if (!it->interpreter) {
                        it->action = "none";
                        it->ok = false;
                        it->result_detail = strdup("no known interpreter writes this cache tag");
                        continue;
                }
                for (size_t k = i; k < a->n_items; k++) {
                        Item *o = &a->items[k];
                        if (!done[k] && o->source && o->interpreter && strcmp(o->problem, "orphan") != 0 &&
                            strcmp(o->interpreter, it->interpreter) == 0 && o->opt_level == it->opt_level &&
                            o->mode == it->mode) {
                                done[k] = true;
                                (void)admin_strlist_add(&sources, o->source);
                        }
                }
                strlist_sort_unique(&sources);
                if (manager_get_pool(m, a->root, rootpath_inside(a->root, it->interpreter), &p, NULL) >= 0 &&
                    request_new_internal(m, a->root, sources.v, sources.n, p, it->opt_level, it->mode,
                                         &repair_hooks, a, &r) >= 0) {
                        a->outstanding++;
                        /* The recompiles are the repair client's doing. */
                        request_set_origin(r, a->connection);
                        if (!a->connection && a->hooks) {
                                r->uid = a->uid;
                                r->gid = a->gid;
                                r->pid = a->pid;
                        }
                        request_start(r);
                } else {
                        it->action = "none";
                        it->result_detail = strdup("cannot start the interpreter");
                }
                strlist_done(&sources);
        }
        free(done);
        repair_on_finish(NULL, 0, NULL, a);
}

static void admin_done(IoWork *w) {
        Admin *a = (Admin *)((char *)w - offsetof(Admin, io));

        if (a->type == MSG_REPAIR && a->error >= 0) {
                repair_compile(a);
                return;
        }
        admin_reply(a);
}

static void admin_submit_run(Admin *a) {
        a->io = (IoWork){ .run = admin_run, .done = admin_done };
        /* Read-only verbs have threads of their own: they never delay a
         * compile, however many of them anyone asks for. */
        iopool_submit(verb_mutates(a->verb) ? a->manager->iopool : a->manager->querypool, &a->io);
}

/* A clean runs once every compile of its sources that came before it is
 * done (queue.c): it may have to wait here, in order_waiting, until
 * admin_order_changed() finds it clear. */
static void admin_clean_try(Admin *a) {
        Manager *m = a->manager;

        if (!queue_barrier_clear(a->barrier) ||
            manager_compiles_unexpanded_before(m, queue_barrier_seq(a->barrier))) {
                a->order_waiting = true;
                return;
        }
        a->order_waiting = false;
        admin_submit_run(a);
}

void admin_order_changed(Manager *m) {
        for (Admin *a = m->admins, *next; a; a = next) {
                next = a->next;
                if (a->order_waiting)
                        admin_clean_try(a);
        }
}

static void admin_cover_run(IoWork *w) {
        admin_clean_cover_run((Admin *)((char *)w - offsetof(Admin, cover_io)));
}

static void admin_cover_done(IoWork *w) {
        Admin *a = (Admin *)((char *)w - offsetof(Admin, cover_io));
        Manager *m = a->manager;

        if (queue_barrier_set_cover(m->queue, a->barrier, a->cover.v, a->cover.n) < 0)
                /* Unknown, it covers every source: slower, still in order. */
                (void)queue_barrier_set_cover(m->queue, a->barrier, (char *[]){ (char *)"/" }, 1);
        /* Jobs it does not cover, held while it was unknown, may go. */
        manager_order_changed(m);
        admin_clean_try(a);
}

static void admin_submit_now(void *userdata) {
        Admin *a = userdata;

        if (a->barrier) {
                /* First learn which sources the clean covers (canonical
                 * paths, a file system walk: on a thread). */
                a->cover_io = (IoWork){ .run = admin_cover_run, .done = admin_cover_done };
                iopool_submit(a->manager->iopool, &a->cover_io);
                return;
        }
        admin_submit_run(a);
}

static void admin_submit(Admin *a) {
        Manager *m = a->manager;

        a->started = true;
        /* Interpreters this daemon runs are known too (their pools are
         * ready now, so their tags and magic numbers are). */
        for (size_t i = 0; i < m->n_pools; i++)
                if (m->pools[i]->state == POOL_READY && !m->pools[i]->retired) {
                        char magic[9];
                        snprintf(magic, sizeof(magic), "%02x%02x%02x%02x", m->pools[i]->info.magic[0],
                                 m->pools[i]->info.magic[1], m->pools[i]->info.magic[2],
                                 m->pools[i]->info.magic[3]);
                        if (admin_add_known(m->pools[i]->interpreter, m->pools[i]->info.cache_tag, magic,
                                            a) >= 0 &&
                            a->n_known > 0 &&
                            strcmp(a->known[a->n_known - 1].interpreter, m->pools[i]->interpreter) == 0)
                                /* Only the interpreters the daemon runs now
                                 * (trusted when their pool started) may load
                                 * untrusted files; the database's just name
                                 * cache tags and magic numbers. */
                                a->known[a->n_known - 1].runnable = true;
                }
        /* The thread must not read pools: hand it their cache tags. */
        a->clean_tags = calloc(MAX(a->n_pools, (size_t)1), sizeof(char *));
        for (size_t i = 0; a->clean_tags && i < a->n_pools; i++)
                if (a->pools[i]->info.cache_tag &&
                    (a->clean_tags[a->n_clean_tags] = strdup(a->pools[i]->info.cache_tag)))
                        a->n_clean_tags++;
        /* Queries must see every write recorded so far. */
        recorder_sync(a->manager->recorder, admin_submit_now, a);
}

void admin_pools_changed(Manager *m, Pool *p) {
        for (Admin *a = m->admins, *next; a; a = next) {
                const char *error = NULL;
                int k;

                next = a->next;
                if (a->started)
                        continue;
                k = pools_ready(a->pools, a->n_pools, a->optional_pools, &error);
                if (k < 0) {
                        a->error = k;
                        a->error_message = strdup(error);
                        admin_reply(a);
                } else if (k > 0)
                        admin_submit(a);
        }
}

/* The client went away: finish quietly. A thread producing for nobody
 * stops at its next record. */
static void admin_on_detach(void *userdata) {
        Admin *a = userdata;

        a->connection = NULL;
        admin_stream_release(&a->stream, -ECANCELED);
}

static const ConnectionUser admin_connection_user = {
        .detach = admin_on_detach,
        .drained = admin_on_drained,
};

/* The root the verb works in: the client's own (a chroot), with its --root
 * inside; found with the caller's rights when the verb runs with them. */
static int admin_take_root(Admin *a, Connection *c, const Spec *s, char **ret_message) {
        const char *peer_root = c ? c->root : NULL;
        int k;

        if (c && c->root_error < 0 && a->verb != VERB_AUDIT && a->verb != VERB_HISTORY)
                return error_message(ret_message, -EOPNOTSUPP,
                                     "the client's root directory cannot be reached from pycqueued's file "
                                     "system (another mount namespace?)");
        if (!s->root) {
                if (peer_root && !(a->root = strdup(peer_root)))
                        return -ENOMEM;
                return 0;
        }
        if (a->verb == VERB_AUDIT || a->verb == VERB_HISTORY)
                return error_message(ret_message, -EINVAL, "--root applies to paths; %s takes none",
                                     verb_to_string(a->verb));
        k = admin_enter_caller(a);
        if (k >= 0) {
                k = rootpath_join(peer_root, s->root, &a->root);
                admin_leave_caller(a);
        }
        if (k < 0)
                return error_message(ret_message, k, "--root %s: %s", s->root,
                                     k == -EXDEV ? "it leads out of the root" : strerror(-k));
        return 0;
}

/* The pools of the interpreters a verify, repair or clean names. The
 * dispatcher has checked that a caller who may not mutate names only
 * interpreters that run already or are configured. */
static int admin_take_pythons(Admin *a, Connection *c, const Spec *s, char **ret_message) {
        Manager *m = a->manager;

        if (s->n_pythons == 0)
                return 0;
        a->pools = calloc(s->n_pythons, sizeof(Pool *));
        if (!a->pools)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_pythons; i++) {
                /* Another user's use neither starts a pool (unless it is
                 * configured: the dispatcher checked) nor keeps one alive. */
                Pool *p = a->privileged || a->root ? NULL : manager_find_pool(m, s->pythons[i]);
                int k = 0;

                if (!p && !a->privileged && a->root)
                        /* Nobody but the privileged starts an interpreter
                         * inside a root. */
                        return error_message(
                                ret_message, -EPERM,
                                "interpreter %s: only root may run an interpreter inside a root",
                                s->pythons[i]);
                if (!p)
                        k = manager_get_pool(m, a->root, s->pythons[i], &p, ret_message);
                if (k < 0)
                        return k;
                a->pools[a->n_pools++] = p;
        }
        return 0;
}

/* verify and repair without --python judge a .pyc by the interpreter its
 * name or magic number points to: the configured interpreters and, for a
 * privileged caller, the default one are started so that they are known.
 * One that cannot start is simply not known; it fails nothing. */
static void admin_take_default_pythons(Admin *a) {
        Manager *m = a->manager;
        size_t n = m->config->n_interpreters + 1;
        Pool **np;

        np = realloc(a->pools, (a->n_pools + n) * sizeof(Pool *));
        if (!np)
                return;
        a->pools = np;
        for (size_t i = 0; i < n; i++) {
                const char *name =
                        i < m->config->n_interpreters ? m->config->interpreters[i] : "/usr/bin/python3";
                Pool *p;

                if (i == m->config->n_interpreters && !a->privileged)
                        break;
                /* In a root, its own python3 alone: the configured ones are
                 * the host's, and only root starts one there. */
                if (a->root && (i < m->config->n_interpreters || !a->privileged))
                        continue;
                if (manager_get_pool(m, a->root, name, &p, NULL) >= 0 && p->state != POOL_FAILED)
                        a->pools[a->n_pools++] = p;
        }
        a->optional_pools = true;
}

static int admin_start_full(Manager *m, Connection *c, const AdminCaller *caller, Spec *spec,
                            const AdminHooks *hooks, void *userdata, char **ret_message) {
        _cleanup_(spec_freep) Spec *s = spec;
        Admin *a;
        int k;

        *ret_message = NULL;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->manager = m;
        a->connection = c;
        a->verb = s->verb;
        a->type = admin_message_type(s->verb);
        LIST_PREPEND(m->admins, a);
        if (c) {
                a->uid = c->uid;
                a->privileged = c->caller == CALLER_PRIVILEGED;
                a->fsid = c->fsid;
                /* Read-only verbs of anyone but the privileged caller touch
                 * files with the caller's own rights. */
                a->as_caller = dispatch_access(s->verb, c->caller) == ACCESS_AS_CALLER;
        } else if (caller) {
                /* The same rules for a caller the bus vouches for. */
                a->uid = caller->uid;
                a->gid = caller->gid;
                a->pid = caller->pid;
                a->privileged = caller->caller == CALLER_PRIVILEGED;
                a->fsid = *caller->fsid;
                a->resolve_gid = caller->resolve_gid;
                a->resolve_groups = caller->resolve_groups;
                a->as_caller = dispatch_access(s->verb, caller->caller) == ACCESS_AS_CALLER;
        } else
                a->privileged = true;
        a->reply_rows_max = m->config->max_reply_rows;
        k = admin_stream_init(&a->stream, m->event, admin_on_stream_wake, a);
        if (k >= 0 && !a->privileged)
                /* However it is read and whatever it walks, a request of a
                 * caller who may not change files ends in bounded time. */
                a->stream.deadline_usec = now_usec(CLOCK_MONOTONIC) + m->config->request_time_usec;
        if (k >= 0)
                k = msg_writer_init(&a->done, MSG_DONE);

        if (k >= 0)
                k = admin_take_root(a, c, s, ret_message);
        if (k >= 0 && s->n_paths > m->config->max_paths_per_request)
                k = error_message(ret_message, -E2BIG, "the request names more than %u paths",
                                  m->config->max_paths_per_request);
        if (k >= 0) {
                a->paths = TAKE_PTR(s->paths);
                a->n_paths = s->n_paths;
                s->n_paths = 0;
                a->package = TAKE_PTR(s->package);
                a->since_usec = s->since_usec;
                a->limit = s->limit;
                a->failed_only = s->failed_only;
                a->clean_sources = s->clean_sources;
                a->source_tags = TAKE_PTR(s->clean_tags);
                a->n_source_tags = s->n_clean_tags;
                s->n_clean_tags = 0;
                a->tool = TAKE_PTR(s->tool);
                a->dpkg_package = TAKE_PTR(s->dpkg_package);
        }
        if (k >= 0 && a->verb == VERB_CLEAN)
                /* Its place among the compiles, taken as it arrives. */
                k = queue_barrier_new(m->queue, queue_next_seq(m->queue), &a->barrier);
        if (k >= 0 && (a->verb == VERB_VERIFY || a->verb == VERB_REPAIR || a->verb == VERB_CLEAN))
                k = admin_take_pythons(a, c, s, ret_message);
        if (k >= 0 && (a->verb == VERB_VERIFY || a->verb == VERB_REPAIR) && s->n_pythons == 0)
                admin_take_default_pythons(a);
        if (k >= 0 && a->type == MSG_AUDIT && !m->audit)
                k = error_message(ret_message, -EOPNOTSUPP,
                                  "auditing is not enabled: start pycqueued with --audit=DIR or set "
                                  "AuditRoots= in its "
                                  "configuration");
        if (k >= 0 && !recorder_enabled(m->recorder) &&
            (a->type == MSG_WHY || a->type == MSG_HISTORY || a->type == MSG_AUDIT ||
             (a->package && !a->clean_sources))) {
                k = -EOPNOTSUPP;
                if (asprintf(ret_message,
                             "provenance recording is turned off (recording = off in the daemon's "
                             "configuration), so there is no record to ask") < 0)
                        *ret_message = NULL;
        }
        if (k < 0) {
                admin_free(a);
                return k;
        }
        a->db_path = strdup(recorder_path(m->recorder));
        if (!a->db_path) {
                admin_free(a);
                return -ENOMEM;
        }
        a->db = recorder_db(m->recorder);
        a->have_db = recorder_enabled(m->recorder) && access(a->db_path, F_OK) == 0;
        if (!a->have_db && (a->type == MSG_WHY || a->type == MSG_HISTORY || a->type == MSG_AUDIT)) {
                if (asprintf(ret_message, "the provenance database %s is not available%s%s", a->db_path,
                             recorder_degraded_reason(m->recorder) ? ": " : "",
                             recorder_degraded_reason(m->recorder) ?: "") < 0)
                        *ret_message = NULL;
                admin_free(a);
                return -EIO;
        }
        if (verb_mutates(a->verb) && recorder_enabled(m->recorder)) {
                /* Removals and recompiles are recorded against this client. */
                ProvRequest pr = {
                        .id = recorder_next_request_id(m->recorder),
                        .time_usec = now_usec(CLOCK_REALTIME),
                };
                a->request_id = pr.id;
                if (c) {
                        const PeerInfo *peer = connection_peer(c);
                        pr.uid = c->uid;
                        pr.gid = c->gid;
                        pr.pid = c->pid;
                        pr.exe = peer->self.exe ? strdup(peer->self.exe) : NULL;
                        pr.cmdline = peer->self.cmdline ? strdup(peer->self.cmdline) : NULL;
                        pr.parents = peer_info_parents_text(peer);
                } else if (caller) {
                        /* The bus vouches for the pid; the process behind
                         * it is read as a compile over the bus reads it. */
                        PeerInfo peer;

                        pr.uid = caller->uid;
                        pr.gid = caller->gid;
                        pr.pid = caller->pid;
                        if (caller->pid > 0) {
                                peer_info_read(caller->pid, caller->uid, caller->gid, &peer);
                                pr.exe = peer.self.exe ? strdup(peer.self.exe) : NULL;
                                pr.cmdline = peer.self.cmdline ? strdup(peer.self.cmdline) : NULL;
                                pr.parents = peer_info_parents_text(&peer);
                                peer_info_done(&peer);
                        }
                }
                /* py3clean says who it is; pycqueue's verbs are named
                 * after the verb. */
                pr.tool = strdup((a->clean_sources || caller) && a->tool ? a->tool
                                 : a->type == MSG_CLEAN                  ? "pycqueue clean"
                                                                         : "pycqueue repair");
                pr.package = a->package ? strdup(a->package) : NULL;
                pr.dpkg_package = a->dpkg_package ? strdup(a->dpkg_package) : NULL;
                recorder_add_request(m->recorder, &pr);
        }
        if (c)
                connection_bind(c, &admin_connection_user, a);
        a->hooks = hooks;
        a->hooks_data = userdata;
        admin_pools_changed(m, NULL);
        return 0;
}

int admin_start(Manager *m, Connection *c, Spec *spec, char **ret_message) {
        return admin_start_full(m, c, NULL, spec, NULL, NULL, ret_message);
}

int admin_start_hooked(Manager *m, const AdminCaller *caller, Spec *spec, const AdminHooks *hooks,
                       void *userdata, char **ret_message) {
        return admin_start_full(m, NULL, caller, spec, hooks, userdata, ret_message);
}

bool admin_uses_pool(const Admin *a, const Pool *p) {
        for (size_t i = 0; i < a->n_pools; i++)
                if (a->pools[i] == p)
                        return true;
        return false;
}

uid_t admin_uid(const Admin *a) {
        return a->uid;
}

Admin *admin_next(const Admin *a) {
        return a->next;
}
