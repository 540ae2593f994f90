/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's status as plain data (see status.c): what every front end
 * that reports status reads, instead of parsing the socket's reply frame. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "forward.h"
#include "manager.h"

typedef struct StatusPool {
        const char *interpreter; /* host path; not necessarily UTF-8 */
        const char *state;       /* "starting", "ready", "failed" */
        const char *cache_tag;   /* "" until ready */
        const char *version;     /* "" until ready */
        const char *error;       /* NULL unless failed */
        unsigned count, busy, queued;
} StatusPool;

/* Every pointer borrows from the Manager: valid until the loop runs on. */
typedef struct ManagerStatus {
        pid_t pid;
        const char *version;
        const char *state; /* "running" or "stopping" */
        uint64_t uptime_usec;
        uint64_t queue_length;
        unsigned in_flight;
        unsigned connections;
        Counters totals;
        double throughput; /* files per second over the last MANAGER_RATE_SLOTS seconds */
        bool audit;
        bool socket_activated;
        bool have_database;
        const char *database_path;
        bool recording;
        bool degraded;
        const char *degraded_reason; /* "" when not degraded */
        uint64_t dropped_records;
        uint64_t database_rows;
        bool cache_enabled;
        double cache_hit_rate; /* 0 when off or unused */
        size_t n_pools;
        StatusPool *pools; /* n_pools entries, allocated: free with manager_status_done() */
} ManagerStatus;

/* Fills @ret. Returns 0 or -ENOMEM. */
int manager_status_get(Manager *m, ManagerStatus *ret);
void manager_status_done(ManagerStatus *s);
