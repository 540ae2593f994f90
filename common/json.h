/* SPDX-License-Identifier: MIT */
#pragma once

/* Minimal JSON output: string escaping of arbitrary bytes, and a tree that
 * turns the daemon's flat, dotted TAG_STAT keys into nested JSON.
 *
 * Byte strings: valid UTF-8 passes through unchanged (except the escapes
 * JSON requires); each byte that is not part of a valid UTF-8 sequence is
 * written as the lone surrogate "\udcXX", XX being the byte. This is
 * Python's "surrogateescape" (PEP 383): json.loads() followed by
 * os.fsencode() gives back the original bytes exactly, and no valid UTF-8
 * input can produce such an escape, so the mapping is lossless. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"

#define JSON_MAX_DEPTH 32            /* components in a dotted key */
#define JSON_MAX_ENTRIES 100000u     /* stats in one tree */
#define JSON_MAX_ARRAY_INDEX 100000u /* "workers.N": N at most this */

/* Writes @data as a quoted JSON string. Returns 0 or -EIO. */
int json_write_string(FILE *f, const void *data, size_t size);
int json_write_cstring(FILE *f, const char *s);

/* Length of the valid UTF-8 sequence at @p (1 to 4, at most @n), or 0 when
 * the byte at @p does not start one. */
size_t utf8_sequence_length(const uint8_t *p, size_t n);

/* Returns 1 when @s (of @size bytes) is a JSON number (RFC 8259 grammar). */
int json_is_number(const char *s, size_t size);

/* A tree of stats. Leaves keep the order of insertion within an object;
 * an object whose children are all numeric components ("0", "1", ...,
 * without leading zeros) is written as an array in index order, with null
 * in gaps. */
typedef struct JsonTree JsonTree;

int json_tree_new(JsonTree **ret);
JsonTree *json_tree_free(JsonTree *t);
DEFINE_CLEANUP(JsonTree *, json_tree_free);

/* Adds one stat. @kind is 'n' (@value is JSON number text), 's' (bytes,
 * escaped as above) or 'b' ("true" or "false"); an unknown kind is taken
 * as a string so that a newer daemon's values still show. The value is
 * copied. Returns 0; -EBADMSG for an empty component, a number or boolean
 * that is not one, or a key that is both a value and a container (a repeated
 * key replaces the earlier value); -E2BIG past JSON_MAX_*; -ENOMEM. */
int json_tree_add(JsonTree *t, const char *key, char kind, const void *value, size_t size);

/* Writes the tree as one JSON object (no trailing newline). 0 or -EIO. */
int json_tree_write(const JsonTree *t, FILE *f);
