/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's state as one plain struct (see status.c): what the socket's
 * MSG_STATUS_REPLY carries and what the D-Bus Manager's GetStatus() and
 * properties report, filled by one function so that both read the same
 * numbers. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "contentcache.h"
#include "forward.h"
#include "manager.h"
#include "protocol.h"

/* The environment variable by which the process that starts pycqueued
 * says why it does: "autostart" (client/connection.c) or "bus" (D-Bus
 * activation). The daemon reads it once and removes it. */
#define STATUS_STARTED_BY_ENV "PYCQUEUE_STARTED_BY"

/* StartedBy is in manager.h, which keeps it. */
const char *started_by_to_string(StartedBy s);
/* The StartedBy named @s, or -EINVAL when @s is NULL or unknown. */
int started_by_from_string(const char *s);
/* How this process was started: STATUS_STARTED_BY_ENV when it says
 * "autostart" or "bus" (the variable is then removed from the environment),
 * else "socket" when systemd passed the listening socket, else "manual".
 * Called once, at startup. */
StartedBy status_started_by(bool socket_activated);

typedef struct StatusPool {
        const char *interpreter;                          /* host path */
        const char *root;                                 /* NULL: ours */
        const char *state;                                /* "starting", "ready", "failed" */
        const char *implementation, *version, *cache_tag; /* NULL unless ready */
        uint8_t magic[4];                                 /* valid when ready */
        const char *error;                                /* NULL unless failed */
        unsigned count, busy;
        uint64_t queued;
} StatusPool;

typedef struct StatusError {
        const char *source;
        const char *type;
        const char *message;
        uint32_t line;
        uint64_t realtime_usec;
} StatusError;

/* Every pointer borrows the Manager's objects: use it on the loop's current
 * iteration, then status_done(). */
typedef struct DaemonStatus {
        pid_t pid;
        const char *version;
        uint64_t uptime_usec;
        bool stopping;
        StartedBy started_by;
        bool socket_activated;
        bool audit;
        uint64_t queue_length;
        unsigned in_flight;
        unsigned connections;

        StatusPool *pools; /* owned */
        size_t n_pools;

        Counters totals;
        double throughput; /* files compiled per second, over the last MANAGER_RATE_SLOTS seconds */

        bool has_database;
        const char *database_path;
        bool recording;
        uint64_t database_size; /* the file and its WAL, bytes */
        uint64_t database_rows;
        bool degraded;
        const char *degraded_reason; /* NULL unless degraded */
        uint64_t dropped_records;

        bool cache_enabled;
        const char *cache_off_reason; /* when not enabled */
        const char *cache_directory;  /* when enabled */
        ContentCacheStats cache;
        double cache_hit_rate; /* 0..1; 0 before any lookup */

        /* Recent errors name other users' files: filled for a privileged
         * caller only; the others get their number in n_errors_hidden. */
        StatusError errors[MANAGER_RECENT_ERRORS]; /* newest first */
        unsigned n_errors;
        unsigned n_errors_hidden;
} DaemonStatus;

/* "ok", "degraded" or "off" (recording disabled); NULL without a database. */
const char *status_database_health(const DaemonStatus *s);
const char *status_state(const DaemonStatus *s);

/* Fills @ret from @m; never fails but for -ENOMEM. */
int status_collect(Manager *m, bool privileged, DaemonStatus *ret);
void status_done(DaemonStatus *s);

/* Appends @s to a MSG_STATUS_REPLY as TAG_STAT fields, in the order and
 * under the keys doc/pycqueue.1 documents for status --json. */
void status_write_fields(const DaemonStatus *s, MsgWriter *w);
