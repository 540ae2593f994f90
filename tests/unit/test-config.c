/* SPDX-License-Identifier: MIT */
/* Unit tests of the configuration parser (daemon/config.c): the
 * "interpreters" key, the bounds of the per-user limits, unknown keys and
 * malformed lines, and that the file and in-memory readers agree. */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/config.h" /* not the build's config.h */
#include "macro.h"

#define NAME "test.conf"

static void config_donep(Config *c) {
        config_done(c);
}
#define _cleanup_config_ _cleanup_(config_donep)

/* Loads @text into a fresh @c; returns the result and the error, if any. */
static int load(Config *c, const char *text, char **ret_error) {
        config_init(c);
        *ret_error = NULL;
        return config_load_string(c, text, strlen(text), NAME, ret_error);
}

static void test_defaults(void **state) {
        _cleanup_config_ Config c;

        config_init(&c);
        assert_null(c.interpreters);
        assert_int_equal(c.n_interpreters, 0);
        assert_true(c.frame_timeout_usec > 0);
        assert_true(c.max_requests_per_uid >= 1);
        assert_true(c.job_timeout_usec > 0);
}

static void test_interpreters(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        assert_int_equal(load(&c,
                              "interpreters = /usr/bin/python3  /usr/bin/pypy3\t/opt/py/bin/python3.12 \n",
                              &error),
                         0);
        assert_null(error);
        assert_int_equal(c.n_interpreters, 3);
        assert_string_equal(c.interpreters[0], "/usr/bin/python3");
        assert_string_equal(c.interpreters[1], "/usr/bin/pypy3");
        assert_string_equal(c.interpreters[2], "/opt/py/bin/python3.12");

        /* A second line replaces the list; an empty value empties it. */
        assert_int_equal(config_set(&c, "interpreters", "/usr/bin/python3.11"), 0);
        assert_int_equal(c.n_interpreters, 1);
        assert_string_equal(c.interpreters[0], "/usr/bin/python3.11");
        assert_int_equal(config_set(&c, "interpreters", ""), 0);
        assert_int_equal(c.n_interpreters, 0);
        assert_null(c.interpreters);
}

static void test_interpreters_invalid(void **state) {
        static const char *const bad[] = {
                "python3",                                            /* not absolute */
                "/usr/bin/python3 python3",                           /* one of them */
                "/a /b /c /d /e /f /g /h /i /j /k /l /m /n /o /p /q", /* 17 > CONFIG_MAX_INTERPRETERS */
        };
        _cleanup_config_ Config c;

        config_init(&c);
        assert_int_equal(config_set(&c, "interpreters", "/usr/bin/python3"), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(config_set(&c, "interpreters", bad[i]), -EINVAL);
                /* A refused value leaves the list as it was. */
                assert_int_equal(c.n_interpreters, 1);
                assert_string_equal(c.interpreters[0], "/usr/bin/python3");
        }
        assert_int_equal(config_set(&c, "interpreters", "/a /b /c /d /e /f /g /h /i /j /k /l /m /n /o /p"),
                         0);
        assert_int_equal(c.n_interpreters, CONFIG_MAX_INTERPRETERS);
        assert_string_equal(c.interpreters[15], "/p");
}

static void test_frame_timeout(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        config_init(&c);
        assert_int_equal(config_set(&c, "frame_timeout", "2.5"), 0);
        assert_int_equal(c.frame_timeout_usec, 2500000);
        /* Zero would let a partial frame hold its connection for ever. */
        assert_int_equal(config_set(&c, "frame_timeout", "0"), -EINVAL);
        assert_int_equal(config_set(&c, "frame_timeout", "0.0000001"), -EINVAL); /* rounds to 0 us */
        assert_int_equal(config_set(&c, "frame_timeout", "-1"), -EINVAL);
        assert_int_equal(config_set(&c, "frame_timeout", "soon"), -EINVAL);
        assert_int_equal(config_set(&c, "frame_timeout", ""), -EINVAL);
        config_done(&c);

        assert_int_equal(load(&c, "# limits\nframe_timeout = 0\n", &error), -EINVAL);
        assert_string_equal(error, NAME ":2: invalid value \"0\" for frame_timeout");
}

