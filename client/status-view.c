/* SPDX-License-Identifier: MIT */
/* The status block, in the manner of `systemctl status`:
 *
 *     ● pycqueued 1.0 - Python byte-compile queue
 *          State: running since Tue 2025-01-07 10:00:01 UTC; 3min 2s ago
 *        Started: autostart (by a client; exits when idle)
 *            PID: 1234
 *          Queue: 12 queued, 4 in flight; 3 connections
 *        Workers: /usr/bin/python3.13 (cpython 3.13.1, cpython-313): 4 workers, 2 busy, 10 queued
 *         Totals: 12 requests; 4500 compiled, 300 up to date, 12 coalesced, 3 failed
 *     Throughput: 42.0 files/s (last 10 s)
 *          Cache: 85.2% hit rate (120 hits, 21 misses); 34 entries, 1.2M of 256.0M in /var/cache/pycqueue
 *       Database: /var/lib/pycqueue/provenance.db, 12.3M, 45000 rows: ok
 *         Errors: 1 recent, newest first:
 *                 Jan 07 10:02:03 /srv/app/bad.py:3: SyntaxError: invalid syntax
 *
 * It is built from the daemon's status fields alone (what --json prints), so
 * a field a daemon does not send (an older one) leaves its part out. Labels
 * and the first word of each value are stable: people grep them. Colour marks
 * state (green running, yellow stopping or starting, red failed or
 * degraded); a degraded database is also written in capitals, since losing
 * provenance must not go unnoticed on a terminal without colour. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "status-view.h"

#define LABEL_WIDTH 10

#define ANSI_NORMAL "\033[0m"
#define ANSI_BOLD "\033[1m"
#define ANSI_GREEN "\033[0;32m"
#define ANSI_YELLOW "\033[0;33m"
#define ANSI_RED "\033[0;1;31m"

int status_fields_add(StatusFields *s, const char *key, char kind, const void *value, size_t size) {
        StatusField *f;

        if (memchr(value, 0, size))
                return -EBADMSG;
        if (s->n >= STATUS_MAX_FIELDS)
                return -E2BIG;
        if (s->n == s->allocated) {
                size_t n = s->allocated ? s->allocated * 2 : 64;
                StatusField *a = reallocarray(s->fields, n, sizeof(StatusField));

                if (!a)
                        return -ENOMEM;
                s->fields = a;
                s->allocated = n;
        }
        f = &s->fields[s->n];
        *f = (StatusField){ .kind = kind, .size = size };
        f->key = strdup(key);
        f->value = strndup(value, size);
        if (!f->key || !f->value) {
                free(f->key);
                free(f->value);
                return -ENOMEM;
        }
        s->n++;
        return 0;
}

const StatusField *status_fields_get(const StatusFields *s, const char *key) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->fields[i].key, key) == 0)
                        return &s->fields[i];
        return NULL;
}

void status_fields_done(StatusFields *s) {
        for (size_t i = 0; i < s->n; i++) {
                free(s->fields[i].key);
                free(s->fields[i].value);
        }
        free(s->fields);
        *s = (StatusFields){};
}

bool status_view_use_color(int fd, bool no_color) {
        const char *e = getenv("NO_COLOR"), *term = getenv("TERM");

        if (no_color || (e && *e) || (term && strcmp(term, "dumb") == 0))
                return false;
        return isatty(fd) == 1;
}

/* --- reading fields ------------------------------------------------------ */

static const char *get_str(const StatusFields *s, const char *key) {
        const StatusField *f = status_fields_get(s, key);
        return f ? f->value : NULL;
}

static bool get_u64(const StatusFields *s, const char *key, uint64_t *ret) {
        const char *v = get_str(s, key);
        char *end;

        if (!v || !*v)
                return false;
        errno = 0;
        *ret = strtoull(v, &end, 10);
        return errno == 0 && *end == '\0';
}

static uint64_t get_u64_or(const StatusFields *s, const char *key, uint64_t dflt) {
        uint64_t v;
        return get_u64(s, key, &v) ? v : dflt;
}

