/* SPDX-License-Identifier: MIT */
/* The daemon's status, read once into a plain struct.
 *
 * Two front ends report it: the socket's MSG_STATUS_REPLY (status_write_fields(),
 * read by `pycqueue status`) and the D-Bus Manager object (GetStatus() and its
 * properties). Both call manager_status_get*(), so they cannot disagree, and
 * the bus never parses a frame. The struct borrows the Manager's strings: it is
 * filled, used and dropped within one callback of the loop.
 *
 * What the status may show depends on the caller: recent errors name files
 * of any user, so only a privileged caller gets them; everybody else gets
 * how many there are (and `pycqueue history`, which checks what the caller
 * may see). Everything else is counts and paths of the daemon's own. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "macro.h"
#include "pool.h"
#include "recorder.h"
#include "status.h"
#include "util.h"

static const char *const started_by_table[_STARTED_BY_MAX] = {
        [STARTED_BY_MANUAL] = "manual",
        [STARTED_BY_SOCKET] = "socket",
        [STARTED_BY_AUTOSTART] = "autostart",
        [STARTED_BY_BUS] = "bus",
};

const char *started_by_to_string(StartedBy s) {
        return s >= 0 && s < _STARTED_BY_MAX ? started_by_table[s] : NULL;
}

int started_by_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _STARTED_BY_MAX; i++)
                if (strcmp(s, started_by_table[i]) == 0)
                        return i;
        return -EINVAL;
}

StartedBy status_started_by(bool socket_activated) {
        const char *e = getenv(STATUS_STARTED_BY_ENV);
        int k = started_by_from_string(e);

        /* Said only by whoever exec'd us; nothing we start should see it. */
        if (e)
                (void)unsetenv(STATUS_STARTED_BY_ENV);
        if (k == STARTED_BY_AUTOSTART || k == STARTED_BY_BUS)
                return (StartedBy)k;
        return socket_activated ? STARTED_BY_SOCKET : STARTED_BY_MANUAL;
}

const char *status_database_health(const ManagerStatus *s) {
        if (!s->have_database)
                return NULL;
        if (!s->recording)
                return "off";
        return s->degraded ? "degraded" : "ok";
}

static const char *pool_state_string(PoolState state) {
        static const char *const states[] = { "starting", "ready", "failed" };
        return (size_t)state < ELEMENTSOF(states) ? states[state] : "unknown";
}

static void status_collect_database(Manager *m, ManagerStatus *s) {
        _cleanup_free_ char *wal = NULL;
        struct stat st;

        if (!m->recorder)
                return;
        s->have_database = true;
        s->database_path = recorder_path(m->recorder);
        s->recording = recorder_enabled(m->recorder);
        /* Two stat()s on the loop: the state directory is local. */
        if (stat(s->database_path, &st) == 0)
                s->database_size += (uint64_t)st.st_size;
        if (asprintf(&wal, "%s-wal", s->database_path) >= 0 && stat(wal, &st) == 0)
                s->database_size += (uint64_t)st.st_size;
        s->database_rows = recorder_rows(m->recorder);
        s->degraded = recorder_degraded(m->recorder);
        if (s->degraded && recorder_degraded_reason(m->recorder))
                s->degraded_reason = recorder_degraded_reason(m->recorder);
        s->dropped_records = recorder_dropped(m->recorder);
}

