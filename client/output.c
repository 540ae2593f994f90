/* SPDX-License-Identifier: MIT */
/* The client's printing, kept in one place so that the rules hold everywhere:
 *
 * - stdout carries results (the summary or its JSON object, -v lines, the
 *   status listing); stderr carries diagnostics (per-file errors, request
 *   errors, usage errors) and, on a terminal, one progress line.
 * - The progress line is a property of the terminal, hence one static width
 *   for the process: it is rewritten in place with "\r" and cleared before
 *   anything else is printed, on either stream (both may be the terminal),
 *   and at the end.
 * - Paths are bytes. Human output prints them raw, but quotes them C-style
 *   (as git does) when they hold a control character, a double quote or a
 *   backslash, so a newline in a file name cannot forge a line. JSON output
 *   uses json.h's lossless escaping. Text from the daemon (error types and
 *   messages) has its control characters escaped the same way, unquoted. */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "json.h"
#include "output.h"
#include "util.h"

#define PROGRESS_REDRAW_USEC 100000u

/* Width of the progress line now on the terminal; 0 when none is shown. */
static size_t progress_width;

static void progress_clear(void) {
        char blank[256];
        size_t n;

        if (progress_width == 0)
                return;
        n = MIN(progress_width, sizeof(blank) - 2);
        blank[0] = '\r';
        memset(blank + 1, ' ', n);
        blank[n + 1] = '\r';
        (void)loop_write(STDERR_FILENO, blank, n + 2);
        progress_width = 0;
}

static void progress_draw(const char *text) {
        char line[256];
        size_t len = MIN(strlen(text), 200), n = 0;

        line[n++] = '\r';
        memcpy(line + n, text, len);
        n += len;
        /* Blank out the tail of a longer previous line. */
        for (size_t w = len; w < progress_width && n < sizeof(line); w++)
                line[n++] = ' ';
        (void)loop_write(STDERR_FILENO, line, n);
        progress_width = len;
}

/* The name messages start with: the front-ends set their own. */
static const char *program_name = PROGRAM_NAME;

void output_set_program_name(const char *name) {
        program_name = name;
}

_printf_(1, 0) static void vmessage(const char *format, va_list ap) {
        progress_clear();
        fflush(stdout); /* keep the order of lines when both streams are the terminal */
        fputs(program_name, stderr);
        fputs(": ", stderr);
        vfprintf(stderr, format, ap);
        fputc('\n', stderr);
}

void output_error(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vmessage(format, ap);
        va_end(ap);
}

void output_usage_error(const char *verb, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vmessage(format, ap);
        va_end(ap);
        fprintf(stderr, "Try '%s%s%s --help' for more information.\n", program_name, verb ? " " : "",
                verb ? verb : "");
}

static void write_escaped_byte(FILE *f, uint8_t c) {
        static const char *const letters[32] = {
                ['\a'] = "\\a", ['\b'] = "\\b", ['\t'] = "\\t", ['\n'] = "\\n",
                ['\v'] = "\\v", ['\f'] = "\\f", ['\r'] = "\\r",
        };

        if (c < ELEMENTSOF(letters) && letters[c])
                fputs(letters[c], f);
        else
                fprintf(f, "\\%03o", c);
}

static bool byte_is_control(uint8_t c) {
        return c < 0x20 || c == 0x7F;
}

void output_write_path(FILE *f, const void *data, size_t size) {
        const uint8_t *p = data;
        bool quote = false;

        for (size_t i = 0; i < size && !quote; i++)
                quote = byte_is_control(p[i]) || p[i] == '"' || p[i] == '\\';
        if (!quote) {
                fwrite(p, 1, size, f);
                return;
        }
        fputc('"', f);
        for (size_t i = 0; i < size; i++) {
                if (p[i] == '"' || p[i] == '\\') {
                        fputc('\\', f);
                        fputc(p[i], f);
                } else if (byte_is_control(p[i]))
                        write_escaped_byte(f, p[i]);
                else
                        fputc(p[i], f);
        }
        fputc('"', f);
}

/* Daemon-supplied text: raw, but no control character reaches the terminal. */
void output_write_text(FILE *f, const void *data, size_t size) {
        const uint8_t *p = data;

        for (size_t i = 0; i < size; i++)
                if (byte_is_control(p[i]))
                        write_escaped_byte(f, p[i]);
                else
                        fputc(p[i], f);
}

typedef struct JsonError {
        char *source;
        size_t source_size;
        char *type;
        size_t type_size;
        char *message;
        size_t message_size;
        uint64_t line;
} JsonError;

struct CompileOutput {
        bool json;
        bool quiet;
        bool verbose;
        bool progress;
        uint64_t start_usec;
        uint64_t last_draw_usec;
        JsonError *errors;
        size_t n_errors;
        size_t allocated;
        uint64_t errors_omitted;
};

int compile_output_new(bool json, bool quiet, bool verbose, CompileOutput **ret) {
        CompileOutput *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->json = json;
        c->quiet = quiet;
        c->verbose = verbose;
        c->progress = !quiet && isatty(STDERR_FILENO);
        c->start_usec = now_usec(CLOCK_MONOTONIC);
        *ret = c;
        return 0;
}

CompileOutput *compile_output_free(CompileOutput *c) {
        if (!c)
                return NULL;
        compile_output_progress_clear(c);
        for (size_t i = 0; i < c->n_errors; i++) {
                free(c->errors[i].source);
                free(c->errors[i].type);
                free(c->errors[i].message);
        }
        free(c->errors);
        free(c);
        return NULL;
}

