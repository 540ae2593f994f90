/* SPDX-License-Identifier: MIT */
/* The read side of the provenance database: why, history and the list of
 * recorded targets (provdb_query(), provdb_targets()), verify's per-file
 * look-ups of the last write (ProvLookup), the audit log and the recorded
 * interpreters.
 *
 * Every query opens a read-only connection of its own and closes it when
 * done. In WAL mode such a reader sees one snapshot and never waits for the
 * recorder's writer, nor makes it wait; the price is that the WAL cannot be
 * restarted past a snapshot still held, so a query's connection lives no
 * longer than the query. */

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "provdb-private.h"
#include "provdb.h"
#include "pycpath.h"

int provdb_audit_query(ProvDb *p, uint64_t since_usec, uint64_t limit,
                       int (*fn)(uint64_t time_usec, const char *path, pid_t pid, const char *exe,
                                 const char *cmdline, const char *parents, void *userdata),
                       void *userdata) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st;
        int r = 0;

        r = provdb_open_connection(provdb_path(p), true, &db, NULL);
        if (r < 0)
                return r;
        if (sqlite3_prepare_v2(db,
                               "SELECT time, path, pid, exe, cmdline, parents FROM audit WHERE time >= ?"
                               " ORDER BY id DESC LIMIT ?;",
                               -1, &st, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return -EIO;
        }
        sqlite3_bind_int64(st, 1, (int64_t)since_usec);
        sqlite3_bind_int64(st, 2, limit > 0 ? (int64_t)limit : -1);
        while (r >= 0 && sqlite3_step(st) == SQLITE_ROW)
                r = fn((uint64_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                       (pid_t)sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3),
                       (const char *)sqlite3_column_text(st, 4), (const char *)sqlite3_column_text(st, 5),
                       userdata);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return r;
}

int provdb_audit_latest(ProvDb *p, const char *path, uint64_t *ret_time_usec, pid_t *ret_pid, char *ret_exe,
                        size_t exe_size) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st;
        int r;

        r = provdb_open_connection(provdb_path(p), true, &db, NULL);
        if (r < 0)
                return r;
        if (sqlite3_prepare_v2(db,
                               "SELECT time, pid, exe FROM audit WHERE path = ? ORDER BY id DESC LIMIT 1;",
                               -1, &st, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return -EIO;
        }
        provdb_bind_text(st, 1, path);
        r = 0;
        if (sqlite3_step(st) == SQLITE_ROW) {
                *ret_time_usec = (uint64_t)sqlite3_column_int64(st, 0);
                *ret_pid = (pid_t)sqlite3_column_int64(st, 1);
                snprintf(ret_exe, exe_size, "%s",
                         sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2)
                                                    : "an exited process");
                r = 1;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return r;
}