int manager_status_get_for(Manager *m, bool privileged, ManagerStatus *ret) {
        ManagerStatus s = {
                .pid = getpid(),
                .version = PACKAGE_VERSION,
                .state = m->stopping ? "stopping" : "running",
                .uptime_usec = now_usec(CLOCK_MONOTONIC) - m->start_usec,
                .started_by = m->started_by,
                .socket_activated = m->socket_activated,
                .audit = m->audit != NULL,
                .queue_length = queue_size(m->queue),
                .in_flight = manager_in_flight(m),
                .connections = m->n_connections,
                .totals = m->totals,
                .throughput = manager_throughput(m),
                .degraded_reason = "",
        };

        if (m->n_pools > 0) {
                s.pools = calloc(m->n_pools, sizeof(StatusPool));
                if (!s.pools)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < m->n_pools; i++) {
                Pool *p = m->pools[i];
                StatusPool *sp = &s.pools[s.n_pools++];

                sp->interpreter = p->interpreter;
                sp->root = p->root;
                sp->state = pool_state_string(p->state);
                sp->ready = p->state == POOL_READY;
                sp->implementation = sp->version = sp->cache_tag = "";
                if (sp->ready) {
                        if (p->info.implementation)
                                sp->implementation = p->info.implementation;
                        if (p->info.version)
                                sp->version = p->info.version;
                        if (p->info.cache_tag)
                                sp->cache_tag = p->info.cache_tag;
                        memcpy(sp->magic, p->info.magic, sizeof(sp->magic));
                }
                if (p->state == POOL_FAILED)
                        sp->error = p->error;
                sp->count = p->n_workers;
                sp->busy = pool_busy_workers(p);
                sp->queued = pool_jobs(p);
        }

        status_collect_database(m, &s);

        s.cache_enabled = m->cache != NULL;
        if (m->cache) {
                content_cache_get_stats(m->cache, &s.cache);
                s.cache_directory = content_cache_directory(m->cache);
                if (s.cache.hits + s.cache.misses > 0)
                        s.cache_hit_rate = (double)s.cache.hits / (double)(s.cache.hits + s.cache.misses);
        } else
                s.cache_off_reason = m->cache_off_reason ? m->cache_off_reason : "cache_max_size is 0";

        if (!privileged)
                s.n_errors_hidden = m->n_recent;
        for (unsigned i = 0; privileged && i < m->n_recent; i++) {
                /* the ring's newest entry first */
                const RecentError *e =
                        &m->recent[(m->recent_next + MANAGER_RECENT_ERRORS - 1 - i) % MANAGER_RECENT_ERRORS];

                s.errors[s.n_errors++] = (StatusError){
                        .source = e->source ? e->source : "",
                        .type = e->type ? e->type : "",
                        .message = e->message ? e->message : "",
                        .line = e->line,
                        .realtime_usec = e->realtime_usec,
                };
        }

        *ret = s;
        return 0;
}

int manager_status_get(Manager *m, ManagerStatus *ret) {
        return manager_status_get_for(m, false, ret);
}

void manager_status_done(ManagerStatus *s) {
        free(s->pools);
        s->pools = NULL;
        s->n_pools = 0;
}

static void put_u64(MsgWriter *w, const char *key, uint64_t v) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
        msg_put_stat(w, key, 'n', buf);
}

static void put_bool(MsgWriter *w, const char *key, bool v) {
        msg_put_stat(w, key, 'b', v ? "true" : "false");
}

static void put_fixed(MsgWriter *w, const char *key, int decimals, double v) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.*f", decimals, v);
        msg_put_stat(w, key, 'n', buf);
}

static void write_pools(const ManagerStatus *s, MsgWriter *w) {
        char key[64], buf[16];

        for (size_t i = 0; i < s->n_pools; i++) {
                const StatusPool *p = &s->pools[i];

#define K(name) (snprintf(key, sizeof(key), "workers.%zu." name, i), key)
                msg_put_stat(w, K("interpreter"), 's', p->interpreter);
                if (p->root)
                        msg_put_stat(w, K("root"), 's', p->root);
                msg_put_stat(w, K("state"), 's', p->state);
                if (p->ready) {
                        msg_put_stat(w, K("implementation"), 's', p->implementation);
                        msg_put_stat(w, K("version"), 's', p->version);
                        msg_put_stat(w, K("cache_tag"), 's', p->cache_tag);
                        snprintf(buf, sizeof(buf), "%02x%02x%02x%02x", p->magic[0], p->magic[1], p->magic[2],
                                 p->magic[3]);
                        msg_put_stat(w, K("magic"), 's', buf);
                }
                if (p->error)
                        msg_put_stat(w, K("error"), 's', p->error);
                put_u64(w, K("count"), p->count);
                put_u64(w, K("busy"), p->busy);
                put_u64(w, K("queued"), p->queued);
#undef K
        }
}

