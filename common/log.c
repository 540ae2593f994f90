/* SPDX-License-Identifier: MIT */
/* Top-level logging: one line per call on stderr, either with a syslog
 * priority prefix for journald or with the program's name for a terminal.
 * A line is formatted into one buffer and written with one write() so that
 * lines from the daemon's threads never interleave.
 *
 * When the daemon runs under journald it hands in the journal's native
 * sender, and each entry goes out as one datagram of fields (PRIORITY,
 * SYSLOG_IDENTIFIER, MESSAGE, ERRNO and the caller's own), which is as
 * atomic as the write() and, unlike a line, carries values with newlines
 * or bytes outside UTF-8 intact. This file does not link libsystemd: the
 * client shares it and has no use for the journal. */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "json.h"
#include "log.h"

static const char *log_program = "pycqueue";
static bool log_journal = false;
static int log_max_level = LOG_INFO;
static LogJournalSendv log_journal_sendv = NULL;

#define LOG_LINE_MAX 4096

void log_setup(const char *program, bool journal_prefix) {
        log_program = program;
        log_journal = journal_prefix;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = { "emerg",   "alert",  "crit", "err",
                                             "warning", "notice", "info", "debug" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0)
                        return (int)i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

bool log_stream_is_journal(int fd) {
        const char *e = getenv("JOURNAL_STREAM");
        uintmax_t dev, ino;
        struct stat st;
        int n = 0;

        if (!e || sscanf(e, "%ju:%ju%n", &dev, &ino, &n) != 2 || e[n] != '\0')
                return false;
        if (fstat(fd, &st) < 0)
                return false;
        return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void log_set_journal(LogJournalSendv sendv) {
        log_journal_sendv = sendv;
}

bool log_to_journal(void) {
        return log_journal_sendv != NULL;
}

/* Escapes what fits of @data into @buf, keeping room for "..." when
 * @reserve; returns how many input bytes went in (all: @size). */
static size_t escape_into(const uint8_t *p, size_t size, char *buf, size_t buf_size, bool reserve,
                          size_t *ret_o) {
        size_t o = 0, i = 0;

        while (i < size) {
                bool plain = p[i] >= 0x20 && p[i] != 0x7f && p[i] != '\\';
                size_t len = plain ? utf8_sequence_length(p + i, size - i) : 0;
                size_t in = len > 0 ? len : 1, out = len > 0 ? len : 4;

                if (o + out + (reserve ? 3 : 0) >= buf_size)
                        break;
                if (len > 0)
                        memcpy(buf + o, p + i, len);
                else
                        (void)snprintf(buf + o, buf_size - o, "\\x%02x", p[i]);
                o += out;
                i += in;
        }
        *ret_o = o;
        return i;
}

char *log_escape(const void *data, size_t size, char *buf, size_t buf_size) {
        size_t o;

        assert(buf_size > 0);
        if (escape_into(data, size, buf, buf_size, false, &o) < size) {
                /* Does not fit: cut where "..." still does. */
                (void)escape_into(data, size, buf, buf_size, true, &o);
                if (o + 3 < buf_size) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                }
        }
        buf[o] = '\0';
        return buf;
}

static void log_write_stderr(int level, const char *message) {
        char line[LOG_LINE_MAX + 64];
        int n;

        if (log_journal)
                n = snprintf(line, sizeof(line), "<%d>%s", level, message);
        else
                n = snprintf(line, sizeof(line), "%s: %s", log_program, message);
        if (n > (int)sizeof(line) - 2)
                n = (int)sizeof(line) - 2;
        line[n++] = '\n';
        (void)!write(STDERR_FILENO, line, (size_t)n);
}

/* One "KEY=value" iovec, in @buf when it is large enough, else allocated
 * into *@heap (freed by the caller). Returns false when out of memory. */
static bool field_iovec(const char *key, const void *value, size_t size, char *buf, size_t buf_size,
                        char **heap, struct iovec *ret) {
        size_t klen = strlen(key), total = klen + 1 + size;
        char *p = buf;

        if (total > buf_size) {
                p = *heap = malloc(total);
                if (!p)
                        return false;
        }
        memcpy(p, key, klen);
        p[klen] = '=';
        if (size > 0)
                memcpy(p + klen + 1, value, size);
        *ret = (struct iovec){ .iov_base = p, .iov_len = total };
        return true;
}

static void log_send_journal(int level, int error, const LogField *fields, size_t n_fields,
                             const char *message) {
        /* Fixed fields are small; a caller's field (a path) that does not
         * fit its slot is allocated, never cut: the journal keeps it whole. */
        char priority[16], errno_field[32], ident[64], slots[LOG_MAX_FIELDS][256];
        char *heap[LOG_MAX_FIELDS] = {};
        struct iovec iov[4 + LOG_MAX_FIELDS];
        _cleanup_free_ char *msg = NULL;
        size_t n = 0, mlen = strlen(message);
        bool ok = true;
        int r = -ENOMEM;

        iov[n++] = (struct iovec){ .iov_base = priority,
                                   .iov_len = (size_t)snprintf(priority, sizeof(priority), "PRIORITY=%d",
                                                               level) };
        iov[n++] = (struct iovec){ .iov_base = ident,
                                   .iov_len = (size_t)snprintf(ident, sizeof(ident),
                                                               "SYSLOG_IDENTIFIER=%.40s", log_program) };
        msg = malloc(8 + mlen);
        if (msg) {
                memcpy(msg, "MESSAGE=", 8);
                memcpy(msg + 8, message, mlen);
                iov[n++] = (struct iovec){ .iov_base = msg, .iov_len = 8 + mlen };
        } else
                ok = false;
        if (error < 0)
                iov[n++] = (struct iovec){ .iov_base = errno_field,
                                           .iov_len = (size_t)snprintf(errno_field, sizeof(errno_field),
                                                                       "ERRNO=%d", -error) };
        for (size_t i = 0; ok && i < MIN(n_fields, (size_t)LOG_MAX_FIELDS); i++) {
                if (!fields[i].value)
                        continue;
                ok = field_iovec(fields[i].key, fields[i].value, fields[i].size, slots[i], sizeof(slots[i]),
                                 &heap[i], &iov[n++]);
        }
        if (ok)
                r = log_journal_sendv(iov, (int)n);
        for (size_t i = 0; i < LOG_MAX_FIELDS; i++)
                free(heap[i]);
        /* journald gone, or its socket full: the line is not lost. */
        if (r < 0)
                log_write_stderr(level, message);
}

static int log_dispatch(int level, int error, const LogField *fields, size_t n_fields, const char *format,
                        va_list ap) {
        char message[LOG_LINE_MAX];
        int saved = errno;

        if (level > log_max_level)
                return error;

        /* %m must mean @error, not whatever errno happens to be. */
        errno = error < 0 ? -error : saved;
        (void)vsnprintf(message, sizeof(message), format, ap);

        if (log_journal_sendv)
                log_send_journal(level, error, fields, n_fields, message);
        else
                log_write_stderr(level, message);

        errno = saved;
        return error;
}

int log_internal(int level, int error, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, NULL, 0, format, ap);
        va_end(ap);
        return r;
}

int log_struct_internal(int level, int error, const LogField *fields, size_t n_fields, const char *format,
                        ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, fields, n_fields, format, ap);
        va_end(ap);
        return r;
}