int provdb_query(const char *path, const ProvQuery *q, provdb_row_fn fn, void *userdata) {
        _cleanup_free_ char *sql = NULL, *prefix_lo = NULL, *prefix_hi = NULL;
        size_t size = 0;
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        FILE *f;
        int r, k = 1;

        f = open_memstream(&sql, &size);
        if (!f)
                return -ENOMEM;
        fputs("SELECT j.target, j.source, j.source_mtime, j.source_size, j.source_sha256, j.pyc_sha256,"
              " j.opt_level, j.mode, j.outcome, j.error_type, j.error_line, j.error_message, j.start, j.end,"
              " i.path, i.cache_tag, i.magic,"
              " r.id, r.time, r.uid, r.gid, r.pid, r.exe, r.cmdline, r.parents, r.tool, r.dpkg_package, "
              "r.package, r.dpkg_script, r.root"
              " FROM jobs j LEFT JOIN requests r ON r.id = j.request_id"
              " LEFT JOIN interpreters i ON i.id = j.interpreter_id WHERE 1",
              f);
        if (q->n_targets > 0) {
                fputs(" AND j.target IN (", f);
                for (size_t i = 0; i < q->n_targets; i++)
                        fputs(i == 0 ? "?" : ", ?", f);
                fputs(")", f);
        }
        if (q->prefix)
                fputs(" AND j.target >= ? AND j.target < ?", f);
        if (q->package)
                fputs(" AND (r.package = ? OR r.dpkg_package = ?)", f);
        if (q->since_usec > 0)
                fputs(" AND j.end >= ?", f);
        if (q->failed_only)
                fputs(" AND j.outcome = 3", f);
        if (q->writes_only)
                fputs(" AND j.outcome = 0", f);
        fputs(" ORDER BY j.id DESC LIMIT ?;", f);
        if (fclose(f) != 0)
                return -ENOMEM;

        r = provdb_open_connection(path, true, &db, NULL);
        if (r < 0)
                return r;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return -EIO;
        }
        for (size_t i = 0; i < q->n_targets; i++)
                provdb_bind_text(st, k++, q->targets[i]);
        if (q->prefix) {
                /* targets under "DIR/": the range ["DIR/", "DIR0") in byte order */
                size_t n = strlen(q->prefix);
                prefix_lo = malloc(n + 2);
                prefix_hi = malloc(n + 2);
                if (!prefix_lo || !prefix_hi) {
                        sqlite3_finalize(st);
                        sqlite3_close(db);
                        return -ENOMEM;
                }
                memcpy(prefix_lo, q->prefix, n);
                memcpy(prefix_hi, q->prefix, n);
                if (n > 0 && q->prefix[n - 1] == '/')
                        n--;
                prefix_lo[n] = '/';
                prefix_hi[n] = '/' + 1;
                prefix_lo[n + 1] = prefix_hi[n + 1] = '\0';
                provdb_bind_text(st, k++, prefix_lo);
                provdb_bind_text(st, k++, prefix_hi);
        }
        if (q->package) {
                provdb_bind_text(st, k++, q->package);
                provdb_bind_text(st, k++, q->package);
        }
        if (q->since_usec > 0)
                sqlite3_bind_int64(st, k++, (int64_t)q->since_usec);
        sqlite3_bind_int64(st, k++, q->limit > 0 ? (int64_t)q->limit : -1);

        r = 0;
        while (r >= 0) {
                _cleanup_free_ char *derived = NULL;
                ProvJob j = {};
                ProvRequest rq = {};
                ProvRow row = { .job = &j, .request = &rq };
                int s = sqlite3_step(st);

                if (s == SQLITE_DONE)
                        break;
                if (s != SQLITE_ROW) {
                        r = -EIO;
                        break;
                }
                j.target = (char *)sqlite3_column_text(st, 0);
                j.source = (char *)sqlite3_column_text(st, 1);
                if (!j.source && j.target && pycpath_source_path(j.target, &derived) == 0)
                        j.source = derived;
                j.source_mtime = sqlite3_column_int64(st, 2);
                j.source_size = (uint64_t)sqlite3_column_int64(st, 3);
                if (sqlite3_column_bytes(st, 4) == 32) {
                        memcpy(j.source_sha256, sqlite3_column_blob(st, 4), 32);
                        j.have_source_sha256 = true;
                }
                if (sqlite3_column_bytes(st, 5) == 32) {
                        memcpy(j.pyc_sha256, sqlite3_column_blob(st, 5), 32);
                        j.have_pyc_sha256 = true;
                }
                j.opt_level = (unsigned)sqlite3_column_int(st, 6);
                j.mode = (unsigned)sqlite3_column_int(st, 7);
                j.outcome = (unsigned)sqlite3_column_int(st, 8);
                j.error_type = (char *)sqlite3_column_text(st, 9);
                j.error_line = (uint32_t)sqlite3_column_int64(st, 10);
                j.error_message = (char *)sqlite3_column_text(st, 11);
                j.start_usec = (uint64_t)sqlite3_column_int64(st, 12);
                j.end_usec = (uint64_t)sqlite3_column_int64(st, 13);
                j.interpreter = (char *)sqlite3_column_text(st, 14);
                j.cache_tag = (char *)sqlite3_column_text(st, 15);
                if (sqlite3_column_text(st, 16))
                        snprintf(j.magic, sizeof(j.magic), "%s", (const char *)sqlite3_column_text(st, 16));
                rq.id = (uint64_t)sqlite3_column_int64(st, 17);
                rq.time_usec = (uint64_t)sqlite3_column_int64(st, 18);
                rq.uid = (uid_t)sqlite3_column_int64(st, 19);
                rq.gid = (gid_t)sqlite3_column_int64(st, 20);
                rq.pid = (pid_t)sqlite3_column_int64(st, 21);
                rq.exe = (char *)sqlite3_column_text(st, 22);
                rq.cmdline = (char *)sqlite3_column_text(st, 23);
                rq.parents = (char *)sqlite3_column_text(st, 24);
                rq.tool = (char *)sqlite3_column_text(st, 25);
                rq.dpkg_package = (char *)sqlite3_column_text(st, 26);
                rq.package = (char *)sqlite3_column_text(st, 27);
                rq.dpkg_script = (char *)sqlite3_column_text(st, 28);
                rq.root = (char *)sqlite3_column_text(st, 29);
                r = fn(&row, userdata);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return r;
}

