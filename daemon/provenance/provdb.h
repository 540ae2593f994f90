/* SPDX-License-Identifier: MIT */
#pragma once

/* The provenance database: schema, migrations and batched writes (see
 * provdb.c), and the queries (see provdb-query.c). Every function may block on disk: call them from I/O
 * threads only. A ProvDb serialises its own writers with a mutex. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

#define PROVDB_SCHEMA_VERSION 3
#define PROVDB_FILE "provenance.db"
/* At most this many failures of --no-wait requests wait to be collected;
 * past it the oldest are dropped. */
#define PROVDB_MAX_FAILURES 10000u

/* Outcomes beyond the protocol's, recorded by admin verbs. */
#define PROV_OUTCOME_REMOVED 10

typedef struct ProvRequest {
        uint64_t id;
        uint64_t time_usec;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        char *exe;
        char *cmdline;
        char *parents; /* "pid\texe\tcmdline\n" per ancestor */
        char *tool;
        char *dpkg_package;
        char *package;
        char *dpkg_script; /* $DPKG_MAINTSCRIPT_NAME: "postinst", ... */
        char *root;        /* the root it worked in (a chroot, --root); NULL: the host's */
} ProvRequest;

typedef struct ProvJob {
        uint64_t request_id;
        char *target;
        char *source;
        int64_t source_mtime;
        uint64_t source_size;
        uint8_t source_sha256[32];
        uint8_t pyc_sha256[32];
        bool have_source_sha256;
        bool have_pyc_sha256;
        char *interpreter;
        char *cache_tag;
        char magic[9]; /* hex */
        unsigned opt_level;
        unsigned mode;    /* InvalidationMode */
        unsigned outcome; /* Outcome or PROV_OUTCOME_* */
        char *error_type;
        char *error_message;
        uint32_t error_line;
        uint64_t start_usec;
        uint64_t end_usec;
        bool unattended; /* of a --no-wait request, after its client left: a
                          * failure is also kept in `failures` */
} ProvJob;

/* One row of a query: a job joined with its request and interpreter.
 * Strings are borrowed for the duration of the callback. */
typedef struct ProvRow {
        const ProvJob *job;
        const ProvRequest *request;
} ProvRow;

typedef struct ProvQuery {
        const char *const *targets; /* exact targets (any of), or NULL */
        size_t n_targets;
        const char *prefix;  /* targets under this directory, or NULL */
        const char *package; /* request package or dpkg package, or NULL */
        uint64_t since_usec; /* 0 = any time */
        bool failed_only;
        bool writes_only; /* compiled rows only */
        uint64_t limit;
} ProvQuery;

typedef int (*provdb_row_fn)(const ProvRow *row, void *userdata);

/* A queued --no-wait request, stored whole so it can be replayed. */
typedef struct ProvQueued {
        uint64_t request_id;
        const uint8_t *spec; /* the original MSG_COMPILE frame */
        size_t spec_size;
        uid_t uid;
        const char *peer_root; /* the client's own root (a chroot), NULL for ours */
} ProvQueued;

typedef struct ProvDb ProvDb;

/* Opens (creating and migrating) the database at @path. */
int provdb_open(const char *path, ProvDb **ret, char **ret_error);
ProvDb *provdb_close(ProvDb *db);

/* One transaction: the requests, the jobs (and the failures among the
 * unattended ones), and the removal of the finished --no-wait requests
 * @dequeued from the durable queue. */
int provdb_write(ProvDb *db, const ProvRequest *requests, size_t n_requests, const ProvJob *jobs,
                 size_t n_jobs, const uint64_t *dequeued, size_t n_dequeued, char **ret_error);
uint64_t provdb_max_request_id(ProvDb *db);
/* Deletes job rows older than @min_time_usec (0 = keep) and beyond the
 * newest @max_rows (0 = no limit), then requests no job refers to. */
