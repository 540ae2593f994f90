/* SPDX-License-Identifier: MIT */
#pragma once

/* Logging for the two programs' top levels. Lines go to stderr with a
 * "<N>" syslog priority prefix when @journal_prefix is set (the daemon's
 * stderr is read by journald), plainly with the program name otherwise.
 * The daemon may hand in the journal's native sender (log_set_journal()):
 * entries then go to journald as structured fields instead, stderr being
 * the fallback when a send fails.
 * Library-level code does not log: it returns errors to its caller. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <syslog.h>

#include <string.h>

#include "macro.h"

void log_setup(const char *program, bool journal_prefix);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s); /* LOG_* value, or -EINVAL */

/* True when @fd is the stream journald reads for us: $JOURNAL_STREAM names
 * its device and inode ("DEV:INO"), as systemd sets it for a service whose
 * stdout or stderr it connects to the journal. A stderr merely inherited
 * from such a service by a later redirection no longer matches. */
bool log_stream_is_journal(int fd);

/* The journal's native sender (sd_journal_sendv()): each entry becomes one
 * call with "KEY=value" iovecs. NULL (the default) logs to stderr only.
 * Set it before other threads log. */
typedef int (*LogJournalSendv)(const struct iovec *iov, int n);
void log_set_journal(LogJournalSendv sendv);
bool log_to_journal(void);

/* One structured field of an entry: @key (upper-case, as the journal
 * wants) and @size bytes of @value, any bytes at all: the journal stores
 * them as they are. */
typedef struct LogField {
        const char *key;
        const void *value;
        size_t size;
} LogField;
static inline LogField log_field_str(const char *key, const char *s) {
        return (LogField){ .key = key, .value = s, .size = s ? strlen(s) : 0 };
}
#define LOG_FIELD_STR(k, s) log_field_str((k), (s))
#define LOG_MAX_FIELDS 16

/* Like log_internal(), with extra fields for the journal (at most
 * LOG_MAX_FIELDS; a field with a NULL @value is left out). On stderr only
 * the message is written. */
int log_struct_internal(int level, int error, const LogField *fields, size_t n_fields, const char *format,
                        ...) _printf_(5, 6);

/* Writes @data (@size bytes) into @buf (of @buf_size > 0 bytes, always
 * NUL-terminated) fit for a one-line message: valid UTF-8 stays as it is,
 * control bytes, backslashes and bytes outside UTF-8 become \xNN, and a
 * value too long is cut with "...". Returns @buf. */
char *log_escape(const void *data, size_t size, char *buf, size_t buf_size);

/* Logs and returns @error (a negative errno) so callers can
 * "return log_error_errno(r, ...)". %m in @format is the text of @error. */
int log_internal(int level, int error, const char *format, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...) log_internal((level), (error), __VA_ARGS__)
#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)
