/* SPDX-License-Identifier: MIT */
#pragma once

/* A growing list of owned strings, shared by the daemon's admin verbs and
 * the front-ends (see strlist.c). Zero-initialized is empty. */

#include <stddef.h>

typedef struct StrList {
        char **v;
        size_t n, allocated;
} StrList;

/* Appends a copy of @s; -E2BIG once the list holds @max strings (every
 * user of a list says how long it may grow), -ENOMEM. */
int strlist_add(StrList *l, const char *s, size_t max);
/* Sorts and drops duplicates. */
void strlist_sort_unique(StrList *l);
void strlist_done(StrList *l);
