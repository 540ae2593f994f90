/* SPDX-License-Identifier: MIT */
/* The provenance database (sqlite, WAL).
 *
 * Schema: `requests` (who asked: credentials, executable, command line,
 * parent chain, tool, packages), `interpreters` (path, cache tag, magic,
 * deduplicated), `jobs` (one row per file result: target, source with its
 * mtime, size and sha256, the .pyc's sha256, outcome, error, times),
 * `queue` (acknowledged --no-wait requests not yet finished, stored as their
 * original request frame so a restart replays them), `failures` (the
 * failed files of --no-wait requests, which no client was there to see,
 * kept until a privileged `pycqueue wait --failures` collects them) and
 * `audit` (.pyc writes by other processes, from fanotify). `meta` holds the schema
 * version; migrations[] brings an older database up to date in one
 * transaction each.
 *
 * Writes come in batches from the recorder (one transaction per batch, on an
 * I/O thread). WAL lets readers — our queries, or an admin's sqlite3 — run
 * beside a writer; a writer that meets a lock gets SQLITE_BUSY after a short
 * timeout and the recorder keeps the batch for later, so nothing here can
 * stall a compile. Queries use a connection of their own (provdb-query.c). */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "provdb-private.h"
#include "provdb.h"
#include "pycpath.h"

/* After a checkpoint has restarted the WAL, sqlite cuts the file back to
 * this size; and the recorder has the WAL checkpointed and truncated when
 * it has grown past it (see provdb_bound_wal()). */
#define PROVDB_WAL_LIMIT (8u * 1024u * 1024u)
#define PROVDB_TRUNCATE_INTERVAL_USEC (30u * 1000000ULL)

struct ProvDb {
        sqlite3 *db;
        char *path;
        char *wal_path;
        pthread_mutex_t lock;
        uint64_t max_request_id;
        uint64_t last_truncate_usec;
};

static const char *const migrations[] = {
        /* 0 → 1 */
        "CREATE TABLE requests ("
        "  id INTEGER PRIMARY KEY, time INTEGER NOT NULL, uid INTEGER, gid INTEGER, pid INTEGER,"
        "  exe TEXT, cmdline TEXT, parents TEXT, tool TEXT, dpkg_package TEXT, package TEXT);"
        "CREATE TABLE interpreters ("
        "  id INTEGER PRIMARY KEY, path TEXT NOT NULL, cache_tag TEXT NOT NULL, magic TEXT NOT NULL,"
        "  UNIQUE (path, cache_tag, magic));"
        "CREATE TABLE jobs ("
        "  id INTEGER PRIMARY KEY, request_id INTEGER, target TEXT NOT NULL, source TEXT,"
        "  source_mtime INTEGER, source_size INTEGER, source_sha256 BLOB, pyc_sha256 BLOB,"
        "  interpreter_id INTEGER, opt_level INTEGER, mode INTEGER, outcome INTEGER NOT NULL,"
        "  error_type TEXT, error_line INTEGER, error_message TEXT, start INTEGER, end INTEGER);"
        "CREATE INDEX jobs_by_target ON jobs (target);"
        "CREATE INDEX jobs_by_request ON jobs (request_id);"
        "CREATE TABLE queue ("
        "  request_id INTEGER PRIMARY KEY, uid INTEGER, spec BLOB NOT NULL);"
        "CREATE TABLE audit ("
        "  id INTEGER PRIMARY KEY, time INTEGER NOT NULL, path TEXT NOT NULL, pid INTEGER,"
        "  exe TEXT, cmdline TEXT, parents TEXT);"
        "CREATE INDEX audit_by_path ON audit (path);",
        /* 1 → 2: the maintainer script that asked ($DPKG_MAINTSCRIPT_NAME),
         * and the failures of --no-wait requests. A failure is keyed by its
         * request and target, so a request replayed after a crash that
         * fails again replaces its row instead of adding one. */
        "ALTER TABLE requests ADD COLUMN dpkg_script TEXT;"
        "CREATE TABLE failures ("
        "  id INTEGER PRIMARY KEY, request_id INTEGER NOT NULL, time INTEGER NOT NULL,"
        "  target TEXT NOT NULL, source TEXT, error_type TEXT, error_line INTEGER, error_message TEXT,"
        "  UNIQUE (request_id, target));",
        /* 2 → 3: the root a request worked in (a chroot client's, or an
         * installer's --root target), recorded and, for a queued request
         * of a client in a chroot, needed to replay it in that root. */
        "ALTER TABLE requests ADD COLUMN root TEXT;"
        "ALTER TABLE queue ADD COLUMN peer_root TEXT;",
};

