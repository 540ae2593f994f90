/* SPDX-License-Identifier: MIT */
#pragma once

/* Logging for the two programs' top levels. Lines go to stderr with a
 * "<N>" syslog priority prefix when @journal_prefix is set (the daemon's
 * stderr is read by journald), plainly with the program name otherwise.
 * Library-level code does not log: it returns errors to its caller. */

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

void log_setup(const char *program, bool journal_prefix);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s); /* LOG_* value, or -EINVAL */

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
