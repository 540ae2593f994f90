/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's settings: defaults, then /etc/pycqueue/pycqueued.conf
 * ("key = value" lines), then the command line. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/pycqueue/pycqueued.conf"
#define CONFIG_DEFAULT_SOCKET "/run/pycqueue/socket"
#define CONFIG_DEFAULT_STATE_DIR LOCALSTATEDIR "/lib/pycqueue"
#define CONFIG_DEFAULT_CACHE_DIR LOCALSTATEDIR "/cache/pycqueue"
#define CONFIG_DEFAULT_CACHE_MAX_SIZE (256ULL << 20)

typedef struct Config {
        char *socket_path;
        char *state_dir;
        unsigned workers;                 /* per interpreter; 0 = online CPUs */
        uint64_t idle_exit_usec;          /* 0 = never */
        int log_level;
        uint64_t job_timeout_usec;
        char *worker_user;                /* used when running as root */
        uint64_t worker_memory_limit;     /* RLIMIT_AS of a worker, bytes */
        uint64_t checker_timeout_usec;    /* one run of verify's marshal checker */
        unsigned max_connections;
        unsigned max_connections_per_uid;
        unsigned max_paths_per_request;   /* paths named in one request */
        unsigned max_files_per_request;   /* files after expanding directories */
        uint64_t max_source_size;
        uint64_t lock_retry_usec;         /* how long a busy source lock is retried */
        unsigned io_threads;
        bool durable;                     /* fsync files and directories */
        bool recording;                   /* provenance database on/off */
        uint64_t retention_days;          /* 0 = keep forever */
        uint64_t retention_rows;          /* 0 = no limit */
        char *audit_roots;                /* colon-separated; NULL = audit off */
        char **interpreters;              /* absolute paths any caller may name */
        size_t n_interpreters;
        uint64_t frame_timeout_usec;      /* to complete a frame once begun */
        unsigned max_requests_per_uid;    /* concurrent requests of a non-privileged uid */
        uint64_t max_reply_rows;          /* records in one reply */
        uint64_t max_buffer_memory;       /* connection buffers of non-privileged peers, bytes */
        uint64_t connection_idle_usec;    /* an unprivileged peer's connection between requests */
        uint64_t request_time_usec;       /* a non-privileged read-only request's time, at most */
        uint64_t pool_idle_usec;          /* an unused interpreter pool is freed after this; 0 = never */
        uint64_t bus_request_linger_usec; /* a finished request's bus object stays this long */
        char *cache_directory;            /* the content cache; NULL = CONFIG_DEFAULT_CACHE_DIR */
        uint64_t cache_max_size;          /* bytes of cache entries; 0 = no content cache */
} Config;

#define CONFIG_MAX_INTERPRETERS 16

void config_init(Config *c);
void config_done(Config *c);

/* Reads @path into @c. A missing file is fine when !@must_exist. On a
 * malformed file returns -EINVAL with "FILE:LINE: reason" in @ret_error. */
int config_load_file(Config *c, const char *path, bool must_exist, char **ret_error);
/* The same for the @size bytes of @text, named @name in messages (for tests
 * and the fuzzer). */
int config_load_string(Config *c, const char *text, size_t size, const char *name, char **ret_error);
/* Applies one "key = value" setting; -EINVAL for an unknown key or a bad value. */
int config_set(Config *c, const char *key, const char *value);
