/* SPDX-License-Identifier: MIT */
/* Fuzz target for the configuration parser (daemon/config.c).
 *
 * Each input is a configuration file's text. It is parsed from memory with
 * config_load_string() and, as a second reading, from a memfd with
 * config_load_file(); the two must agree on the result, the error message
 * and every setting, so the file reader (getline) and the memory reader
 * split lines the same way. Then:
 *
 *  - an accepted text leaves a Config within the bounds the parser
 *    promises: at most CONFIG_MAX_INTERPRETERS absolute interpreter paths,
 *    each one word; non-zero timeouts; every count within its range; and
 *    loading the same text again changes nothing, since every key replaces
 *    what it set before;
 *  - a refused text gives -EINVAL and a message "NAME:LINE: reason" whose
 *    line exists in the text;
 *  - config_done() frees everything: run under ASan or valgrind, a leak
 *    fails.
 *
 * Built by `make check` it replays tests/fuzz/corpus-config and mutations
 * that also insert keys and values from a dictionary (see driver.h).
 * As a libFuzzer target:
 *
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER \
 *           -D_GNU_SOURCE -DSYSCONFDIR='"/etc"' -DLOCALSTATEDIR='"/var"' \
 *           -I. -Icommon -Idaemon tests/fuzz/fuzz-config.c daemon/config.c \
 *           common/log.c common/util.c -o fuzz-config-libfuzzer
 *     cp -r tests/fuzz/corpus-config /tmp/corpus-config
 *     ./fuzz-config-libfuzzer -max_total_time=60 /tmp/corpus-config
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon/config.h" /* not the build's config.h */
#include "driver.h"
#include "macro.h"
#include "util.h"

