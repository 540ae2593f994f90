/* SPDX-License-Identifier: MIT */
#pragma once

/* Everything pycqueue prints goes through here: the usage and error messages
 * on stderr, the per-file lines, the progress line, the compile summary (or
 * its JSON object); the status block is status-view.c's. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"
#include "protocol.h"

/* At most this many per-file errors are kept for the --json "errors" array;
 * the rest are counted in "errors_omitted". */
#define OUTPUT_MAX_JSON_ERRORS 100000u

/* One file's result; every pointer borrows the received frame. */
typedef struct FileResult {
        const uint8_t *source;
        size_t source_size;
        Outcome outcome;
        const uint8_t *type;
        size_t type_size;
        uint64_t line;
        const uint8_t *message;
        size_t message_size;
} FileResult;

typedef struct CompileCounts {
        uint64_t compiled;
        uint64_t up_to_date;
        uint64_t coalesced;
        uint64_t failed;
} CompileCounts;

/* Names the program in messages (default "pycqueue"); @name is borrowed. */
void output_set_program_name(const char *name);
/* "pycqueue: MESSAGE" on stderr, after clearing the progress line. */
void output_error(const char *format, ...) _printf_(1, 2);
/* The same, followed by "Try 'pycqueue [VERB ]--help' ..."; @verb may be NULL. */
void output_usage_error(const char *verb, const char *format, ...) _printf_(2, 3);
/* Writes @data, a path of any bytes, to @f; quoted C-style (like git) when it
 * holds a control character, a double quote or a backslash, so that one
 * line stays one line and the output is unambiguous. */
void output_write_path(FILE *f, const void *data, size_t size);
/* Writes @data, text from the daemon, raw except that control characters are
 * escaped (\n, \ooo), unquoted. */
void output_write_text(FILE *f, const void *data, size_t size);

/* The compile report: progress, per-file lines, the summary. */
typedef struct CompileOutput CompileOutput;

int compile_output_new(bool json, bool quiet, bool verbose, CompileOutput **ret);
CompileOutput *compile_output_free(CompileOutput *c);
DEFINE_CLEANUP(CompileOutput *, compile_output_free);

/* Updates the progress line (only drawn when stderr is a terminal and not
 * quiet; redrawn at most ten times a second). */
void compile_output_progress(CompileOutput *c, uint64_t done, uint64_t total);
/* Clears the progress line, if one is shown. */
void compile_output_progress_clear(CompileOutput *c);
/* A failure goes to stderr as "PATH:LINE: Type: message" (and into the JSON
 * errors); with -v any other outcome is one stdout line "compiled PATH".
 * Returns 0 or -ENOMEM. */
int compile_output_result(CompileOutput *c, const FileResult *r);
/* Prints the summary line, or the JSON object with --json. */
void compile_output_summary(CompileOutput *c, const CompileCounts *counts);

/* For compile --no-wait: "N queued", or {"queued":N} with --json. */
void compile_output_queued(CompileOutput *c, uint64_t queued);

/* Flushes stdout; returns 0, or a negative errno when output was lost. */
int output_flush(void);