static void write_database(const ManagerStatus *s, MsgWriter *w) {
        if (!s->have_database)
                return;
        msg_put_stat(w, "database.path", 's', s->database_path);
        put_bool(w, "database.recording", s->recording);
        put_u64(w, "database.size_bytes", s->database_size);
        put_u64(w, "database.rows", s->database_rows);
        put_bool(w, "database.degraded", s->degraded);
        if (s->degraded && s->degraded_reason && *s->degraded_reason)
                msg_put_stat(w, "database.degraded_reason", 's', s->degraded_reason);
        put_u64(w, "database.dropped_records", s->dropped_records);
        msg_put_stat(w, "database.health", 's', status_database_health(s));
}

static void write_cache(const ManagerStatus *s, MsgWriter *w) {
        put_bool(w, "cache.enabled", s->cache_enabled);
        if (!s->cache_enabled) {
                msg_put_stat(w, "cache.reason", 's', s->cache_off_reason);
                return;
        }
        msg_put_stat(w, "cache.directory", 's', s->cache_directory);
        put_u64(w, "cache.hits", s->cache.hits);
        put_u64(w, "cache.misses", s->cache.misses);
        put_fixed(w, "cache.hit_rate", 3, s->cache_hit_rate);
        put_u64(w, "cache.stores", s->cache.stores);
        put_u64(w, "cache.rejected", s->cache.rejected);
        put_u64(w, "cache.evicted", s->cache.evicted);
        put_u64(w, "cache.entries", s->cache.entries);
        put_u64(w, "cache.size_bytes", s->cache.size);
        put_u64(w, "cache.max_size_bytes", s->cache.max_size);
}

static void write_errors(const ManagerStatus *s, MsgWriter *w) {
        char key[64];

        if (s->n_errors_hidden > 0)
                put_u64(w, "recent_errors_hidden", s->n_errors_hidden);
        for (unsigned i = 0; i < s->n_errors; i++) {
                const StatusError *e = &s->errors[i];

#define K(name) (snprintf(key, sizeof(key), "recent_errors.%u." name, i), key)
                msg_put_stat(w, K("source"), 's', e->source);
                msg_put_stat(w, K("type"), 's', e->type);
                put_u64(w, K("line"), e->line);
                msg_put_stat(w, K("message"), 's', e->message);
                put_u64(w, K("time"), e->realtime_usec / 1000000u);
#undef K
        }
}

void status_write_fields(const ManagerStatus *s, MsgWriter *w) {
        /* The keys of older versions keep their names and order; new ones
         * are added (clients skip keys they do not know). */
        put_u64(w, "pid", (uint64_t)s->pid);
        msg_put_stat(w, "version", 's', s->version);
        put_fixed(w, "uptime_seconds", 3, (double)s->uptime_usec / 1e6);
        msg_put_stat(w, "state", 's', s->state);
        put_bool(w, "audit", s->audit);
        put_bool(w, "socket_activated", s->socket_activated);
        msg_put_stat(w, "started_by", 's', started_by_to_string(s->started_by));
        put_u64(w, "queue_length", s->queue_length);
        put_u64(w, "in_flight", s->in_flight);
        put_u64(w, "connections", s->connections);
        write_pools(s, w);
        put_u64(w, "totals.requests", s->totals.requests);
        put_u64(w, "totals.compiled", s->totals.compiled);
        put_u64(w, "totals.up_to_date", s->totals.up_to_date);
        put_u64(w, "totals.coalesced", s->totals.coalesced);
        put_u64(w, "totals.failed", s->totals.failed);
        put_u64(w, "totals.worker_restarts", s->totals.worker_restarts);
        put_fixed(w, "throughput_files_per_second", 1, s->throughput);
        write_database(s, w);
        write_cache(s, w);
        write_errors(s, w);
}
