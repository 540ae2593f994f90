/* SPDX-License-Identifier: MIT */
#pragma once

/* What provdb.c (schema and writes) shares with provdb-query.c (reads);
 * not for use outside daemon/provenance/. */

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "provdb.h"

/* Opens a connection to the database at @path: read-only, or read-write
 * and creating it. Short busy timeouts: callers retry instead of waiting. */
int provdb_open_connection(const char *path, bool readonly, sqlite3 **ret, char **ret_error);
/* The first column of the first row of @sql, or @fallback. */
int64_t provdb_query_int(sqlite3 *db, const char *sql, int64_t fallback);
/* Binds @s, or NULL, as parameter @i (the string is not copied). */
void provdb_bind_text(sqlite3_stmt *st, int i, const char *s);
const char *provdb_path(const ProvDb *p);
