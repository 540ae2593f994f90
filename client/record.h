/* SPDX-License-Identifier: MIT */
#pragma once

/* One record of an administration reply (MSG_RECORD, or the TAG_STAT summary
 * of MSG_DONE): its fields, and what the admin verbs print of them — JSON
 * objects, local times, and the parent chain of a process. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"
#include "protocol.h"

/* Fields of one record, at most this many (as one JSON tree). */
#define RECORD_MAX_FIELDS 100000u
/* Ancestors shown in a parent chain; the daemon bounds the chain too. */
#define RECORD_MAX_CHAIN 64u

typedef struct RecordField {
        const char *key; /* NUL-terminated, in the frame */
        char kind;       /* 'n', 's' or 'b' */
        const uint8_t *value;
        size_t size;
} RecordField;

/* The fields borrow the frame that record_parse() read, and are valid until
 * that frame is gone. The array is reused from one record to the next. */
typedef struct Record {
        RecordField *fields;
        size_t n_fields;
        size_t allocated;
} Record;

#define RECORD_NULL ((Record){ .fields = NULL })

void record_done(Record *r);

/* Replaces @r's fields by the TAG_STAT fields of @m; other tags are skipped.
 * Returns 0, -EBADMSG for a malformed stat, -E2BIG past RECORD_MAX_FIELDS,
 * or -ENOMEM. */
int record_parse(Record *r, MsgReader *m);

/* The field named @key (the last one, if repeated), or NULL. */
const RecordField *record_get(const Record *r, const char *key);
/* True when @key is a string (or any kind) equal to @s. */
bool record_equals(const Record *r, const char *key, const char *s);
/* Parses a numeric field; -ENOENT when absent, -EBADMSG when not a number
 * of that type. */
int record_get_double(const Record *r, const char *key, double *ret);
int record_get_u64(const Record *r, const char *key, uint64_t *ret);

/* Writes the record as one JSON object, dotted keys nested (json.h).
 * Returns 0, or -EBADMSG / -E2BIG / -ENOMEM / -EIO. */
int record_write_json(const Record *r, FILE *f);

/* Writes a field's value for humans: a path-like string quoted when it holds
 * control characters (output_write_path), numbers and booleans as they are,
 * "-" when absent or empty. A command line's NUL separators become spaces. */
void record_write_value(const Record *r, const char *key, FILE *f);
void record_write_cmdline(const RecordField *field, FILE *f);

/* Formats Unix time @t as local "YYYY-MM-DD HH:MM:SS" (with " +ZZZZ" when
 * @zone), into @buf of at least 32 bytes. */
void format_local_time(double t, bool zone, char *buf, size_t size);
/* The record's "time" field so formatted, or "-" when it has none. */
void record_format_time(const Record *r, bool zone, char *buf, size_t size);

/* Writes the process chain of a record, from the oldest ancestor
 * ("parents.N", highest N) down to the process itself ("exe", "cmdline"),
 * as "dpkg → foo.postinst → py3compile". Returns false, writing nothing,
 * when the record has neither parents nor a process name. */
bool record_write_chain(const Record *r, FILE *f);
