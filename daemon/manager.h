/* SPDX-License-Identifier: MIT */
#pragma once

/* The Manager owns the event loop and every long-lived object of the
 * daemon: listener, connections, requests, the queue, the worker pools and
 * the I/O thread pool (see manager.c). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "contentcache.h"
#include "spec.h"
#include "iopool.h"
#include "queue.h"
#include "forward.h"

#define MANAGER_RECENT_ERRORS 10
#define MANAGER_RATE_SLOTS 10

typedef struct RecentError {
        char *source;
        char *type;
        char *message;
        uint32_t line;
        uint64_t realtime_usec;
} RecentError;

/* How the daemon was started, for status (status.c). */
typedef enum StartedBy {
        STARTED_BY_MANUAL,    /* nothing said otherwise: by hand, or a plain service start */
        STARTED_BY_SOCKET,    /* systemd passed the listening socket (LISTEN_FDS) */
        STARTED_BY_AUTOSTART, /* a client found nothing listening and started it */
        STARTED_BY_BUS,       /* D-Bus activation: set by the bus part */
        _STARTED_BY_MAX,
} StartedBy;

typedef struct Counters {
        uint64_t requests;
        uint64_t compiled;     /* .pyc files written */
        uint64_t up_to_date;
        uint64_t coalesced;
        uint64_t failed;
        uint64_t worker_restarts;
} Counters;

typedef struct Manager {
        sd_event *event;
        Config *config;
        IoPool *iopool;            /* reads, walks, queries */
        IoPool *commitpool;
        IoPool *querypool;
                /* read-only verbs: never take the compile path's threads */ /* .pyc writes: they wait in
                                                                                fsync, so they get threads of
                                                                                their own */
        Queue *queue;
        Listener *listener;
        Bus *bus;                  /* the system bus front end (bus/bus.c) */
        Recorder *recorder;
        Audit *audit;
        ContentCache *cache;       /* NULL when off or refused */
        char *cache_off_reason;    /* why it is off, for status */

        Pool **pools;
        size_t n_pools;
        Connection *connections;   /* list */
        unsigned n_connections;
        Request *requests;         /* list of requests not yet answered */
        Admin *admins;             /* administration requests being served */

        SpecLimits spec_limits;    /* what the front desk accepts in one request */

        bool stopping;
        int exit_code;
        uint64_t start_usec;       /* CLOCK_MONOTONIC */
        StartedBy started_by;
        bool socket_activated;     /* kept: the listener goes away on stop */
        uint64_t next_job_id;
        uid_t worker_uid;
        gid_t worker_gid;
        int worker_uid_lock_fd; /* keeps a transient worker uid ours (workeruser.c); -1 if none */
        unsigned workers_per_pool;

        Counters totals;
        uint32_t rate[MANAGER_RATE_SLOTS]; /* files compiled per second, ring */
        uint64_t rate_second;
        RecentError recent[MANAGER_RECENT_ERRORS];
        unsigned n_recent, recent_next;

        sd_event_source *idle_source;
        sd_event_source *completion_source; /* delivers finished jobs (manager_job_finished()) */
        Job *finished_head, *finished_tail;
        sd_event_source *pool_timer_source; /* frees pools unused for pool_idle_timeout */
        sd_event_source *wait_source;  /* answers waits after a compile finished */
        sd_event_source *status_source;
        char *last_status;
        sd_event_source *order_source;      /* lets held jobs and waiting cleans go (queue.c) */
} Manager;

int manager_new(Config *config, Manager **ret);
Manager *manager_free(Manager *m);
/* Sets up the listener and signal handling, notifies readiness and runs the
 * loop until the daemon stops; returns the exit code. */
int manager_run(Manager *m);

/* Stops accepting, lets accepted work finish, then exits. */
void manager_stop(Manager *m);

/* The pool for interpreter @name (canonicalized, and refused unless only a
 * trusted user can change it), started if new: for privileged requests and
 * configured interpreters only. @ret_message may be NULL. */
int manager_get_pool(Manager *m, const char *root, const char *name, Pool **ret, char **ret_message);
/* The running pool whose canonical path is exactly @path, or NULL. Looking
 * changes nothing: in particular it does not keep the pool from being
 * reclaimed (only privileged use, manager_get_pool(), does). */
Pool *manager_find_pool(Manager *m, const char *path);
/* True when a caller who may not mutate may name @path: it has a pool
 * already, or the configuration lists it. Compares strings only. */
bool manager_interpreter_known(Manager *m, const char *path);
/* Requests (compile, wait, administration) being served for @uid. */
unsigned manager_requests_of_uid(Manager *m, uid_t uid);
/* Frees pools that were replaced or failed once nothing uses them, and the
 * pools of roots (whose workers run inside the root) as soon as nothing
 * uses them; then sends the answers held for that
 * (connection_hold_output()). Deferred to the completion event. */
void manager_reclaim_pools(Manager *m);
/* Sends every answer held by connection_hold_output(). */
void manager_release_output(Manager *m);
/* @j is done and out of the queue: its waiters hear of it from the loop's
 * next iteration, and it is freed then. */
void manager_job_finished(Manager *m, Job *j);
/* A pool became ready or failed: requests waiting for it go on. */
void manager_pool_changed(Manager *m, Pool *p);
/* Something a clean or a held job may wait for changed (a job delivered, a
 * request walked its paths or finished, a clean began or ended): checks,
 * from the loop's next iteration, which held jobs may go and which cleans
 * may run. */
void manager_order_changed(Manager *m);
/* True while a compile request numbered before @seq has not yet created
 * its jobs (it waits for its interpreters, or walks its paths). */
bool manager_compiles_unexpanded_before(Manager *m, uint64_t seq);
/* A request has been answered and detached from the list. */
void manager_request_finished(Manager *m, Request *r);
void manager_count_compiled(Manager *m);
void manager_record_failure(Manager *m, const char *source, const char *type, uint32_t line,
                            const char *message);
/* Re-evaluates idleness (for --idle-exit and the drain on stop). */
void manager_check_idle(Manager *m);
/* Marks the sd_notify STATUS= line stale. */
void manager_status_changed(Manager *m);
/* Builds the MSG_STATUS_REPLY frame; recent errors (which name files) only
 * for a @privileged caller. */
int manager_status_reply(Manager *m, bool privileged, uint8_t **ret_frame, size_t *ret_size);
/* Jobs being compiled or written now. */
unsigned manager_in_flight(Manager *m);
/* Files compiled per second over the last MANAGER_RATE_SLOTS seconds. */
double manager_throughput(Manager *m);
/* True while anything is queued, in flight or being expanded. */
bool manager_busy(Manager *m);