int provdb_targets(const char *path, const char *package, const char *prefix,
                   int (*fn)(const char *target, void *userdata), void *userdata) {
        _cleanup_free_ char *lo = NULL, *hi = NULL;
        sqlite3 *db = NULL;
        sqlite3_stmt *st;
        char sql[512];
        int r, k = 1;

        /* The newest write or removal of each target decides: sqlite takes
         * the bare column from the row MAX() picked. The SQL is built for
         * the filters given so that a prefix is a range search on the
         * target index, not a scan. */
        snprintf(sql, sizeof(sql),
                 "SELECT j.target, j.outcome, MAX(j.id) FROM jobs j%s WHERE j.outcome IN (0, 10)%s%s GROUP "
                 "BY j.target;",
                 package ? " LEFT JOIN requests r ON r.id = j.request_id" : "",
                 package ? " AND (r.package = ? OR r.dpkg_package = ?)" : "",
                 prefix ? " AND j.target >= ? AND j.target < ?" : "");
        r = provdb_open_connection(path, true, &db, NULL);
        if (r < 0)
                return r;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return -EIO;
        }
        if (package) {
                provdb_bind_text(st, k++, package);
                provdb_bind_text(st, k++, package);
        }
        if (prefix) {
                size_t n = strlen(prefix);
                if (n > 0 && prefix[n - 1] == '/')
                        n--;
                if (asprintf(&lo, "%.*s/", (int)n, prefix) < 0 ||
                    asprintf(&hi, "%.*s0", (int)n, prefix) < 0) {
                        sqlite3_finalize(st);
                        sqlite3_close(db);
                        return -ENOMEM;
                }
                provdb_bind_text(st, k++, lo);
                provdb_bind_text(st, k++, hi);
        }
        r = 0;
        while (r >= 0 && sqlite3_step(st) == SQLITE_ROW)
                if (sqlite3_column_int(st, 1) == 0)
                        r = fn((const char *)sqlite3_column_text(st, 0), userdata);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return r;
}

struct ProvLookup {
        sqlite3 *db;
        sqlite3_stmt *st;
        sqlite3_stmt *audit;
        bool audit_empty;
};

