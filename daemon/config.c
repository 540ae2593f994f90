/* SPDX-License-Identifier: MIT */
/* Configuration parsing. The file is a flat list of "key = value" lines with
 * "#" comments; every key is also documented in pycqueued(8). Unknown keys
 * are errors, not warnings: a typo in a system daemon's config should stop
 * it from starting rather than silently run with defaults. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "util.h"

void config_init(Config *c) {
        *c = (Config){
                .workers = 0,
                .idle_exit_usec = 0,
                .log_level = LOG_INFO,
                .job_timeout_usec = 60 * 1000000ULL,
                .worker_memory_limit = 4ULL << 30,
                .checker_timeout_usec = 10 * 1000000ULL,
                .max_connections = 1024,
                .max_connections_per_uid = 64,
                .max_paths_per_request = 100000,
                .max_files_per_request = 1000000,
                .max_source_size = 64ULL << 20,
                .lock_retry_usec = 5 * 1000000ULL,
                .io_threads = 4,
                .durable = true,
                .recording = true,
                .retention_days = 90,
                .retention_rows = 10000000,
                .frame_timeout_usec = 10 * 1000000ULL,
                .max_requests_per_uid = 4,
                .max_reply_rows = 100000,
                .max_buffer_memory = 256ULL << 20,
                .pool_idle_usec = 15 * 60 * 1000000ULL,
                .bus_request_linger_usec = 60 * 1000000ULL,
                .request_time_usec = 5 * 60 * 1000000ULL,
                .connection_idle_usec = 60 * 1000000ULL,
                .cache_max_size = CONFIG_DEFAULT_CACHE_MAX_SIZE,
        };
}

void config_done(Config *c) {
        free(c->socket_path);
        free(c->state_dir);
        free(c->worker_user);
        free(c->audit_roots);
        free(c->cache_directory);
        for (size_t i = 0; i < c->n_interpreters; i++)
                free(c->interpreters[i]);
        free(c->interpreters);
        *c = (Config){};
}

static int set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int set_unsigned(unsigned *field, const char *value, unsigned min, unsigned max) {
        unsigned v;
        int r = safe_atou(value, &v);
        if (r < 0 || v < min || v > max)
                return -EINVAL;
        *field = v;
        return 0;
}

static int set_u64(uint64_t *field, const char *value, uint64_t min) {
        uint64_t v;
        int r = safe_atou64(value, &v);
        if (r < 0 || v < min)
                return -EINVAL;
        *field = v;
        return 0;
}

static int set_seconds(uint64_t *field, const char *value) {
        return parse_seconds_usec(value, field);
}

/* A duration that must not be 0; @field is untouched on failure. */
static int set_positive_seconds(uint64_t *field, const char *value) {
        uint64_t v;

        if (parse_seconds_usec(value, &v) < 0 || v == 0)
                return -EINVAL;
        *field = v;
        return 0;
}

/* "interpreters = PATH..." (whitespace-separated absolute paths) replaces
 * the list; an empty value empties it. */
static int set_interpreters(Config *c, const char *value) {
        _cleanup_free_ char *copy = strdup(value);
        char **list = NULL, *save = NULL;
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                char **nl;

                if (*w != '/' || n >= CONFIG_MAX_INTERPRETERS)
                        goto invalid;
                nl = realloc(list, (n + 1) * sizeof(char *));
                if (!nl)
                        goto invalid;
                list = nl;
                list[n] = strdup(w);
                if (!list[n])
                        goto invalid;
                n++;
        }
        for (size_t i = 0; i < c->n_interpreters; i++)
                free(c->interpreters[i]);
        free(c->interpreters);
        c->interpreters = list;
        c->n_interpreters = n;
        return 0;
invalid:
        for (size_t i = 0; i < n; i++)
                free(list[i]);
        free(list);
        return -EINVAL;
}