static bool get_double(const StatusFields *s, const char *key, double *ret) {
        const char *v = get_str(s, key);
        char *end;

        if (!v || !*v)
                return false;
        *ret = strtod(v, &end);
        return *end == '\0';
}

static bool get_bool(const StatusFields *s, const char *key) {
        const char *v = get_str(s, key);
        return v && strcmp(v, "true") == 0;
}

/* --- formatting ---------------------------------------------------------- */

typedef struct View {
        FILE *f;
        bool color;
} View;

static void color_on(const View *v, const char *ansi) {
        if (v->color)
                fputs(ansi, v->f);
}

static void color_off(const View *v) {
        if (v->color)
                fputs(ANSI_NORMAL, v->f);
}

static void label(const View *v, const char *name) {
        fprintf(v->f, "%*s: ", LABEL_WIDTH, name);
}

static void continuation(const View *v) {
        fprintf(v->f, "%*s  ", LABEL_WIDTH, "");
}

static void put_path(const View *v, const char *s) {
        output_write_path(v->f, s, strlen(s));
}

static void put_text(const View *v, const char *s) {
        output_write_text(v->f, s, strlen(s));
}

/* "12.3M": binary units, as systemctl's Memory: line. */
static const char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char units[] = "KMGTPE";
        double x = (double)bytes;
        size_t u = 0;

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 "B", bytes);
                return buf;
        }
        x /= 1024.0;
        while (x >= 1024.0 && u + 1 < sizeof(units) - 1) {
                x /= 1024.0;
                u++;
        }
        snprintf(buf, size, "%.1f%c", x, units[u]);
        return buf;
}

/* "3min 2s", "1h 5min", "2d 3h": the two largest units. */
static const char *format_duration(char *buf, size_t size, uint64_t seconds) {
        static const struct {
                const char *name;
                uint64_t seconds;
        } units[] = {
                { "d", 86400 },
                { "h", 3600 },
                { "min", 60 },
                { "s", 1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                uint64_t n = seconds / units[i].seconds;

                if (n == 0 && units[i].seconds > 1)
                        continue;
                if (i + 1 < ELEMENTSOF(units) && seconds % units[i].seconds >= units[i + 1].seconds)
                        snprintf(buf, size, "%" PRIu64 "%s %" PRIu64 "%s", n, units[i].name,
                                 seconds % units[i].seconds / units[i + 1].seconds, units[i + 1].name);
                else
                        snprintf(buf, size, "%" PRIu64 "%s", n, units[i].name);
                return buf;
        }
        return buf; /* not reached: the last unit always matches */
}

/* "Tue 2025-01-07 10:00:01 UTC", or with @short_form "Jan 07 10:02:03". */
static const char *format_time(char *buf, size_t size, time_t t, bool short_form) {
        struct tm tm;
        size_t n = 0;

        if (localtime_r(&t, &tm))
                n = short_form ? strftime(buf, size, "%b %d %H:%M:%S", &tm)
                               : strftime(buf, size, "%a %Y-%m-%d %H:%M:%S %Z", &tm);
        if (n == 0)
                snprintf(buf, size, "@%lld", (long long)t);
        return buf;
}

/* The locale's character set, as setlocale() would find it (the client
 * does not call it: byte-exact paths matter more than a bullet). */
static bool locale_is_utf8(void) {
        const char *names[] = { "LC_ALL", "LC_CTYPE", "LANG" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const char *e = getenv(names[i]);

                if (e && *e)
                        return strcasestr(e, "utf-8") || strcasestr(e, "utf8");
        }
        return false;
}

/* --- the lines ------------------------------------------------------------ */

static bool database_degraded(const StatusFields *s) {
        return get_bool(s, "database.degraded");
}

static void print_header(const View *v, const StatusFields *s) {
        const char *state = get_str(s, "state");
        const char *version = get_str(s, "version");
        bool running = state && strcmp(state, "running") == 0;

        color_on(v, running && !database_degraded(s) ? ANSI_GREEN : ANSI_YELLOW);
        fputs(locale_is_utf8() ? "\u25cf" : "*", v->f);
        color_off(v);
        fputs(" pycqueued", v->f);
        if (version) {
                fputc(' ', v->f);
                put_text(v, version);
        }
        fputs(" - Python byte-compile queue\n", v->f);
}

static void print_state(const View *v, const StatusFields *s, uint64_t now_realtime_usec) {
        const char *state = get_str(s, "state");
        double uptime;

        label(v, "State");
        if (!state)
                state = "unknown";
        if (strcmp(state, "running") == 0) {
                color_on(v, ANSI_GREEN);
                fputs("running", v->f);
        } else {
                color_on(v, ANSI_YELLOW);
                put_text(v, state);
                if (strcmp(state, "stopping") == 0)
                        fputs(" (finishing accepted work)", v->f);
        }
        color_off(v);
        if (get_double(s, "uptime_seconds", &uptime) && uptime >= 0) {
                uint64_t up = (uint64_t)uptime;
                char since[64], ago[32];

                format_time(since, sizeof(since), (time_t)(now_realtime_usec / 1000000u - up), false);
                fprintf(v->f, " since %s; %s ago", since, format_duration(ago, sizeof(ago), up));
        }
        fputc('\n', v->f);
}

static void print_started(const View *v, const StatusFields *s) {
        static const struct {
                const char *value, *explanation;
        } table[] = {
                { "socket", "systemd socket activation" },
                { "autostart", "by a client; exits when idle" },
                { "bus", "D-Bus activation" },
                { "manual", "by hand or by a service manager, not activated" },
        };
        const char *by = get_str(s, "started_by");

        if (!by)
                return; /* an older daemon */
        label(v, "Started");
        put_text(v, by);
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcmp(by, table[i].value) == 0)
                        fprintf(v->f, " (%s)", table[i].explanation);
        fputc('\n', v->f);
}