int provdb_lookup_open(const char *path, ProvLookup **ret) {
        ProvLookup *l = calloc(1, sizeof(*l));
        int r;

        if (!l)
                return -ENOMEM;
        r = provdb_open_connection(path, true, &l->db, NULL);
        if (r >= 0 &&
            sqlite3_prepare_v2(l->db,
                               "SELECT j.pyc_sha256, j.end, r.pid, i.path, r.exe FROM jobs j"
                               " LEFT JOIN requests r ON r.id = j.request_id"
                               " LEFT JOIN interpreters i ON i.id = j.interpreter_id"
                               " WHERE j.target = ? AND j.outcome IN (0, 10) ORDER BY j.id DESC LIMIT 1;",
                               -1, &l->st, NULL) != SQLITE_OK)
                r = -EIO;
        if (r >= 0 &&
            sqlite3_prepare_v2(l->db,
                               "SELECT time, pid, exe FROM audit WHERE path = ? ORDER BY id DESC LIMIT 1;",
                               -1, &l->audit, NULL) != SQLITE_OK)
                r = -EIO;
        if (r < 0) {
                provdb_lookup_close(l);
                return r;
        }
        /* Most systems never audit: skip the per-file look-up then. */
        l->audit_empty = provdb_query_int(l->db, "SELECT EXISTS (SELECT 1 FROM audit);", 0) == 0;
        *ret = l;
        return 0;
}

int provdb_lookup_audit(ProvLookup *l, const char *path, uint64_t *ret_time_usec, pid_t *ret_pid,
                        char *ret_exe, size_t exe_size) {
        int r = 0;

        if (l->audit_empty)
                return 0;
        sqlite3_reset(l->audit);
        sqlite3_bind_text(l->audit, 1, path, -1, SQLITE_STATIC);
        if (sqlite3_step(l->audit) == SQLITE_ROW) {
                *ret_time_usec = (uint64_t)sqlite3_column_int64(l->audit, 0);
                *ret_pid = (pid_t)sqlite3_column_int64(l->audit, 1);
                snprintf(ret_exe, exe_size, "%s",
                         sqlite3_column_text(l->audit, 2) ? (const char *)sqlite3_column_text(l->audit, 2)
                                                          : "an exited process");
                r = 1;
        }
        return r;
}

int provdb_lookup_last_write(ProvLookup *l, const char *target, ProvLastWrite *ret) {
        ProvLastWrite w = {};

        sqlite3_reset(l->st);
        sqlite3_bind_text(l->st, 1, target, -1, SQLITE_STATIC);
        if (sqlite3_step(l->st) == SQLITE_ROW && sqlite3_column_bytes(l->st, 0) == 32) {
                w.found = true;
                memcpy(w.pyc_sha256, sqlite3_column_blob(l->st, 0), 32);
                w.have_pyc_sha256 = true;
                w.time_usec = (uint64_t)sqlite3_column_int64(l->st, 1);
                w.pid = (pid_t)sqlite3_column_int64(l->st, 2);
                if (sqlite3_column_text(l->st, 3))
                        snprintf(w.interpreter, sizeof(w.interpreter), "%s", sqlite3_column_text(l->st, 3));
                if (sqlite3_column_text(l->st, 4))
                        snprintf(w.exe, sizeof(w.exe), "%s", sqlite3_column_text(l->st, 4));
        }
        *ret = w;
        return 0;
}

ProvLookup *provdb_lookup_close(ProvLookup *l) {
        if (!l)
                return NULL;
        sqlite3_finalize(l->st);
        sqlite3_finalize(l->audit);
        sqlite3_close(l->db);
        free(l);
        return NULL;
}

int provdb_interpreters(const char *path,
                        int (*fn)(const char *interpreter, const char *cache_tag, const char *magic,
                                  void *userdata),
                        void *userdata) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st;
        int r;

        r = provdb_open_connection(path, true, &db, NULL);
        if (r < 0)
                return r;
        if (sqlite3_prepare_v2(db, "SELECT path, cache_tag, magic FROM interpreters ORDER BY id DESC;", -1,
                               &st, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return -EIO;
        }
        r = 0;
        while (r >= 0 && sqlite3_step(st) == SQLITE_ROW)
                r = fn((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                       (const char *)sqlite3_column_text(st, 2), userdata);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return r;
}