int config_set(Config *c, const char *key, const char *value) {
        if (strcmp(key, "workers") == 0)
                return set_unsigned(&c->workers, value, 1, 256);
        if (strcmp(key, "job_timeout") == 0) {
                return set_positive_seconds(&c->job_timeout_usec, value);
        }
        if (strcmp(key, "checker_timeout") == 0) {
                int r = set_seconds(&c->checker_timeout_usec, value);
                return r < 0 || c->checker_timeout_usec == 0 ? -EINVAL : 0;
        }
        if (strcmp(key, "idle_exit") == 0)
                return set_seconds(&c->idle_exit_usec, value);
        if (strcmp(key, "worker_user") == 0)
                return *value ? set_string(&c->worker_user, value) : -EINVAL;
        if (strcmp(key, "worker_memory_limit") == 0)
                return set_u64(&c->worker_memory_limit, value, 64ULL << 20);
        if (strcmp(key, "max_connections") == 0)
                return set_unsigned(&c->max_connections, value, 1, 65536);
        if (strcmp(key, "max_connections_per_uid") == 0)
                return set_unsigned(&c->max_connections_per_uid, value, 1, 65536);
        if (strcmp(key, "max_paths_per_request") == 0)
                return set_unsigned(&c->max_paths_per_request, value, 1, 1000000);
        if (strcmp(key, "max_files_per_request") == 0)
                return set_unsigned(&c->max_files_per_request, value, 1, 100000000);
        if (strcmp(key, "max_source_size") == 0)
                return set_u64(&c->max_source_size, value, 1);
        if (strcmp(key, "lock_retry") == 0)
                return set_seconds(&c->lock_retry_usec, value);
        if (strcmp(key, "io_threads") == 0)
                return set_unsigned(&c->io_threads, value, 1, 64);
        if (strcmp(key, "log_level") == 0) {
                int l = log_level_from_string(value);
                if (l < 0)
                        return l;
                c->log_level = l;
                return 0;
        }
        if (strcmp(key, "recording") == 0) {
                if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
                        c->recording = true;
                else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
                        c->recording = false;
                else
                        return -EINVAL;
                return 0;
        }
        if (strcmp(key, "retention_days") == 0)
                return set_u64(&c->retention_days, value, 0);
        if (strcmp(key, "retention_rows") == 0)
                return set_u64(&c->retention_rows, value, 0);
        if (strcmp(key, "AuditRoots") == 0 || strcmp(key, "audit_roots") == 0) {
                /* Enabled with no roots means /usr. */
                if (*value == '\0')
                        value = "/usr";
                if (*value != '/')
                        return -EINVAL;
                return set_string(&c->audit_roots, value);
        }
        if (strcmp(key, "interpreters") == 0)
                return set_interpreters(c, value);
        if (strcmp(key, "frame_timeout") == 0)
                return set_positive_seconds(&c->frame_timeout_usec, value);
        if (strcmp(key, "max_requests_per_uid") == 0)
                return set_unsigned(&c->max_requests_per_uid, value, 1, 65536);
        if (strcmp(key, "max_reply_rows") == 0)
                return set_u64(&c->max_reply_rows, value, 1);
        if (strcmp(key, "connection_idle_timeout") == 0)
                return set_positive_seconds(&c->connection_idle_usec, value);
        if (strcmp(key, "request_time_limit") == 0)
                return set_positive_seconds(&c->request_time_usec, value);
        if (strcmp(key, "pool_idle_timeout") == 0)
                return set_seconds(&c->pool_idle_usec, value);
        if (strcmp(key, "bus_request_linger") == 0)
                return set_seconds(&c->bus_request_linger_usec, value);
        if (strcmp(key, "max_buffer_memory") == 0)
                return set_u64(&c->max_buffer_memory, value, 1u << 20);
        if (strcmp(key, "cache_directory") == 0)
                return path_is_absolute(value) ? set_string(&c->cache_directory, value) : -EINVAL;
        if (strcmp(key, "cache_max_size") == 0)
                return set_u64(&c->cache_max_size, value, 0);
        if (strcmp(key, "durability") == 0) {
                if (strcmp(value, "full") == 0)
                        c->durable = true;
                else if (strcmp(value, "none") == 0)
                        c->durable = false;
                else
                        return -EINVAL;
                return 0;
        }
        return -ENOKEY;
}

static char *strip(char *s) {
        char *e;

        while (isspace((unsigned char)*s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

/* Applies one line of a config file, named @name in messages; modifies @line. */
static int load_line(Config *c, char *line, const char *name, unsigned lineno, char **ret_error) {
        char *s, *eq, *key, *value;
        int r;

        s = strip(line);
        if (*s == '\0' || *s == '#' || *s == ';')
                return 0;
        eq = strchr(s, '=');
        if (!eq) {
                if (asprintf(ret_error, "%s:%u: expected \"key = value\"", name, lineno) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        *eq = '\0';
        key = strip(s);
        value = strip(eq + 1);
        r = config_set(c, key, value);
        if (r < 0) {
                if (asprintf(ret_error,
                             r == -ENOKEY ? "%s:%u: unknown key \"%s\""
                                          : "%s:%u: invalid value \"%s\" for %s",
                             name, lineno, r == -ENOKEY ? key : value, key) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        return 0;
}

int config_load_file(Config *c, const char *path, bool must_exist, char **ret_error) {
        _cleanup_free_ char *line = NULL;
        size_t allocated = 0;
        unsigned lineno = 0;
        FILE *f;
        int r = 0;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT && !must_exist)
                        return 0;
                r = negative_errno();
                if (asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }

        while (getline(&line, &allocated, f) >= 0) {
                r = load_line(c, line, path, ++lineno, ret_error);
                if (r < 0)
                        break;
        }
        fclose(f);
        return r;
}

int config_load_string(Config *c, const char *text, size_t size, const char *name, char **ret_error) {
        size_t pos = 0;
        unsigned lineno = 0;

        while (pos < size) {
                const char *nl = memchr(text + pos, '\n', size - pos);
                size_t len = nl ? (size_t)(nl - (text + pos)) : size - pos;
                /* Like getline() and strip() in config_load_file(), a NUL
                 * ends what is read of a line. */
                _cleanup_free_ char *line = strndup(text + pos, len);
                int r;

                if (!line)
                        return -ENOMEM;
                r = load_line(c, line, name, ++lineno, ret_error);
                if (r < 0)
                        return r;
                pos += len + (nl ? 1 : 0);
        }
        return 0;
}
