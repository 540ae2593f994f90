/* SPDX-License-Identifier: MIT */
/* The daemon's status as a plain struct.
 *
 * The socket's status reply (manager_status_reply()) and the system bus's
 * GetStatus() and properties report the same numbers; a front end that is
 * not the socket reads them here rather than decoding the socket's frame.
 * Nothing here blocks: every value is in memory already. */

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "contentcache.h"
#include "listener.h"
#include "pool.h"
#include "queue.h"
#include "recorder.h"
#include "status.h"
#include "util.h"

static double status_throughput(const Manager *m) {
        uint64_t sec = now_usec(CLOCK_MONOTONIC) / 1000000u, sum = 0;

        /* The ring holds the last MANAGER_RATE_SLOTS seconds as of
         * rate_second; slots older than that count as empty. Read only. */
        for (uint64_t s = sec >= MANAGER_RATE_SLOTS - 1 ? sec - (MANAGER_RATE_SLOTS - 1) : 0; s <= sec; s++)
                if (s <= m->rate_second && m->rate_second - s < MANAGER_RATE_SLOTS)
                        sum += m->rate[s % MANAGER_RATE_SLOTS];
        return (double)sum / MANAGER_RATE_SLOTS;
}

int manager_status_get(Manager *m, ManagerStatus *ret) {
        static const char *const states[] = { "starting", "ready", "failed" };
        ManagerStatus s = {
                .pid = getpid(),
                .version = PACKAGE_VERSION,
                .state = m->stopping ? "stopping" : "running",
                .uptime_usec = now_usec(CLOCK_MONOTONIC) - m->start_usec,
                .queue_length = queue_size(m->queue),
                .connections = m->n_connections,
                .totals = m->totals,
                .throughput = status_throughput(m),
                .audit = m->audit != NULL,
                .socket_activated = m->listener && listener_is_activated(m->listener),
                .degraded_reason = "",
                .cache_enabled = m->cache != NULL,
        };

        if (m->n_pools > 0) {
                s.pools = calloc(m->n_pools, sizeof(StatusPool));
                if (!s.pools)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < m->n_pools; i++) {
                Pool *p = m->pools[i];
                bool ready = p->state == POOL_READY;

                s.in_flight += p->n_compiling + p->n_committing;
                s.pools[s.n_pools++] = (StatusPool){
                        .interpreter = p->interpreter,
                        .state = states[p->state],
                        .cache_tag = ready && p->info.cache_tag ? p->info.cache_tag : "",
                        .version = ready && p->info.version ? p->info.version : "",
                        .error = p->state == POOL_FAILED ? p->error : NULL,
                        .count = p->n_workers,
                        .busy = pool_busy_workers(p),
                        .queued = pool_jobs(p),
                };
        }
        if (m->recorder) {
                s.have_database = true;
                s.database_path = recorder_path(m->recorder);
                s.recording = recorder_enabled(m->recorder);
                s.degraded = recorder_degraded(m->recorder);
                if (recorder_degraded_reason(m->recorder))
                        s.degraded_reason = recorder_degraded_reason(m->recorder);
                s.dropped_records = recorder_dropped(m->recorder);
                s.database_rows = recorder_rows(m->recorder);
        }
        if (m->cache) {
                ContentCacheStats st;

                content_cache_get_stats(m->cache, &st);
                if (st.hits + st.misses > 0)
                        s.cache_hit_rate = (double)st.hits / (double)(st.hits + st.misses);
        }
        *ret = s;
        return 0;
}

void manager_status_done(ManagerStatus *s) {
        free(s->pools);
        s->pools = NULL;
        s->n_pools = 0;
}