static int set_error(char **ret_error, sqlite3 *db, const char *what) {
        if (ret_error) {
                free(*ret_error);
                if (asprintf(ret_error, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory") < 0)
                        *ret_error = NULL;
        }
        return -EIO;
}

static int exec(sqlite3 *db, const char *sql, char **ret_error) {
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
                return set_error(ret_error, db, "database");
        return 0;
}

int64_t provdb_query_int(sqlite3 *db, const char *sql, int64_t fallback) {
        sqlite3_stmt *st;
        int64_t v = fallback;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return fallback;
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static int migrate(sqlite3 *db, char **ret_error) {
        int64_t version;
        int r;

        r = exec(db, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;",
                 ret_error);
        if (r < 0)
                return r;
        version = provdb_query_int(db, "SELECT value FROM meta WHERE key = 'schema_version';", 0);
        if (version > PROVDB_SCHEMA_VERSION) {
                if (ret_error &&
                    asprintf(ret_error, "database schema version %lld is newer than this daemon's (%d)",
                             (long long)version, PROVDB_SCHEMA_VERSION) < 0)
                        *ret_error = NULL;
                return -EPROTO;
        }
        for (int64_t v = version; v < PROVDB_SCHEMA_VERSION; v++) {
                char sql[128];

                r = exec(db, "BEGIN IMMEDIATE;", ret_error);
                if (r < 0)
                        return r;
                r = exec(db, migrations[v], ret_error);
                snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta VALUES ('schema_version', %lld);",
                         (long long)v + 1);
                if (r >= 0)
                        r = exec(db, sql, ret_error);
                if (r < 0) {
                        (void)sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
                        return r;
                }
                r = exec(db, "COMMIT;", ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int provdb_open_connection(const char *path, bool readonly, sqlite3 **ret, char **ret_error) {
        sqlite3 *db = NULL;
        int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

        if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
                int r = set_error(ret_error, db, "cannot open the database");
                sqlite3_close(db);
                return r;
        }
        /* Never wait long: the caller retries later instead. */
        sqlite3_busy_timeout(db, readonly ? 2000 : 200);
        /* A small page cache per connection: the daemon stays small. */
        (void)sqlite3_exec(db, "PRAGMA cache_size = -512;", NULL, NULL, NULL);
        *ret = db;
        return 0;
}

/* Makes @fd's file the daemon's own: its uid and gid, and exactly @mode. */
static int own_fd(int fd, mode_t mode) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if ((st.st_uid != geteuid() || st.st_gid != getegid()) && fchown(fd, geteuid(), getegid()) < 0)
                return negative_errno();
        /* After the fchown(), which may have cleared set-id bits. */
        if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
                return negative_errno();
        return 0;
}

/* The database holds the command lines, parent chains and packages of
 * every request, root's included: it is the daemon's alone. The state
 * directory becomes 0700 and the database 0600, both the daemon's, also
 * when they already existed with wider modes or another owner (an older
 * version, an admin's copy). The -wal, -shm and -journal files that exist
 * are fixed the same way; those sqlite creates later take the database
 * file's mode and owner. Everything is done on fds, and nothing inside the
 * directory is followed if it is a symlink. The directory itself is the
 * configured path, followed like any path an admin configures. */
static int secure_files(const char *path, char **ret_error) {
        static const char *const companions[] = { "-wal", "-shm", "-journal" };
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dir_fd = -1, fd = -1;
        const char *slash = strrchr(path, '/'), *name;
        struct stat st;
        int r;

        if (!slash) {
                dir = strdup(".");
                name = path;
        } else {
                dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
                name = slash + 1;
        }
        if (!dir)
                return -ENOMEM;

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                r = negative_errno();
                goto fail;
        }
        /* A shared directory (/tmp-like, sticky) named as the state
         * directory by mistake is refused, not taken over. */
        if (fstat(dir_fd, &st) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (st.st_mode & S_ISVTX) {
                r = -EPERM;
                goto fail;
        }
        r = own_fd(dir_fd, 0700);
        if (r < 0)
                goto fail;

        fd = openat(dir_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = negative_errno();
                goto fail;
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EBADFD;
                goto fail;
        }
        r = own_fd(fd, 0600);
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < ELEMENTSOF(companions); i++) {
                _cleanup_free_ char *companion = NULL;
                _cleanup_close_ int cfd = -1;

                if (asprintf(&companion, "%s%s", name, companions[i]) < 0)
                        return -ENOMEM;
                cfd = openat(dir_fd, companion, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (cfd < 0 && errno == ENOENT)
                        continue;
                if (cfd < 0) {
                        r = negative_errno();
                        goto fail;
                }
                r = own_fd(cfd, 0600);
                if (r < 0)
                        goto fail;
        }
        return 0;

fail:
        if (ret_error) {
                free(*ret_error);
                if (asprintf(ret_error,
                             "cannot make %s private to the daemon (mode 0600 in a 0700 directory): %s",
                             path,
                             r == -EBADFD  ? "not a regular file"
                             : r == -EPERM ? "the directory is shared (sticky) or not ours"
                                           : strerror(-r)) < 0)
                        *ret_error = NULL;
        }
        return r;
}

int provdb_open(const char *path, ProvDb **ret, char **ret_error) {
        ProvDb *p;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->path = strdup(path);
        if (!p->path || asprintf(&p->wal_path, "%s-wal", path) < 0) {
                free(p->path);
                free(p);
                return -ENOMEM;
        }
        pthread_mutex_init(&p->lock, NULL);
        r = secure_files(path, ret_error);
        if (r >= 0)
                r = provdb_open_connection(path, false, &p->db, ret_error);
        if (r >= 0)
                r = exec(p->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", ret_error);
        if (r >= 0) {
                char sql[64];

                snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %u;", PROVDB_WAL_LIMIT);
                r = exec(p->db, sql, ret_error);
        }
        if (r >= 0)
                r = migrate(p->db, ret_error);
        if (r < 0) {
                provdb_close(p);
                return r;
        }
        p->max_request_id = (uint64_t)provdb_query_int(p->db, "SELECT MAX(id) FROM requests;", 0);
        *ret = p;
        return 0;
}

ProvDb *provdb_close(ProvDb *p) {
        if (!p)
                return NULL;
        sqlite3_close(p->db);
        pthread_mutex_destroy(&p->lock);
        free(p->wal_path);
        free(p->path);
        free(p);
        return NULL;
}

int provdb_bound_wal(ProvDb *p) {
        struct timespec ts;
        struct stat st;
        uint64_t now;
        int r = 0;

        /* sqlite checkpoints by itself (passively, after commits) and with
         * journal_size_limit the WAL shrinks back when it restarts. But it
         * cannot restart while a reader holds an old snapshot, and grows
         * meanwhile; once that reader is gone, a TRUNCATE checkpoint gives
         * the space back at once. */
        if (stat(p->wal_path, &st) < 0 || (uint64_t)st.st_size <= PROVDB_WAL_LIMIT)
                return 0;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        pthread_mutex_lock(&p->lock);
        /* A reader still in the way makes it wait for the busy timeout:
         * not after every batch. */
        if (p->last_truncate_usec == 0 || now - p->last_truncate_usec >= PROVDB_TRUNCATE_INTERVAL_USEC) {
                p->last_truncate_usec = now;
                if (sqlite3_wal_checkpoint_v2(p->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) ==
                    SQLITE_OK)
                        r = 1;
                else
                        r = sqlite3_errcode(p->db) == SQLITE_BUSY ? -EBUSY : -EIO;
        }
        pthread_mutex_unlock(&p->lock);
        return r;
}

const char *provdb_path(const ProvDb *p) {
        return p->path;
}

uint64_t provdb_max_request_id(ProvDb *p) {
        return p->max_request_id;
}

void provdb_bind_text(sqlite3_stmt *st, int i, const char *s) {
        if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

static int64_t interpreter_id(sqlite3 *db, const ProvJob *j) {
        sqlite3_stmt *st;
        int64_t id = 0;

        if (!j->interpreter || !j->cache_tag)
                return 0;
        if (sqlite3_prepare_v2(
                    db, "INSERT OR IGNORE INTO interpreters (path, cache_tag, magic) VALUES (?, ?, ?);", -1,
                    &st, NULL) != SQLITE_OK)
                return 0;
        provdb_bind_text(st, 1, j->interpreter);
        provdb_bind_text(st, 2, j->cache_tag);
        provdb_bind_text(st, 3, j->magic);
        (void)sqlite3_step(st);
        sqlite3_finalize(st);
        if (sqlite3_prepare_v2(db,
                               "SELECT id FROM interpreters WHERE path = ? AND cache_tag = ? AND magic = ?;",
                               -1, &st, NULL) != SQLITE_OK)
                return 0;
        provdb_bind_text(st, 1, j->interpreter);
        provdb_bind_text(st, 2, j->cache_tag);
        provdb_bind_text(st, 3, j->magic);
        if (sqlite3_step(st) == SQLITE_ROW)
                id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return id;
}

#define INSERT_REQUEST_SQL                                                                                  \
        "INSERT OR REPLACE INTO requests (id, time, uid, gid, pid, exe, cmdline, parents, tool,"            \
        " dpkg_package, package, dpkg_script, root) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);"

static int insert_request(ProvDb *p, sqlite3_stmt *rq, const ProvRequest *q) {
        sqlite3_reset(rq);
        sqlite3_bind_int64(rq, 1, (int64_t)q->id);
        sqlite3_bind_int64(rq, 2, (int64_t)q->time_usec);
        sqlite3_bind_int64(rq, 3, q->uid);
        sqlite3_bind_int64(rq, 4, q->gid);
        sqlite3_bind_int64(rq, 5, q->pid);
        provdb_bind_text(rq, 6, q->exe);
        provdb_bind_text(rq, 7, q->cmdline);
        provdb_bind_text(rq, 8, q->parents);
        provdb_bind_text(rq, 9, q->tool);
        provdb_bind_text(rq, 10, q->dpkg_package);
        provdb_bind_text(rq, 11, q->package);
        provdb_bind_text(rq, 12, q->dpkg_script);
        provdb_bind_text(rq, 13, q->root);
        if (sqlite3_step(rq) != SQLITE_DONE)
                return -EIO;
        if (q->id > p->max_request_id)
                p->max_request_id = q->id;
        return 0;
}

/* A failed file of a --no-wait request: kept for `wait --failures`. */
static int insert_failure(sqlite3_stmt *fl, const ProvJob *j) {
        sqlite3_reset(fl);
        sqlite3_bind_int64(fl, 1, (int64_t)j->request_id);
        sqlite3_bind_int64(fl, 2, (int64_t)(j->end_usec ? j->end_usec : j->start_usec));
        provdb_bind_text(fl, 3, j->target);
        provdb_bind_text(fl, 4, j->source);
        provdb_bind_text(fl, 5, j->error_type);
        sqlite3_bind_int64(fl, 6, j->error_line);
        provdb_bind_text(fl, 7, j->error_message);
        return sqlite3_step(fl) == SQLITE_DONE ? 0 : -EIO;
}

int provdb_write(ProvDb *p, const ProvRequest *requests, size_t n_requests, const ProvJob *jobs,
                 size_t n_jobs, const uint64_t *dequeued, size_t n_dequeued, char **ret_error) {
        sqlite3_stmt *rq = NULL, *jb = NULL, *fl = NULL, *dq = NULL;
        const char *last_interp = NULL, *last_tag = NULL;
        int64_t last_interp_id = 0;
        bool failures = false;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        if (exec(p->db, "BEGIN IMMEDIATE;", ret_error) < 0) {
                pthread_mutex_unlock(&p->lock);
                return -EBUSY;
        }
        if (sqlite3_prepare_v2(p->db, INSERT_REQUEST_SQL, -1, &rq, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(
                    p->db,
                    "INSERT OR REPLACE INTO failures (request_id, time, target, source, error_type,"
                    " error_line, error_message) VALUES (?, ?, ?, ?, ?, ?, ?);",
                    -1, &fl, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(p->db, "DELETE FROM queue WHERE request_id = ?;", -1, &dq, NULL) !=
                    SQLITE_OK ||
            sqlite3_prepare_v2(
                    p->db,
                    "INSERT INTO jobs (request_id, target, source, source_mtime, source_size,"
                    " source_sha256, pyc_sha256, interpreter_id, opt_level, mode, outcome, error_type,"
                    " error_line, error_message, start, end)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);",
                    -1, &jb, NULL) != SQLITE_OK) {
                r = set_error(ret_error, p->db, "database");
                goto finish;
        }
        for (size_t i = 0; i < n_requests; i++)
                if (insert_request(p, rq, &requests[i]) < 0) {
                        r = set_error(ret_error, p->db, "cannot record a request");
                        goto finish;
                }
        for (size_t i = 0; i < n_jobs; i++) {
                const ProvJob *j = &jobs[i];

                if (!last_interp || !j->interpreter || strcmp(last_interp, j->interpreter) != 0 ||
                    !j->cache_tag || strcmp(last_tag, j->cache_tag) != 0) {
                        last_interp_id = interpreter_id(p->db, j);
                        last_interp = j->interpreter;
                        last_tag = j->cache_tag;
                }
                sqlite3_reset(jb);
                sqlite3_clear_bindings(jb);
                sqlite3_bind_int64(jb, 1, (int64_t)j->request_id);
                provdb_bind_text(jb, 2, j->target);
                /* The source is stored only when the target's name does not
                 * say it (the common case costs no bytes). */
                {
                        _cleanup_free_ char *derived = NULL;
                        if (!j->source || (pycpath_source_path(j->target, &derived) == 0 &&
                                           strcmp(derived, j->source) == 0))
                                sqlite3_bind_null(jb, 3);
                        else
                                provdb_bind_text(jb, 3, j->source);
                }
                sqlite3_bind_int64(jb, 4, j->source_mtime);
                sqlite3_bind_int64(jb, 5, (int64_t)j->source_size);
                if (j->have_source_sha256)
                        sqlite3_bind_blob(jb, 6, j->source_sha256, 32, SQLITE_STATIC);
                if (j->have_pyc_sha256)
                        sqlite3_bind_blob(jb, 7, j->pyc_sha256, 32, SQLITE_STATIC);
                if (last_interp_id > 0)
                        sqlite3_bind_int64(jb, 8, last_interp_id);
                sqlite3_bind_int(jb, 9, (int)j->opt_level);
                sqlite3_bind_int(jb, 10, (int)j->mode);
                sqlite3_bind_int(jb, 11, (int)j->outcome);
                provdb_bind_text(jb, 12, j->error_type);
                if (j->error_type)
                        sqlite3_bind_int64(jb, 13, j->error_line);
                provdb_bind_text(jb, 14, j->error_message);
                sqlite3_bind_int64(jb, 15, (int64_t)j->start_usec);
                sqlite3_bind_int64(jb, 16, (int64_t)j->end_usec);
                if (sqlite3_step(jb) != SQLITE_DONE) {
                        r = set_error(ret_error, p->db, "cannot record a job");
                        goto finish;
                }
                if (j->unattended && j->outcome == OUTCOME_FAILED) {
                        if (insert_failure(fl, j) < 0) {
                                r = set_error(ret_error, p->db, "cannot record a failure");
                                goto finish;
                        }
                        failures = true;
                }
        }
        /* Finished --no-wait requests leave the queue in the transaction
         * that records their files: a crash in between replays them
         * rather than losing a failure nobody has seen. */
        for (size_t i = 0; i < n_dequeued; i++) {
                sqlite3_reset(dq);
                sqlite3_bind_int64(dq, 1, (int64_t)dequeued[i]);
                if (sqlite3_step(dq) != SQLITE_DONE) {
                        r = set_error(ret_error, p->db, "cannot remove a request from the queue");
                        goto finish;
                }
        }
        /* Bounded: past PROVDB_MAX_FAILURES the oldest go. */
        if (failures) {
                char sql[160];
                snprintf(sql, sizeof(sql),
                         "DELETE FROM failures WHERE id <= (SELECT MAX(id) FROM failures) - %u;",
                         PROVDB_MAX_FAILURES);
                r = exec(p->db, sql, ret_error);
        }
finish:
        sqlite3_finalize(rq);
        sqlite3_finalize(jb);
        sqlite3_finalize(fl);
        sqlite3_finalize(dq);
        if (r >= 0 && sqlite3_exec(p->db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK)
                r = set_error(ret_error, p->db, "cannot commit");
        if (r < 0)
                (void)sqlite3_exec(p->db, "ROLLBACK;", NULL, NULL, NULL);
        pthread_mutex_unlock(&p->lock);
        return r;
}

int provdb_retain(ProvDb *p, uint64_t min_time_usec, uint64_t max_rows, char **ret_error) {
        char sql[256];
        int r = 0;

        pthread_mutex_lock(&p->lock);
        if (min_time_usec > 0) {
                /* Rows are appended in time order, so the old ones are at
                 * the low ids: delete them in bounded chunks from there, so
                 * neither the WAL nor the time the lock is held grows with
                 * the backlog. */
                snprintf(sql, sizeof(sql),
                         "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE end < %llu ORDER BY id "
                         "LIMIT 10000);",
                         (unsigned long long)min_time_usec);
                do
                        r = exec(p->db, sql, ret_error);
                while (r >= 0 && sqlite3_changes(p->db) > 0);
                snprintf(sql, sizeof(sql), "DELETE FROM audit WHERE time < %llu;",
                         (unsigned long long)min_time_usec);
                if (r >= 0)
                        r = exec(p->db, sql, ret_error);
        }
        if (r >= 0 && max_rows > 0) {
                snprintf(sql, sizeof(sql), "DELETE FROM jobs WHERE id <= (SELECT MAX(id) FROM jobs) - %llu;",
                         (unsigned long long)max_rows);
                r = exec(p->db, sql, ret_error);
        }
        if (r >= 0)
                r = exec(p->db,
                         "DELETE FROM requests WHERE id < (SELECT COALESCE(MIN(request_id), 0) FROM jobs)"
                         " AND id NOT IN (SELECT request_id FROM queue)"
                         " AND id NOT IN (SELECT request_id FROM failures);",
                         ret_error);
        pthread_mutex_unlock(&p->lock);
        return r;
}

int provdb_count_jobs(ProvDb *p, uint64_t *ret) {
        int64_t n;

        pthread_mutex_lock(&p->lock);
        /* MAX(id) - MIN(id) is O(1) and exact while rows are only ever
         * deleted from the old end, which is what retention does. */
        n = provdb_query_int(p->db, "SELECT COALESCE(MAX(id) - MIN(id) + 1, 0) FROM jobs;", -1);
        pthread_mutex_unlock(&p->lock);
        if (n < 0)
                return -EIO;
        *ret = (uint64_t)n;
        return 0;
}

int provdb_queue_add(ProvDb *p, const ProvQueued *q, const ProvRequest *request, char **ret_error) {
        sqlite3_stmt *st = NULL, *rq = NULL;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        /* Records may lose their last batch to a power cut (they are
         * written in WAL mode with synchronous=NORMAL, no fsync per
         * commit); an acknowledged queue entry may not: this one commit
         * is synced. The request's own row goes in the same commit, so a
         * replayed request is still attributed (package, maintainer
         * script, command line) however early the daemon died. */
        (void)sqlite3_exec(p->db, "PRAGMA synchronous = FULL;", NULL, NULL, NULL);
        if (exec(p->db, "BEGIN IMMEDIATE;", ret_error) < 0) {
                r = -EBUSY;
                goto finish;
        }
        if (sqlite3_prepare_v2(
                    p->db,
                    "INSERT OR REPLACE INTO queue (request_id, uid, spec, peer_root) VALUES (?, ?, ?, ?);",
                    -1, &st, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(p->db, INSERT_REQUEST_SQL, -1, &rq, NULL) != SQLITE_OK) {
                r = set_error(ret_error, p->db, "database");
                goto rollback;
        }
        if (request && insert_request(p, rq, request) < 0) {
                r = set_error(ret_error, p->db, "cannot record the request");
                goto rollback;
        }
        sqlite3_bind_int64(st, 1, (int64_t)q->request_id);
        sqlite3_bind_int64(st, 2, q->uid);
        sqlite3_bind_blob(st, 3, q->spec, (int)q->spec_size, SQLITE_STATIC);
        provdb_bind_text(st, 4, q->peer_root);
        if (sqlite3_step(st) != SQLITE_DONE) {
                r = set_error(ret_error, p->db, "cannot queue the request");
                goto rollback;
        }
        if (sqlite3_exec(p->db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK) {
                r = set_error(ret_error, p->db, "cannot commit");
                goto rollback;
        }
        goto finish;
rollback:
        (void)sqlite3_exec(p->db, "ROLLBACK;", NULL, NULL, NULL);
finish:
        sqlite3_finalize(st);
        sqlite3_finalize(rq);
        (void)sqlite3_exec(p->db, "PRAGMA synchronous = NORMAL;", NULL, NULL, NULL);
        pthread_mutex_unlock(&p->lock);
        return r;
}

/* The failures of requests that worked in @root (NULL: the daemon's own),
 * a failure whose request row is gone counting as the daemon's. */
#define FAILURES_OF_ROOT "(SELECT rr.root FROM requests rr WHERE rr.id = f.request_id) IS ?"

int provdb_failures_read(ProvDb *p, uint64_t limit, const char *root, ProvFailure **ret, size_t *ret_n) {
        ProvFailure *v = NULL;
        size_t n = 0, allocated = 0;
        sqlite3_stmt *st;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        if (sqlite3_prepare_v2(
                    p->db,
                    "SELECT f.id, f.request_id, f.time, f.target, f.source, f.error_type, f.error_line,"
                    " f.error_message, r.package, r.dpkg_package, r.dpkg_script, r.tool"
                    " FROM failures f LEFT JOIN requests r ON r.id = f.request_id"
                    " WHERE " FAILURES_OF_ROOT " ORDER BY f.id LIMIT ?;",
                    -1, &st, NULL) != SQLITE_OK) {
                pthread_mutex_unlock(&p->lock);
                return -EIO;
        }
        provdb_bind_text(st, 1, root);
        sqlite3_bind_int64(st, 2, limit > 0 && limit < INT64_MAX ? (int64_t)limit : -1);
        for (;;) {
                int s = sqlite3_step(st);
                ProvFailure *f;

                if (s == SQLITE_DONE)
                        break;
                if (s != SQLITE_ROW) {
                        r = -EIO;
                        break;
                }
                if (n == allocated) {
                        size_t a = MAX(allocated * 2, (size_t)16);
                        ProvFailure *nv = realloc(v, a * sizeof(*nv));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                        allocated = a;
                }
                f = &v[n++];
                *f = (ProvFailure){
                        .id = (uint64_t)sqlite3_column_int64(st, 0),
                        .request_id = (uint64_t)sqlite3_column_int64(st, 1),
                        .time_usec = (uint64_t)sqlite3_column_int64(st, 2),
                        .error_line = (uint32_t)sqlite3_column_int64(st, 6),
                };
#define COLUMN_STRDUP(i, field)                                                                             \
        if (sqlite3_column_text(st, i) && !(f->field = strdup((const char *)sqlite3_column_text(st, i))))   \
                r = -ENOMEM;
                COLUMN_STRDUP(3, target);
                COLUMN_STRDUP(4, source);
                COLUMN_STRDUP(5, error_type);
                COLUMN_STRDUP(7, error_message);
                COLUMN_STRDUP(8, package);
                COLUMN_STRDUP(9, dpkg_package);
                COLUMN_STRDUP(10, dpkg_script);
                COLUMN_STRDUP(11, tool);
#undef COLUMN_STRDUP
                if (r < 0)
                        break;
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&p->lock);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        prov_failure_done(&v[i]);
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int provdb_failures_clear(ProvDb *p, uint64_t max_id, const char *root, char **ret_error) {
        sqlite3_stmt *st;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        if (sqlite3_prepare_v2(p->db, "DELETE FROM failures AS f WHERE f.id <= ? AND " FAILURES_OF_ROOT ";", -1,
                               &st, NULL) != SQLITE_OK) {
                r = set_error(ret_error, p->db, "database");
                pthread_mutex_unlock(&p->lock);
                return r;
        }
        sqlite3_bind_int64(st, 1, (int64_t)MIN(max_id, (uint64_t)INT64_MAX));
        provdb_bind_text(st, 2, root);
        if (sqlite3_step(st) != SQLITE_DONE)
                r = set_error(ret_error, p->db, "cannot clear the failures");
        sqlite3_finalize(st);
        pthread_mutex_unlock(&p->lock);
        return r;
}

int provdb_queue_load(ProvDb *p, int (*fn)(const ProvQueued *q, void *userdata), void *userdata) {
        sqlite3_stmt *st;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        if (sqlite3_prepare_v2(p->db,
                               "SELECT request_id, uid, spec, peer_root FROM queue ORDER BY request_id;", -1,
                               &st, NULL) != SQLITE_OK) {
                pthread_mutex_unlock(&p->lock);
                return -EIO;
        }
        while (r >= 0 && sqlite3_step(st) == SQLITE_ROW) {
                ProvQueued q = {
                        .request_id = (uint64_t)sqlite3_column_int64(st, 0),
                        .uid = (uid_t)sqlite3_column_int64(st, 1),
                        .spec = sqlite3_column_blob(st, 2),
                        .spec_size = (size_t)sqlite3_column_bytes(st, 2),
                        .peer_root = (const char *)sqlite3_column_text(st, 3),
                };
                r = fn(&q, userdata);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&p->lock);
        return r;
}

int provdb_audit_add(ProvDb *p, uint64_t time_usec, const char *path, pid_t pid, const char *exe,
                     const char *cmdline, const char *parents, char **ret_error) {
        sqlite3_stmt *st;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        if (sqlite3_prepare_v2(
                    p->db,
                    "INSERT INTO audit (time, path, pid, exe, cmdline, parents) VALUES (?, ?, ?, ?, ?, ?);",
                    -1, &st, NULL) != SQLITE_OK) {
                r = set_error(ret_error, p->db, "database");
                goto finish;
        }
        sqlite3_bind_int64(st, 1, (int64_t)time_usec);
        provdb_bind_text(st, 2, path);
        sqlite3_bind_int64(st, 3, pid);
        provdb_bind_text(st, 4, exe);
        provdb_bind_text(st, 5, cmdline);
        provdb_bind_text(st, 6, parents);
        if (sqlite3_step(st) != SQLITE_DONE)
                r = set_error(ret_error, p->db, "cannot record an audit event");
        sqlite3_finalize(st);
finish:
        pthread_mutex_unlock(&p->lock);
        return r;
}

void prov_job_done(ProvJob *j) {
        free(j->target);
        free(j->source);
        free(j->interpreter);
        free(j->cache_tag);
        free(j->error_type);
        free(j->error_message);
        *j = (ProvJob){};
}

void prov_failure_done(ProvFailure *f) {
        free(f->target);
        free(f->source);
        free(f->error_type);
        free(f->error_message);
        free(f->package);
        free(f->dpkg_package);
        free(f->dpkg_script);
        free(f->tool);
        *f = (ProvFailure){};
}

void prov_request_done(ProvRequest *r) {
        free(r->dpkg_script);
        free(r->root);
        free(r->exe);
        free(r->cmdline);
        free(r->parents);
        free(r->tool);
        free(r->dpkg_package);
        free(r->package);
        *r = (ProvRequest){};
}
