/* SPDX-License-Identifier: MIT */
/* Unit tests of the daemon's status (daemon/status.c): the started_by names
 * and how the environment sets them, the database's health, and the fields
 * status_write_fields() makes of a ManagerStatus, which pycqueue(1)
 * documents key by key: names, order, kinds and values, the pool of a
 * root, a failed pool, and recent errors shown or only counted. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "protocol.h"
#include "status.h"

static void test_started_by_names(void **state) {
        for (int i = 0; i < _STARTED_BY_MAX; i++)
                assert_int_equal(started_by_from_string(started_by_to_string((StartedBy)i)), i);
        assert_string_equal(started_by_to_string(STARTED_BY_SOCKET), "socket");
        assert_string_equal(started_by_to_string(STARTED_BY_AUTOSTART), "autostart");
        assert_string_equal(started_by_to_string(STARTED_BY_BUS), "bus");
        assert_string_equal(started_by_to_string(STARTED_BY_MANUAL), "manual");
        assert_null(started_by_to_string(_STARTED_BY_MAX));
        assert_int_equal(started_by_from_string(NULL), -EINVAL);
        assert_int_equal(started_by_from_string("Socket"), -EINVAL);
        assert_int_equal(started_by_from_string(""), -EINVAL);
}

static void test_started_by_environment(void **state) {
        assert_int_equal(unsetenv(STATUS_STARTED_BY_ENV), 0);
        assert_int_equal(status_started_by(false), STARTED_BY_MANUAL);
        assert_int_equal(status_started_by(true), STARTED_BY_SOCKET);

        /* the variable wins over the socket (a bus activation under systemd
         * also gets the socket), and is gone once read */
        assert_int_equal(setenv(STATUS_STARTED_BY_ENV, "bus", 1), 0);
        assert_int_equal(status_started_by(true), STARTED_BY_BUS);
        assert_null(getenv(STATUS_STARTED_BY_ENV));
        assert_int_equal(setenv(STATUS_STARTED_BY_ENV, "autostart", 1), 0);
        assert_int_equal(status_started_by(false), STARTED_BY_AUTOSTART);
        assert_null(getenv(STATUS_STARTED_BY_ENV));

        /* only autostart and bus may be claimed: socket needs the socket */
        assert_int_equal(setenv(STATUS_STARTED_BY_ENV, "socket", 1), 0);
        assert_int_equal(status_started_by(false), STARTED_BY_MANUAL);
        assert_null(getenv(STATUS_STARTED_BY_ENV));
        assert_int_equal(setenv(STATUS_STARTED_BY_ENV, "nonsense", 1), 0);
        assert_int_equal(status_started_by(true), STARTED_BY_SOCKET);
        assert_null(getenv(STATUS_STARTED_BY_ENV));
}

static void test_database_health(void **state) {
        ManagerStatus s = {};

        assert_null(status_database_health(&s));
        s.have_database = true;
        assert_string_equal(status_database_health(&s), "off");
        s.recording = true;
        assert_string_equal(status_database_health(&s), "ok");
        s.degraded = true;
        assert_string_equal(status_database_health(&s), "degraded");
}

/* The fields of @s as "key=kind:value" lines, in order. */
static char *fields_of(const ManagerStatus *s) {
        uint8_t *frame = NULL;
        size_t size = 0, text_size = 0;
        char *text = NULL;
        MsgReader msg;
        MsgWriter w;
        MsgField f;
        FILE *out;

        assert_int_equal(msg_writer_init(&w, MSG_STATUS_REPLY), 0);
        status_write_fields(s, &w);
        assert_int_equal(msg_writer_finish(&w, &frame, &size), 0);
        assert_int_equal(msg_parse(frame, size, &msg), 0);
        assert_int_equal(msg.type, MSG_STATUS_REPLY);
        out = open_memstream(&text, &text_size);
        assert_non_null(out);
        while (msg_next(&msg, &f) > 0) {
                const uint8_t *value;
                const char *key;
                size_t n;
                char kind;

                assert_int_equal(f.tag, TAG_STAT);
                assert_int_equal(field_stat(&f, &key, &kind, &value, &n), 0);
                fprintf(out, "%s=%c:%.*s\n", key, kind, (int)n, (const char *)value);
        }
        assert_int_equal(fclose(out), 0);
        free(frame);
        return text;
}

