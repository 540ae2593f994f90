/* SPDX-License-Identifier: MIT */
/* Unit tests of the logging core (common/log.c): log_escape()'s one-line
 * rendition of arbitrary bytes, the stream check of $JOURNAL_STREAM, and
 * the entries handed to the journal sender (a fake one here) — each field
 * whole and byte-exact, absent fields left out — with the stderr line as
 * the fallback when the sender fails. */

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "macro.h"

static void test_escape(void **state _unused_) {
        char buf[64];

        assert_string_equal(log_escape("/usr/lib/a.py", 13, buf, sizeof(buf)), "/usr/lib/a.py");
        /* valid UTF-8 stays, the rest is \xNN, and so are controls and '\' */
        assert_string_equal(log_escape("caf\xc3\xa9.py", 8, buf, sizeof(buf)), "caf\xc3\xa9.py");
        assert_string_equal(log_escape("a\xff\nb\\", 5, buf, sizeof(buf)), "a\\xff\\x0ab\\x5c");
        assert_string_equal(log_escape("\xc3", 1, buf, sizeof(buf)), "\\xc3"); /* truncated sequence */
        assert_string_equal(log_escape("\x7f", 1, buf, sizeof(buf)), "\\x7f");
        assert_string_equal(log_escape("", 0, buf, sizeof(buf)), "");
}

static void test_escape_bounded(void **state _unused_) {
        char buf[8];
        char big[100];

        memset(big, 'x', sizeof(big));
        /* cut with "...", always terminated, never past the buffer */
        assert_string_equal(log_escape(big, sizeof(big), buf, sizeof(buf)), "xxxx...");
        assert_string_equal(log_escape("1234567", 7, buf, sizeof(buf)), "1234567");
        assert_string_equal(log_escape("\xff\xff\xff", 3, buf, sizeof(buf)), "\\xff...");
        assert_string_equal(log_escape("abc", 3, buf, 1), "");
}

static void test_stream_is_journal(void **state _unused_) {
        char path[] = "/tmp/test-log-XXXXXX", env[64];
        struct stat st;
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        unsetenv("JOURNAL_STREAM");
        assert_false(log_stream_is_journal(fd));
        snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
        setenv("JOURNAL_STREAM", env, 1);
        assert_true(log_stream_is_journal(fd));
        snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino + 1);
        setenv("JOURNAL_STREAM", env, 1);
        assert_false(log_stream_is_journal(fd));
        snprintf(env, sizeof(env), "%ju:%jux", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
        setenv("JOURNAL_STREAM", env, 1);
        assert_false(log_stream_is_journal(fd));
        unsetenv("JOURNAL_STREAM");
        unlink(path);
        close(fd);
}

/* The fake sender keeps the last entry as one buffer of fields, each
 * "KEY=value" followed by a NUL (values here have none of their own but
 * the binary one, checked by length). */
static char sent[16384];
static size_t sent_size;
static int sent_fields;
static int send_result;

static int fake_sendv(const struct iovec *iov, int n) {
        sent_size = 0;
        for (int i = 0; i < n; i++) {
                assert_true(sent_size + iov[i].iov_len + 1 <= sizeof(sent));
                memcpy(sent + sent_size, iov[i].iov_base, iov[i].iov_len);
                sent_size += iov[i].iov_len;
                sent[sent_size++] = '\0';
        }
        sent_fields = n;
        return send_result;
}

static const char *field(const char *key) {
        size_t klen = strlen(key);

        for (size_t i = 0; i < sent_size; i += strlen(sent + i) + 1)
                if (strncmp(sent + i, key, klen) == 0 && sent[i + klen] == '=')
                        return sent + i + klen + 1;
        return NULL;
}

static void test_journal_entry(void **state _unused_) {
        static const char binary[] = "/a\n\xff";
        char long_path[1000];

        memset(long_path, 'p', sizeof(long_path) - 1);
        long_path[sizeof(long_path) - 1] = '\0';
        LogField fields[] = {
                LOG_FIELD_STR("MESSAGE_ID", "0123456789abcdef0123456789abcdef"),
                LOG_FIELD_STR("PYCQUEUE_PACKAGE", NULL),
                { .key = "PYCQUEUE_SOURCE", .value = binary, .size = sizeof(binary) - 1 },
                LOG_FIELD_STR("PYCQUEUE_TARGET", long_path),
        };

        log_setup("pycqueued", true);
        log_set_journal(fake_sendv);
        assert_true(log_to_journal());
        send_result = 0;
        assert_int_equal(log_struct_internal(LOG_WARNING, -ENOENT, fields, ELEMENTSOF(fields), "x %d", 1),
                         -ENOENT);
        /* PRIORITY, SYSLOG_IDENTIFIER, MESSAGE, ERRNO and three of ours */
        assert_int_equal(sent_fields, 7);
        assert_string_equal(field("PRIORITY"), "4");
        assert_string_equal(field("SYSLOG_IDENTIFIER"), "pycqueued");
        assert_string_equal(field("MESSAGE"), "x 1");
        assert_string_equal(field("ERRNO"), "2");
        assert_string_equal(field("MESSAGE_ID"), "0123456789abcdef0123456789abcdef");
        assert_null(field("PYCQUEUE_PACKAGE"));
        assert_memory_equal(field("PYCQUEUE_SOURCE"), binary, sizeof(binary)); /* and its NUL */
        assert_string_equal(field("PYCQUEUE_TARGET"), long_path);              /* whole, not cut */

        /* below the level: nothing */
        sent_fields = 0;
        log_set_max_level(LOG_INFO);
        log_struct_internal(LOG_DEBUG, 0, fields, ELEMENTSOF(fields), "hidden");
        assert_int_equal(sent_fields, 0);
        log_set_journal(NULL);
}

static void test_journal_failure_falls_back(void **state _unused_) {
        int pipefd[2], saved = dup(STDERR_FILENO);
        char line[256];
        ssize_t n;

        assert_int_equal(pipe(pipefd), 0);
        assert_true(dup2(pipefd[1], STDERR_FILENO) >= 0);
        log_setup("pycqueued", true);
        log_set_journal(fake_sendv);
        send_result = -ECONNREFUSED;
        log_error("gone %s", "away");
        send_result = 0;
        log_set_journal(NULL);
        log_notice("plain");
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        close(pipefd[1]);
        n = read(pipefd[0], line, sizeof(line) - 1);
        close(pipefd[0]);
        assert_true(n > 0);
        line[n] = '\0';
        assert_string_equal(line, "<3>gone away\n<5>plain\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_escape_bounded),
                cmocka_unit_test(test_stream_is_journal),
                cmocka_unit_test(test_journal_entry),
                cmocka_unit_test(test_journal_failure_falls_back),
        };

        return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