static void test_max_requests_per_uid(void **state) {
        static const struct {
                const char *value;
                int r;
                unsigned expected;
        } cases[] = {
                { "1", 0, 1 },
                { "4", 0, 4 },
                { "65536", 0, 65536 },
                { "0", -EINVAL, 0 },
                { "65537", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "4294967297", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "3x", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_config_ Config c;
                unsigned before;

                config_init(&c);
                before = c.max_requests_per_uid;
                assert_int_equal(config_set(&c, "max_requests_per_uid", cases[i].value), cases[i].r);
                assert_int_equal(c.max_requests_per_uid, cases[i].r == 0 ? cases[i].expected : before);
        }
}

static void test_cache_keys(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        config_init(&c);
        /* Off by no key: the default directory, a bound that is not 0. */
        assert_null(c.cache_directory);
        assert_int_equal(c.cache_max_size, CONFIG_DEFAULT_CACHE_MAX_SIZE);
        assert_true(c.cache_max_size > 0);
        assert_int_equal(config_set(&c, "cache_directory", "/srv/cache/pycq"), 0);
        assert_string_equal(c.cache_directory, "/srv/cache/pycq");
        assert_int_equal(config_set(&c, "cache_directory", "relative/dir"), -EINVAL);
        assert_int_equal(config_set(&c, "cache_directory", ""), -EINVAL);
        assert_string_equal(c.cache_directory, "/srv/cache/pycq");
        assert_int_equal(config_set(&c, "cache_max_size", "0"), 0); /* turns the cache off */
        assert_int_equal(c.cache_max_size, 0);
        assert_int_equal(config_set(&c, "cache_max_size", "1048576"), 0);
        assert_int_equal(c.cache_max_size, 1048576);
        assert_int_equal(config_set(&c, "cache_max_size", "-1"), -EINVAL);
        assert_int_equal(config_set(&c, "cache_max_size", "256M"), -EINVAL); /* bytes, without a unit */
        assert_int_equal(c.cache_max_size, 1048576);
        config_done(&c);

        assert_int_equal(load(&c, "cache_max_size = 65536\ncache_directory = /tmp/x\n", &error), 0);
        assert_int_equal(c.cache_max_size, 65536);
        assert_string_equal(c.cache_directory, "/tmp/x");
}

static void test_unknown_key(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        config_init(&c);
        assert_int_equal(config_set(&c, "interpreter", "/usr/bin/python3"), -ENOKEY);
        assert_int_equal(config_set(&c, "", "1"), -ENOKEY);
        config_done(&c);

        /* In a file, it stops the daemon with the line named. */
        assert_int_equal(load(&c, "workers = 2\n\ninterpreter = /usr/bin/python3\n", &error), -EINVAL);
        assert_string_equal(error, NAME ":3: unknown key \"interpreter\"");
        assert_int_equal(c.workers, 2); /* lines before the error were read */
}

static void test_malformed_lines(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        assert_int_equal(load(&c, "; comment\nworkers 4\n", &error), -EINVAL);
        assert_string_equal(error, NAME ":2: expected \"key = value\"");
        config_done(&c);
        free(error);

        /* Blank lines, comments, CRLF and spaces around "=" are fine. */
        assert_int_equal(load(&c, "\r\n  # c\n;c\n\tmax_requests_per_uid=7 \r\nworkers   =   3", &error), 0);
        assert_null(error);
        assert_int_equal(c.max_requests_per_uid, 7);
        assert_int_equal(c.workers, 3);
}

static void test_file_and_string_agree(void **state) {
        static const char text[] = "interpreters = /usr/bin/python3 /usr/bin/pypy3\n"
                                   "max_requests_per_uid = 9\n"
                                   "frame_timeout = 3\n";
        char path[] = "/tmp/test-config.XXXXXX";
        _cleanup_config_ Config from_file, from_string;
        _cleanup_free_ char *error = NULL;
        int fd;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
        assert_int_equal(close(fd), 0);

        config_init(&from_file);
        assert_int_equal(config_load_file(&from_file, path, true, &error), 0);
        assert_int_equal(load(&from_string, text, &error), 0);
        assert_int_equal(unlink(path), 0);

        assert_int_equal(from_file.n_interpreters, 2);
        assert_int_equal(from_string.n_interpreters, 2);
        for (size_t i = 0; i < 2; i++)
                assert_string_equal(from_file.interpreters[i], from_string.interpreters[i]);
        assert_int_equal(from_file.max_requests_per_uid, 9);
        assert_int_equal(from_string.max_requests_per_uid, 9);
        assert_int_equal(from_file.frame_timeout_usec, 3000000);
        assert_int_equal(from_string.frame_timeout_usec, 3000000);

        /* A missing file is the defaults, unless it was asked for. */
        config_done(&from_file);
        config_init(&from_file);
        assert_int_equal(config_load_file(&from_file, path, false, &error), 0);
        assert_int_equal(config_load_file(&from_file, path, true, &error), -ENOENT);
        assert_non_null(error);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_interpreters),
                cmocka_unit_test(test_interpreters_invalid),
                cmocka_unit_test(test_frame_timeout),
                cmocka_unit_test(test_max_requests_per_uid),
                cmocka_unit_test(test_cache_keys),
                cmocka_unit_test(test_unknown_key),
                cmocka_unit_test(test_malformed_lines),
                cmocka_unit_test(test_file_and_string_agree),
        };

        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