static void print_queue(const View *v, const StatusFields *s) {
        uint64_t queued = get_u64_or(s, "queue_length", 0), in_flight = get_u64_or(s, "in_flight", 0);

        /* queue_length counts the jobs in flight too. */
        label(v, "Queue");
        fprintf(v->f, "%" PRIu64 " queued, %" PRIu64 " in flight; %" PRIu64 " connection%s\n",
                queued - MIN(queued, in_flight), in_flight, get_u64_or(s, "connections", 0),
                get_u64_or(s, "connections", 0) == 1 ? "" : "s");
}

static void print_pool(const View *v, const StatusFields *s, size_t i) {
        char key[64];
        const char *state, *root, *impl, *error;

#define K(name) (snprintf(key, sizeof(key), "workers.%zu." name, i), key)
        put_path(v, get_str(s, K("interpreter")));
        root = get_str(s, K("root"));
        if (root) {
                fputs(" in ", v->f);
                put_path(v, root);
        }
        impl = get_str(s, K("implementation"));
        if (impl) {
                const char *version = get_str(s, K("version")), *tag = get_str(s, K("cache_tag"));

                fputs(" (", v->f);
                put_text(v, impl);
                if (version) {
                        fputc(' ', v->f);
                        put_text(v, version);
                }
                if (tag) {
                        fputs(", ", v->f);
                        put_text(v, tag);
                }
                fputc(')', v->f);
        }
        fputs(": ", v->f);
        state = get_str(s, K("state"));
        error = get_str(s, K("error"));
        if (state && strcmp(state, "failed") == 0) {
                color_on(v, ANSI_RED);
                fputs("failed", v->f);
                if (error) {
                        fputs(": ", v->f);
                        put_text(v, error);
                }
                color_off(v);
                fputc('\n', v->f);
                return;
        }
        if (state && strcmp(state, "ready") != 0) {
                color_on(v, ANSI_YELLOW);
                put_text(v, state);
                color_off(v);
                fputs(", ", v->f);
        }
        uint64_t count = get_u64_or(s, K("count"), 0);
        fprintf(v->f, "%" PRIu64 " worker%s, %" PRIu64 " busy, %" PRIu64 " queued\n", count,
                count == 1 ? "" : "s", get_u64_or(s, K("busy"), 0), get_u64_or(s, K("queued"), 0));
#undef K
}