int provdb_retain(ProvDb *db, uint64_t min_time_usec, uint64_t max_rows, char **ret_error);
int provdb_count_jobs(ProvDb *db, uint64_t *ret);
/* Checkpoints and truncates the WAL when it has grown large (a reader held
 * an old snapshot), at most every half minute: 1 when it did, 0 when there
 * was nothing to do, -EBUSY while a reader is still in the way. */
int provdb_bound_wal(ProvDb *db);

/* Queues @q durably (a synced commit), with @request's row when not NULL. */
int provdb_queue_add(ProvDb *db, const ProvQueued *q, const ProvRequest *request, char **ret_error);
/* Calls @fn for every queued request, oldest first. */
int provdb_queue_load(ProvDb *db, int (*fn)(const ProvQueued *q, void *userdata), void *userdata);

/* A stored failure of a --no-wait request, with its request's context. */
typedef struct ProvFailure {
        uint64_t id;
        uint64_t request_id;
        uint64_t time_usec;
        char *target;
        char *source;
        char *error_type;
        char *error_message;
        uint32_t error_line;
        char *package;
        char *dpkg_package;
        char *dpkg_script;
        char *tool;
} ProvFailure;

/* The oldest @limit stored failures (0 = all), in a new array. */
int provdb_failures_read(ProvDb *db, uint64_t limit, const char *root, ProvFailure **ret, size_t *ret_n);
/* Deletes the failures up to id @max_id: those a collector has read. */
int provdb_failures_clear(ProvDb *db, uint64_t max_id, const char *root, char **ret_error);
void prov_failure_done(ProvFailure *f);

int provdb_audit_add(ProvDb *db, uint64_t time_usec, const char *path, pid_t pid, const char *exe,
                     const char *cmdline, const char *parents, char **ret_error);
int provdb_audit_query(ProvDb *db, uint64_t since_usec, uint64_t limit,
                       int (*fn)(uint64_t time_usec, const char *path, pid_t pid, const char *exe,
                                 const char *cmdline, const char *parents, void *userdata),
                       void *userdata);
/* The newest foreign write of @path in the audit log: 1 and its time, pid
 * and executable, or 0 when there is none. */
int provdb_audit_latest(ProvDb *db, const char *path, uint64_t *ret_time_usec, pid_t *ret_pid, char *ret_exe,
                        size_t exe_size);

/* Runs @q on a read connection of its own, so it never waits for writers. */
int provdb_query(const char *path, const ProvQuery *q, provdb_row_fn fn, void *userdata);
/* Targets whose newest record is a write (not a removal), optionally of
 * @package and/or under directory @prefix. */
int provdb_targets(const char *path, const char *package, const char *prefix,
                   int (*fn)(const char *target, void *userdata), void *userdata);

/* Point look-ups of the newest write of a target, on one read connection. */
typedef struct ProvLookup ProvLookup;
typedef struct ProvLastWrite {
        bool found;
        uint8_t pyc_sha256[32];
        bool have_pyc_sha256;
        uint64_t time_usec;
        pid_t pid;
        char interpreter[512];
        char exe[512];
} ProvLastWrite;
int provdb_lookup_open(const char *path, ProvLookup **ret);
int provdb_lookup_last_write(ProvLookup *l, const char *target, ProvLastWrite *ret);
/* As provdb_audit_latest(), on the look-up's connection. */
int provdb_lookup_audit(ProvLookup *l, const char *path, uint64_t *ret_time_usec, pid_t *ret_pid,
                        char *ret_exe, size_t exe_size);
ProvLookup *provdb_lookup_close(ProvLookup *l);

/* Every interpreter ever recorded, newest first. */
int provdb_interpreters(const char *path,
                        int (*fn)(const char *interpreter, const char *cache_tag, const char *magic,
                                  void *userdata),
                        void *userdata);

void prov_job_done(ProvJob *j);
void prov_request_done(ProvRequest *r);