static bool string_equal(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool config_equal(const Config *a, const Config *b) {
        if (a->n_interpreters != b->n_interpreters)
                return false;
        for (size_t i = 0; i < a->n_interpreters; i++)
                if (!string_equal(a->interpreters[i], b->interpreters[i]))
                        return false;
        return string_equal(a->socket_path, b->socket_path) && string_equal(a->state_dir, b->state_dir) &&
               a->workers == b->workers && a->idle_exit_usec == b->idle_exit_usec &&
               a->log_level == b->log_level && a->job_timeout_usec == b->job_timeout_usec &&
               string_equal(a->worker_user, b->worker_user) &&
               a->worker_memory_limit == b->worker_memory_limit &&
               a->max_connections == b->max_connections &&
               a->max_connections_per_uid == b->max_connections_per_uid &&
               a->max_paths_per_request == b->max_paths_per_request &&
               a->max_files_per_request == b->max_files_per_request &&
               a->max_source_size == b->max_source_size && a->lock_retry_usec == b->lock_retry_usec &&
               a->io_threads == b->io_threads && a->durable == b->durable && a->recording == b->recording &&
               a->retention_days == b->retention_days && a->retention_rows == b->retention_rows &&
               string_equal(a->audit_roots, b->audit_roots) &&
               a->frame_timeout_usec == b->frame_timeout_usec &&
               a->max_requests_per_uid == b->max_requests_per_uid &&
               a->max_reply_rows == b->max_reply_rows && a->max_buffer_memory == b->max_buffer_memory;
}

/* The bounds an accepted configuration keeps. */
static void check_config(const Config *c) {
        fuzz_check(c->n_interpreters <= CONFIG_MAX_INTERPRETERS,
                   "at most CONFIG_MAX_INTERPRETERS interpreters");
        fuzz_check((c->interpreters == NULL) == (c->n_interpreters == 0),
                   "interpreter array iff interpreters");
        for (size_t i = 0; i < c->n_interpreters; i++) {
                const char *p = c->interpreters[i];

                fuzz_check(p && p[0] == '/', "an interpreter is an absolute path");
                fuzz_check(!strpbrk(p, " \t\n"), "an interpreter is one word");
        }
        fuzz_check(c->workers <= 256, "workers");
        fuzz_check(c->job_timeout_usec > 0, "job_timeout is not zero");
        fuzz_check(c->frame_timeout_usec > 0, "frame_timeout is not zero");
        fuzz_check(c->log_level >= LOG_EMERG && c->log_level <= LOG_DEBUG, "log_level");
        fuzz_check(c->worker_memory_limit >= 64ULL << 20, "worker_memory_limit");
        fuzz_check(c->max_connections >= 1 && c->max_connections <= 65536, "max_connections");
        fuzz_check(c->max_connections_per_uid >= 1 && c->max_connections_per_uid <= 65536,
                   "max_connections_per_uid");
        fuzz_check(c->max_paths_per_request >= 1 && c->max_paths_per_request <= 1000000,
                   "max_paths_per_request");
        fuzz_check(c->max_files_per_request >= 1 && c->max_files_per_request <= 100000000,
                   "max_files_per_request");
        fuzz_check(c->max_source_size >= 1, "max_source_size");
        fuzz_check(c->io_threads >= 1 && c->io_threads <= 64, "io_threads");
        fuzz_check(c->max_requests_per_uid >= 1 && c->max_requests_per_uid <= 65536, "max_requests_per_uid");
        fuzz_check(c->max_reply_rows >= 1, "max_reply_rows");
        fuzz_check(c->max_buffer_memory >= 1u << 20, "max_buffer_memory");
        fuzz_check(!c->audit_roots || c->audit_roots[0] == '/', "audit_roots absolute");
        fuzz_check(!c->worker_user || c->worker_user[0] != '\0', "worker_user not empty");
}

/* "NAME:LINE: reason", with LINE a line of the text. */
static void check_error(const char *error, const char *name, const uint8_t *data, size_t size) {
        size_t len = strlen(name), lines = 1;
        unsigned long line;
        char *end;

        fuzz_check(error != NULL, "a refusal explains itself");
        fuzz_check(strncmp(error, name, len) == 0 && error[len] == ':', "the error names the file");
        errno = 0;
        line = strtoul(error + len + 1, &end, 10);
        fuzz_check(errno == 0 && end != error + len + 1 && end[0] == ':' && end[1] == ' ',
                   "the error names a line");
        for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
        fuzz_check(line >= 1 && line <= lines, "the error's line exists");
}

static void check_done(Config *c) {
        config_done(c);
        fuzz_check(!c->interpreters && c->n_interpreters == 0 && !c->socket_path && !c->state_dir &&
                           !c->worker_user && !c->audit_roots,
                   "config_done leaves nothing behind");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char untouched[] = "untouched";
        char name[64], *error = (char *)untouched, *file_error = (char *)untouched;
        Config c, from_file;
        int fd, r, file_r;

        /* The file reader, on a memfd named as the memory reader names it. */
        fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        fuzz_check(fd >= 0, "memfd_create");
        fuzz_check(loop_write(fd, data, size) == 0, "write to memfd");
        snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);

        config_init(&c);
        r = config_load_string(&c, (const char *)data, size, name, &error);

        config_init(&from_file);
        file_r = config_load_file(&from_file, name, true, &file_error);
        fuzz_check(close(fd) == 0, "close");
        fuzz_check(file_r == r, "file and memory readers agree on the result");
        fuzz_check(config_equal(&c, &from_file), "file and memory readers agree on every setting");
        fuzz_check((error == untouched) == (file_error == untouched),
                   "both readers set an error, or neither");
        if (error != untouched) {
                fuzz_check(string_equal(error, file_error), "file and memory readers give the same error");
                free(file_error);
        }
        check_done(&from_file);

        if (r == 0) {
                Config again;
                char *again_error = (char *)untouched;

                fuzz_check(error == untouched, "no error on success");
                check_config(&c);

                /* Every key replaces what it set: a second load is a no-op. */
                config_init(&again);
                fuzz_check(config_load_string(&again, (const char *)data, size, name, &again_error) == 0,
                           "a second load succeeds");
                fuzz_check(config_load_string(&again, (const char *)data, size, name, &again_error) == 0,
                           "a third load succeeds");
                fuzz_check(again_error == untouched, "no error on reload");
                fuzz_check(config_equal(&c, &again), "reloading changes nothing");
                check_done(&again);
                fuzz_accepted++;
        } else {
                fuzz_check(r == -EINVAL || r == -ENOMEM, "config_load_string errno");
                if (r == -EINVAL)
                        check_error(error, name, data, size);
                if (error != untouched)
                        free(error);
                fuzz_rejected++;
        }
        check_done(&c);
        return 0;
}

#ifndef FUZZ_LIBFUZZER