static void print_workers(const View *v, const StatusFields *s) {
        char key[64];
        size_t i;

        label(v, "Workers");
        for (i = 0;; i++) {
                snprintf(key, sizeof(key), "workers.%zu.interpreter", i);
                if (!status_fields_get(s, key))
                        break;
                if (i > 0)
                        continuation(v);
                print_pool(v, s, i);
        }
        if (i == 0)
                fputs("none (an interpreter's workers start with its first compile)\n", v->f);
}

static void print_totals(const View *v, const StatusFields *s) {
        uint64_t failed = get_u64_or(s, "totals.failed", 0),
                 restarts = get_u64_or(s, "totals.worker_restarts", 0),
                 requests = get_u64_or(s, "totals.requests", 0);
        double rate;

        label(v, "Totals");
        fprintf(v->f,
                "%" PRIu64 " request%s; %" PRIu64 " compiled, %" PRIu64 " up to date, %" PRIu64
                " coalesced, ",
                requests, requests == 1 ? "" : "s", get_u64_or(s, "totals.compiled", 0),
                get_u64_or(s, "totals.up_to_date", 0), get_u64_or(s, "totals.coalesced", 0));
        if (failed > 0)
                color_on(v, ANSI_RED);
        fprintf(v->f, "%" PRIu64 " failed", failed);
        if (failed > 0)
                color_off(v);
        if (restarts > 0)
                fprintf(v->f, "; %" PRIu64 " worker restart%s", restarts, restarts == 1 ? "" : "s");
        fputc('\n', v->f);

        if (get_double(s, "throughput_files_per_second", &rate)) {
                label(v, "Throughput");
                fprintf(v->f, "%.1f files/s (last 10 s)\n", rate);
        }
}

static void print_cache(const View *v, const StatusFields *s) {
        const char *enabled = get_str(s, "cache.enabled"), *directory;
        char size[16], max[16];
        uint64_t hits, misses;
        double rate;

        if (!enabled)
                return;
        label(v, "Cache");
        if (strcmp(enabled, "true") != 0) {
                const char *reason = get_str(s, "cache.reason");

                fputs("off", v->f);
                if (reason) {
                        fputs(" (", v->f);
                        put_text(v, reason);
                        fputc(')', v->f);
                }
                fputc('\n', v->f);
                return;
        }
        hits = get_u64_or(s, "cache.hits", 0);
        misses = get_u64_or(s, "cache.misses", 0);
        if (hits + misses == 0)
                fputs("no lookups yet", v->f);
        else if (get_double(s, "cache.hit_rate", &rate))
                fprintf(v->f, "%.1f%% hit rate (%" PRIu64 " hits, %" PRIu64 " misses)", rate * 100.0, hits,
                        misses);
        fprintf(v->f, "; %" PRIu64 " entries, %s of %s", get_u64_or(s, "cache.entries", 0),
                format_bytes(size, sizeof(size), get_u64_or(s, "cache.size_bytes", 0)),
                format_bytes(max, sizeof(max), get_u64_or(s, "cache.max_size_bytes", 0)));
        directory = get_str(s, "cache.directory");
        if (directory) {
                fputs(" in ", v->f);
                put_path(v, directory);
        }
        fputc('\n', v->f);
}

