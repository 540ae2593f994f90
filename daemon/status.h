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
        const char *interpreter; /* host path; not necessarily UTF-8 */
        const char *root;        /* its workers run chrooted here; NULL: ours */
        const char *state;       /* "starting", "ready", "failed" */
        bool ready;
        const char *implementation; /* what the workers reported: "" until ready */
        const char *version;        /* "" until ready */
        const char *cache_tag;      /* "" until ready */
        uint8_t magic[4];           /* zero until ready */
        const char *error;          /* NULL unless failed */
        unsigned count, busy, queued;
} StatusPool;

typedef struct StatusError {
        const char *source;
        const char *type;
        const char *message;
        uint32_t line;
        uint64_t realtime_usec;
} StatusError;

/* Every pointer borrows the Manager's objects: valid until the loop runs
 * on; then manager_status_done(). */
typedef struct ManagerStatus {
        pid_t pid;
        const char *version;
        const char *state; /* "running" or "stopping" */
        uint64_t uptime_usec;
        StartedBy started_by;
        bool socket_activated; /* systemd passed the listening socket */
        bool audit;
        uint64_t queue_length; /* jobs in the queue, those in flight included */
        unsigned in_flight;
        unsigned connections;

        size_t n_pools;
        StatusPool *pools; /* n_pools entries, allocated */

        Counters totals;
        double throughput; /* files per second over the last MANAGER_RATE_SLOTS seconds */

        bool have_database;
        const char *database_path;
        bool recording;
        uint64_t database_size; /* the file and its WAL, bytes */
        uint64_t database_rows;
        bool degraded;
        const char *degraded_reason; /* "" when not degraded */
        uint64_t dropped_records;

        bool cache_enabled;
        const char *cache_off_reason; /* when not enabled */
        const char *cache_directory;  /* when enabled */
        ContentCacheStats cache;      /* when enabled */
        double cache_hit_rate;        /* 0 to 1; 0 when off or unused */

        /* Recent errors name other users' files: filled for a privileged
         * caller only; anyone else gets their number in n_errors_hidden. */
        StatusError errors[MANAGER_RECENT_ERRORS]; /* newest first */
        unsigned n_errors;
        unsigned n_errors_hidden;
} ManagerStatus;

/* Fills @ret from @m, the recent errors only for a @privileged caller.
 * Returns 0 or -ENOMEM. */
int manager_status_get_for(Manager *m, bool privileged, ManagerStatus *ret);
/* The same for anyone: recent errors only counted. */
int manager_status_get(Manager *m, ManagerStatus *ret);
void manager_status_done(ManagerStatus *s);

/* "ok", "degraded" or "off" (recording disabled); NULL without a database. */
const char *status_database_health(const ManagerStatus *s);

/* Appends @s to a MSG_STATUS_REPLY as TAG_STAT fields, in the order and
 * under the keys pycqueue(1) lists (Status keys). */
void status_write_fields(const ManagerStatus *s, MsgWriter *w);
