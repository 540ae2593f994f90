/* SPDX-License-Identifier: MIT */
/* Top-level logging: one line per call on stderr, either with a syslog
 * priority prefix for journald or with the program's name for a terminal.
 * A line is formatted into one buffer and written with one write() so that
 * lines from the daemon's threads never interleave. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static const char *log_program = "pycqueue";
static bool log_journal = false;
static int log_max_level = LOG_INFO;

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
        static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

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

int log_internal(int level, int error, const char *format, ...) {
        char line[4096];
        int n, saved = errno;
        va_list ap;

        if (level > log_max_level)
                return error;

        if (log_journal)
                n = snprintf(line, sizeof(line), "<%d>", level);
        else
                n = snprintf(line, sizeof(line), "%s: ", log_program);

        /* %m must mean @error, not whatever errno happens to be. */
        errno = error < 0 ? -error : saved;
        va_start(ap, format);
        n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, format, ap);
        va_end(ap);
        if (n > (int)sizeof(line) - 2)
                n = (int)sizeof(line) - 2;
        line[n++] = '\n';
        (void)!write(STDERR_FILENO, line, (size_t)n);

        errno = saved;
        return error;
}