static void print_database(const View *v, const StatusFields *s) {
        const char *path = get_str(s, "database.path"), *health = get_str(s, "database.health");
        char size[16];
        uint64_t dropped;

        if (!path)
                return;
        if (!health) /* an older daemon */
                health = !get_bool(s, "database.recording") ? "off"
                         : database_degraded(s)             ? "degraded"
                                                            : "ok";
        label(v, "Database");
        put_path(v, path);
        fprintf(v->f, ", %s, %" PRIu64 " rows: ",
                format_bytes(size, sizeof(size), get_u64_or(s, "database.size_bytes", 0)),
                get_u64_or(s, "database.rows", 0));
        if (strcmp(health, "ok") == 0) {
                color_on(v, ANSI_GREEN);
                fputs("ok", v->f);
                color_off(v);
        } else if (strcmp(health, "off") == 0)
                fputs("off (recording disabled by the configuration)", v->f);
        else {
                const char *reason = get_str(s, "database.degraded_reason");

                /* Provenance is being lost: this must not be missed. */
                color_on(v, ANSI_RED);
                fputs("DEGRADED", v->f);
                if (reason) {
                        fputs(": ", v->f);
                        put_text(v, reason);
                }
                color_off(v);
        }
        fputc('\n', v->f);
        if (get_u64(s, "database.dropped_records", &dropped) && dropped > 0) {
                continuation(v);
                color_on(v, ANSI_RED);
                fprintf(v->f, "%" PRIu64 " record%s dropped\n", dropped, dropped == 1 ? "" : "s");
                color_off(v);
        }
}

static void print_error(const View *v, const StatusFields *s, unsigned i) {
        char key[64], when[32];
        const char *type, *message;
        uint64_t line, t;

#define K(name) (snprintf(key, sizeof(key), "recent_errors.%u." name, i), key)
        continuation(v);
        if (get_u64(s, K("time"), &t))
                fprintf(v->f, "%s ", format_time(when, sizeof(when), (time_t)t, true));
        put_path(v, get_str(s, K("source")));
        if (get_u64(s, K("line"), &line) && line > 0)
                fprintf(v->f, ":%" PRIu64, line);
        fputs(": ", v->f);
        type = get_str(s, K("type"));
        if (type && *type) {
                color_on(v, ANSI_RED);
                put_text(v, type);
                color_off(v);
                fputs(": ", v->f);
        }
        message = get_str(s, K("message"));
        if (message)
                put_text(v, message);
        fputc('\n', v->f);
#undef K
}

static void print_errors(const View *v, const StatusFields *s) {
        uint64_t hidden;
        char key[64];
        unsigned n = 0;

        label(v, "Errors");
        if (get_u64(s, "recent_errors_hidden", &hidden)) {
                fprintf(v->f,
                        "%" PRIu64 " recent; their files are shown to root only "
                        "('pycqueue history --failed' lists yours)\n",
                        hidden);
                return;
        }
        for (;; n++) {
                snprintf(key, sizeof(key), "recent_errors.%u.source", n);
                if (!status_fields_get(s, key))
                        break;
        }
        if (n == 0) {
                fputs("none since start\n", v->f);
                return;
        }
        if (n > STATUS_VIEW_MAX_ERRORS)
                fprintf(v->f, "%u recent, the newest %u shown (--json lists all):\n", n,
                        STATUS_VIEW_MAX_ERRORS);
        else
                fprintf(v->f, "%u recent, newest first:\n", n);
        for (unsigned i = 0; i < n && i < STATUS_VIEW_MAX_ERRORS; i++)
                print_error(v, s, i);
}

void status_view_print(FILE *f, const StatusFields *s, bool color, uint64_t now_realtime_usec) {
        View v = { .f = f, .color = color };
        uint64_t pid;

        print_header(&v, s);
        print_state(&v, s, now_realtime_usec);
        print_started(&v, s);
        if (get_u64(s, "pid", &pid)) {
                label(&v, "PID");
                fprintf(f, "%" PRIu64 "\n", pid);
        }
        print_queue(&v, s);
        print_workers(&v, s);
        print_totals(&v, s);
        print_cache(&v, s);
        print_database(&v, s);
        print_errors(&v, s);
}

void status_view_print_unreachable(FILE *f, const char *socket_path, bool not_running, const char *reason,
                                   bool color) {
        View v = { .f = f, .color = color };

        fputs(locale_is_utf8() ? "\u25cb" : "o", f);
        fputs(" pycqueued - Python byte-compile queue\n", f);
        label(&v, "State");
        color_on(&v, ANSI_BOLD);
        fputs(not_running ? "not running" : "unreachable", f);
        color_off(&v);
        fputs(" (", f);
        put_text(&v, reason);
        fputs(")\n", f);
        label(&v, "Socket");
        put_path(&v, socket_path);
        fputc('\n', f);
}
