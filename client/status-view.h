/* SPDX-License-Identifier: MIT */
#pragma once

/* The status as a person reads it (see status-view.c): the daemon's status
 * fields, kept as received, and the short block `pycqueue status` prints. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"

#define STATUS_MAX_FIELDS 100000u /* as json.h's JSON_MAX_ENTRIES */
#define STATUS_VIEW_MAX_ERRORS 5  /* the daemon keeps more; --json shows them all */

typedef struct StatusField {
        char *key;
        char kind;   /* 'n', 's', 'b', or a newer daemon's kind */
        char *value; /* NUL-terminated copy; a path holds no NUL */
        size_t size;
} StatusField;

typedef struct StatusFields {
        StatusField *fields;
        size_t n, allocated;
} StatusFields;

/* Appends a copy of one field. Returns 0, -E2BIG past STATUS_MAX_FIELDS,
 * -EBADMSG for a value holding a NUL, or -ENOMEM. */
int status_fields_add(StatusFields *s, const char *key, char kind, const void *value, size_t size);
/* The field named @key, or NULL. */
const StatusField *status_fields_get(const StatusFields *s, const char *key);
void status_fields_done(StatusFields *s);

/* Colour is for terminals: true when @fd is one, $NO_COLOR is unset or
 * empty, $TERM is not "dumb", and --no-color (@no_color) was not given. */
bool status_view_use_color(int fd, bool no_color);

/* Writes the block for @s to @f; @now_realtime_usec dates "since" and
 * "ago". */
void status_view_print(FILE *f, const StatusFields *s, bool color, uint64_t now_realtime_usec);
/* The block of a daemon that does not answer: "not running" when
 * @not_running (nothing listens), else "unreachable"; @reason says why. */
void status_view_print_unreachable(FILE *f, const char *socket_path, bool not_running, const char *reason,
                                   bool color);