static ManagerStatus example(void) {
        static StatusPool pools[2] = {
                { .interpreter = "/usr/bin/python3.13",
                  .state = "ready",
                  .ready = true,
                  .implementation = "cpython",
                  .version = "3.13.1",
                  .cache_tag = "cpython-313",
                  .magic = { 0xf3, 0x0d, 0x0d, 0x0a },
                  .count = 4,
                  .busy = 2,
                  .queued = 10 },
                { .interpreter = "/target/usr/bin/python3",
                  .root = "/target",
                  .state = "failed",
                  .implementation = "",
                  .version = "",
                  .cache_tag = "",
                  .error = "it exited before its handshake",
                  .count = 0 },
        };
        return (ManagerStatus){
                .pid = 42,
                .version = "1.0",
                .state = "running",
                .uptime_usec = 61500000,
                .started_by = STARTED_BY_AUTOSTART,
                .queue_length = 14,
                .in_flight = 4,
                .connections = 3,
                .pools = pools,
                .n_pools = 2,
                .totals = { .requests = 5, .compiled = 100, .failed = 1 },
                .throughput = 12.34,
                .have_database = true,
                .database_path = "/var/lib/pycqueue/provenance.db",
                .recording = true,
                .database_size = 4096,
                .database_rows = 100,
                .degraded_reason = "",
                .cache_enabled = false,
                .cache_off_reason = "cache_max_size is 0",
                .errors = { { .source = "/srv/a b.py",
                              .type = "SyntaxError",
                              .message = "invalid syntax",
                              .line = 3,
                              .realtime_usec = 1700000000123456 } },
                .n_errors = 1,
        };
}

static void test_fields(void **state) {
        ManagerStatus s = example();
        char *text = fields_of(&s);

        assert_string_equal(text, "pid=n:42\n"
                                  "version=s:1.0\n"
                                  "uptime_seconds=n:61.500\n"
                                  "state=s:running\n"
                                  "audit=b:false\n"
                                  "socket_activated=b:false\n"
                                  "started_by=s:autostart\n"
                                  "queue_length=n:14\n"
                                  "in_flight=n:4\n"
                                  "connections=n:3\n"
                                  "workers.0.interpreter=s:/usr/bin/python3.13\n"
                                  "workers.0.state=s:ready\n"
                                  "workers.0.implementation=s:cpython\n"
                                  "workers.0.version=s:3.13.1\n"
                                  "workers.0.cache_tag=s:cpython-313\n"
                                  "workers.0.magic=s:f30d0d0a\n"
                                  "workers.0.count=n:4\n"
                                  "workers.0.busy=n:2\n"
                                  "workers.0.queued=n:10\n"
                                  "workers.1.interpreter=s:/target/usr/bin/python3\n"
                                  "workers.1.root=s:/target\n"
                                  "workers.1.state=s:failed\n"
                                  "workers.1.error=s:it exited before its handshake\n"
                                  "workers.1.count=n:0\n"
                                  "workers.1.busy=n:0\n"
                                  "workers.1.queued=n:0\n"
                                  "totals.requests=n:5\n"
                                  "totals.compiled=n:100\n"
                                  "totals.up_to_date=n:0\n"
                                  "totals.coalesced=n:0\n"
                                  "totals.failed=n:1\n"
                                  "totals.worker_restarts=n:0\n"
                                  "throughput_files_per_second=n:12.3\n"
                                  "database.path=s:/var/lib/pycqueue/provenance.db\n"
                                  "database.recording=b:true\n"
                                  "database.size_bytes=n:4096\n"
                                  "database.rows=n:100\n"
                                  "database.degraded=b:false\n"
                                  "database.dropped_records=n:0\n"
                                  "database.health=s:ok\n"
                                  "cache.enabled=b:false\n"
                                  "cache.reason=s:cache_max_size is 0\n"
                                  "recent_errors.0.source=s:/srv/a b.py\n"
                                  "recent_errors.0.type=s:SyntaxError\n"
                                  "recent_errors.0.line=n:3\n"
                                  "recent_errors.0.message=s:invalid syntax\n"
                                  "recent_errors.0.time=n:1700000000\n");
        free(text);
}

static void test_fields_degraded_stopping_hidden(void **state) {
        ManagerStatus s = example();
        char *text;

        s.state = "stopping";
        s.degraded = true;
        s.degraded_reason = "database is locked";
        s.dropped_records = 7;
        s.n_errors = 0;
        s.n_errors_hidden = 3;
        text = fields_of(&s);
        assert_non_null(strstr(text, "\nstate=s:stopping\n"));
        assert_non_null(strstr(text, "\ndatabase.degraded=b:true\n"
                                     "database.degraded_reason=s:database is locked\n"
                                     "database.dropped_records=n:7\n"
                                     "database.health=s:degraded\n"));
        assert_non_null(strstr(text, "\nrecent_errors_hidden=n:3\n"));
        assert_null(strstr(text, "recent_errors."));
        assert_null(strstr(text, "/srv/a b.py"));
        free(text);

        /* no database, no pools: their keys are absent */
        s = example();
        s.have_database = false;
        s.n_pools = 0;
        text = fields_of(&s);
        assert_null(strstr(text, "database."));
        assert_null(strstr(text, "workers."));
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_started_by_names),
                cmocka_unit_test(test_started_by_environment),
                cmocka_unit_test(test_database_health),
                cmocka_unit_test(test_fields),
                cmocka_unit_test(test_fields_degraded_stopping_hidden),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