static void format_duration(char *buf, size_t size, uint64_t seconds) {
        if (seconds >= 3600)
                snprintf(buf, size, "%" PRIu64 ":%02u:%02u", seconds / 3600, (unsigned)(seconds / 60 % 60),
                         (unsigned)(seconds % 60));
        else
                snprintf(buf, size, "%u:%02u", (unsigned)(seconds / 60), (unsigned)(seconds % 60));
}

void compile_output_progress(CompileOutput *c, uint64_t done, uint64_t total) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        double elapsed, rate;
        char eta[32] = "--:--", text[160];

        if (!c->progress || total == 0)
                return;
        if (done < total && now - c->last_draw_usec < PROGRESS_REDRAW_USEC)
                return;
        c->last_draw_usec = now;

        done = MIN(done, total);
        elapsed = (double)(now - c->start_usec) / 1e6;
        rate = elapsed > 0 ? (double)done / elapsed : 0;
        if (rate > 0)
                format_duration(eta, sizeof(eta), (uint64_t)((double)(total - done) / rate + 0.5));
        snprintf(text, sizeof(text), "%" PRIu64 "/%" PRIu64 " files (%u%%), %.1f files/s, ETA %s", done,
                 total, (unsigned)(done * 100 / total), rate, eta);
        progress_draw(text);
}

void compile_output_progress_clear(CompileOutput *c) {
        progress_clear();
}

static char *memdup_or_empty(const void *data, size_t size) {
        char *p = malloc(size + 1);

        if (!p)
                return NULL;
        if (size > 0)
                memcpy(p, data, size);
        p[size] = '\0';
        return p;
}

static int json_error_add(CompileOutput *c, const FileResult *r) {
        JsonError e = { .line = r->line,
                        .source_size = r->source_size,
                        .type_size = r->type_size,
                        .message_size = r->message_size };

        if (c->n_errors >= OUTPUT_MAX_JSON_ERRORS) {
                c->errors_omitted++;
                return 0;
        }
        if (c->n_errors == c->allocated) {
                size_t a = c->allocated ? c->allocated * 2 : 16;
                JsonError *n = realloc(c->errors, a * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                c->errors = n;
                c->allocated = a;
        }
        e.source = memdup_or_empty(r->source, r->source_size);
        e.type = memdup_or_empty(r->type, r->type_size);
        e.message = memdup_or_empty(r->message, r->message_size);
        if (!e.source || !e.type || !e.message) {
                free(e.source);
                free(e.type);
                free(e.message);
                return -ENOMEM;
        }
        c->errors[c->n_errors++] = e;
        return 0;
}

static void print_file_error(const FileResult *r) {
        progress_clear();
        fflush(stdout);
        output_write_path(stderr, r->source, r->source_size);
        if (r->line > 0)
                fprintf(stderr, ":%" PRIu64, r->line);
        fputs(": ", stderr);
        if (r->type_size > 0)
                output_write_text(stderr, r->type, r->type_size);
        else
                fputs("Error", stderr);
        if (r->message_size > 0) {
                fputs(": ", stderr);
                output_write_text(stderr, r->message, r->message_size);
        }
        fputc('\n', stderr);
}

static const char *outcome_verb(Outcome o) {
        switch (o) {
        case OUTCOME_COMPILED:
                return "compiled";
        case OUTCOME_UP_TO_DATE:
                return "up to date";
        case OUTCOME_COALESCED:
                return "coalesced";
        default:
                return NULL;
        }
}

int compile_output_result(CompileOutput *c, const FileResult *r) {
        const char *verb;

        if (r->outcome == OUTCOME_FAILED) {
                print_file_error(r);
                return c->json ? json_error_add(c, r) : 0;
        }
        verb = outcome_verb(r->outcome);
        if (!c->verbose || c->json || !verb)
                return 0;
        progress_clear();
        fputs(verb, stdout);
        fputc(' ', stdout);
        output_write_path(stdout, r->source, r->source_size);
        fputc('\n', stdout);
        return 0;
}

static void print_json_summary(CompileOutput *c, const CompileCounts *k) {
        printf("{\"compiled\":%" PRIu64 ",\"up_to_date\":%" PRIu64 ",\"coalesced\":%" PRIu64
               ",\"failed\":%" PRIu64 ",\"errors\":[",
               k->compiled, k->up_to_date, k->coalesced, k->failed);
        for (size_t i = 0; i < c->n_errors; i++) {
                const JsonError *e = &c->errors[i];

                fputs(i > 0 ? ",{\"source\":" : "{\"source\":", stdout);
                json_write_string(stdout, e->source, e->source_size);
                fputs(",\"type\":", stdout);
                json_write_string(stdout, e->type, e->type_size);
                printf(",\"line\":%" PRIu64 ",\"message\":", e->line);
                json_write_string(stdout, e->message, e->message_size);
                fputc('}', stdout);
        }
        fputc(']', stdout);
        if (c->errors_omitted > 0)
                printf(",\"errors_omitted\":%" PRIu64, c->errors_omitted);
        fputs("}\n", stdout);
}

void compile_output_summary(CompileOutput *c, const CompileCounts *k) {
        progress_clear();
        if (c->json)
                print_json_summary(c, k);
        else if (!c->quiet)
                printf("%" PRIu64 " compiled, %" PRIu64 " up to date, %" PRIu64 " coalesced, %" PRIu64
                       " failed\n",
                       k->compiled, k->up_to_date, k->coalesced, k->failed);
}

void compile_output_queued(CompileOutput *c, uint64_t queued) {
        progress_clear();
        if (c->json)
                printf("{\"queued\":%" PRIu64 "}\n", queued);
        else if (!c->quiet)
                printf("%" PRIu64 " queued\n", queued);
}

int output_flush(void) {
        progress_clear();
        if (fflush(stdout) != 0 || ferror(stdout))
                return negative_errno();
        return 0;
}
