/* SPDX-License-Identifier: MIT */
#pragma once

/* A client request being served: a compile or a wait (see request.c). */

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "iopool.h"
#include "job.h"
#include "protocol.h"
#include "forward.h"
#include "macro.h"

/* For requests the daemon makes itself (repair): per-file results and the
 * end go to these instead of a client. */
typedef struct RequestHooks {
        void (*on_file)(Request *r, const char *source, const char *target, Outcome outcome,
                        const char *error_type, const char *error_message, void *userdata);
        void (*on_finish)(Request *r, int error, const char *message, void *userdata);
} RequestHooks;

typedef enum RequestKind {
        REQUEST_COMPILE,
        REQUEST_WAIT,
} RequestKind;

typedef enum RequestState {
        REQUEST_WAITING_POOLS,   /* interpreters starting */
        REQUEST_EXPANDING,       /* directory walk on an I/O thread */
        REQUEST_RUNNING,         /* jobs outstanding */
        REQUEST_FINISHED,
} RequestState;

typedef struct Request {
        Manager *manager;
        Connection *connection;  /* NULL once the client went away */
        RequestKind kind;
        RequestState state;
        struct Request *next, *prev;

        /* what was asked */
        char **paths;
        size_t n_paths;
        char **path_targets;  /* NULL, or one per path: explicit .pyc, "" = default */
        char **path_displays; /* NULL, or one per path: co_filename, "" = default */
        regex_t *excludes;
        size_t n_excludes;
        Pool **pools;
        size_t n_pools;
        unsigned opt_levels[3];
        size_t n_opt_levels;
        InvalidationMode mode;
        bool force;
        bool report_all;
        char *package;
        char *tool;
        char *dpkg_package;
        char *dpkg_script;       /* $DPKG_MAINTSCRIPT_NAME of the client */
        char *root;        /* the root it works in (rootpath.h); NULL: ours */
        char *peer_root;   /* the client's own root, kept to replay in it */
        uid_t uid;
        gid_t gid;
        pid_t pid;
        uint64_t id;             /* provenance request id */
        uint64_t seq;            /* order of arrival, against cleans (queue.c) */
        bool no_wait;            /* answered once durably queued */
        bool replayed;           /* resumed from the durable queue */
        bool collect_failures;   /* a wait that then collects the --no-wait failures */
        bool collecting;         /* ... and is reading them now */
        uint8_t *spec;           /* the MSG_COMPILE frame, for the durable queue */
        size_t spec_size;

        /* progress */
        uint64_t total, done, compiled, up_to_date, coalesced, failed;
        uint64_t outstanding;    /* jobs this request waits for */
        uint64_t last_progress_usec;
        uint64_t logged_failures; /* failures logged one by one (joblog.c) */

        IoWork io;
        ExpandResult *expanded;

        const RequestHooks *hooks;
        void *hooks_data;
        Connection *origin;      /* for an internal request: whom to record as asking */
        bool read_peer;          /* no connection (the system bus): provenance reads /proc/@pid */
} Request;

/* A compile request from an authorised Spec (consumed, whatever happens);
 * @msg is its frame, kept for the durable queue. Resolves the interpreters
 * and starts their pools. On a bad request returns a negative errno and an
 * explanation in @ret_message for the client. */
int request_new_compile(Manager *m, Connection *c, Spec *spec, const MsgReader *msg, Request **ret,
                        char **ret_message);
/* A compile request made by the daemon itself, with no client; @paths are
 * host paths, inside @root when it is not NULL. */
int request_new_internal(Manager *m, const char *root, char **paths, size_t n_paths, Pool *pool,
                         unsigned opt_level, InvalidationMode mode, const RequestHooks *hooks,
                         void *userdata, Request **ret);
/* A wait request (or, for VERB_COLLECT_FAILURES, a wait that then sends
 * and clears the stored failures of --no-wait requests); @spec is consumed. */
int request_new_wait(Manager *m, Connection *c, Spec *spec, Request **ret);
/* Starts serving; the manager's list now holds the request. */
void request_start(Request *r);
/* Attributes an internal request to @c's peer (provenance); @c may be NULL. */
void request_set_origin(Request *r, Connection *c);
/* Resumes a request from the durable queue (at startup); @peer_root is the
 * root of the client that queued it (NULL: ours). */
int request_replay(Manager *m, uint64_t id, uid_t uid, const char *peer_root, const uint8_t *spec,
                   size_t size);
/* A pool this request uses became ready or failed. */
void request_pools_changed(Request *r);
/* One job this request waits for is done. */
void request_job_done(Request *r, Job *j, const JobWaiter *waiter);
/* A wait request: answer it if what it waits for is drained. */
void request_check_wait(Request *r);
/* True when compile request @r belongs to package @package (NULL = any). */
bool request_matches_package(const Request *r, const char *package);
Request *request_free(Request *r);
DEFINE_CLEANUP(Request *, request_free);