static const char *const dictionary[] = {
        "workers",
        "job_timeout",
        "idle_exit",
        "worker_user",
        "worker_memory_limit",
        "max_connections",
        "max_connections_per_uid",
        "max_paths_per_request",
        "max_files_per_request",
        "max_source_size",
        "lock_retry",
        "io_threads",
        "log_level",
        "recording",
        "retention_days",
        "retention_rows",
        "AuditRoots",
        "audit_roots",
        "interpreters",
        "frame_timeout",
        "max_requests_per_uid",
        "max_reply_rows",
        "max_buffer_memory",
        "durability",
        " = ",
        "=",
        "\n",
        "#",
        ";",
        " ",
        "\t",
        "\r",
        "\v",
        "0",
        "1",
        "256",
        "257",
        "65536",
        "65537",
        "4294967296",
        "18446744073709551616",
        "-1",
        "+1",
        "0.0000001",
        "1e9",
        "1e10",
        "nan",
        "inf",
        "on",
        "off",
        "yes",
        "false",
        "full",
        "none",
        "debug",
        "warning",
        "/usr/bin/python3",
        " /usr/bin/pypy3",
        "python3",
        "/",
        NULL,
};

#define SEED(name, text) fuzz_seed_add(seeds, &n, max, (name), (text), sizeof(text) - 1)
#define SEED_REFUSED(name, text) fuzz_seed_add_refused(seeds, &n, max, (name), (text), sizeof(text) - 1)

static size_t build_seeds(FuzzSeed *seeds, size_t max) {
        size_t n = 0;

        SEED("full", "# every key, each with a valid value\n"
                     "workers = 4\n"
                     "job_timeout = 30\n"
                     "idle_exit = 0.5\n"
                     "worker_user = pycqueue\n"
                     "worker_memory_limit = 1073741824\n"
                     "max_connections = 512\n"
                     "max_connections_per_uid = 16\n"
                     "max_paths_per_request = 1000\n"
                     "max_files_per_request = 100000\n"
                     "max_source_size = 1048576\n"
                     "lock_retry = 2\n"
                     "io_threads = 2\n"
                     "log_level = debug\n"
                     "recording = on\n"
                     "retention_days = 30\n"
                     "retention_rows = 0\n"
                     "audit_roots = /usr:/opt\n"
                     "interpreters = /usr/bin/python3 /usr/bin/python3.11\t/usr/bin/pypy3\n"
                     "frame_timeout = 2.5\n"
                     "max_requests_per_uid = 8\n"
                     "max_reply_rows = 5000\n"
                     "max_buffer_memory = 16777216\n"
                     "durability = none\n");
        SEED("empty", "");
        SEED("sixteen-interpreters", "interpreters = /a /b /c /d /e /f /g /h /i /j /k /l /m /n /o /p\n");
        SEED("layout", "\n   \n; a comment\n\t# another\r\n  workers=1  \r\n"
                       "AuditRoots =\ninterpreters =\nrecording = false");
        SEED("replace", "interpreters = /usr/bin/python3\ninterpreters = /usr/bin/pypy3\n"
                        "worker_user = a\nworker_user = b\n");
        SEED_REFUSED("refused-unknown-key", "workers = 2\nno_such_key = 1\n");
        SEED_REFUSED("refused-frame-timeout-zero", "frame_timeout = 0\n");
        SEED_REFUSED("refused-no-equals", "# fine\nworkers 4\n");
        SEED_REFUSED("refused-seventeen-interpreters",
                     "interpreters = /a /b /c /d /e /f /g /h /i /j /k /l /m /n /o /p /q\n");
        SEED_REFUSED("refused-relative-interpreter", "interpreters = /usr/bin/python3 python3\n");
        SEED_REFUSED("refused-after-nul", "workers = 2\0 ignored\nio_threads = 0\n");
        return n;
}

#undef SEED
#undef SEED_REFUSED

int main(int argc, char *argv[]) {
        static const FuzzTarget target = {
                .name = "fuzz-config",
                .corpus = "tests/fuzz/corpus-config",
                .mutations = 20000,
                .build_seeds = build_seeds,
                .dictionary = dictionary,
        };

        return fuzz_main(&target, argc, argv);
}

#endif /* FUZZ_LIBFUZZER */
