/* SPDX-License-Identifier: MIT */
/* The read-only admin verbs: why, history and audit.
 *
 * They run on an I/O thread (see admin.c) and only read: the provenance
 * database through provdb_query() (why, history) or the recorder's audit
 * table (audit), and for why the .pyc on disk, whose sha256 is compared with
 * the newest write recorded for it. A .py names its cache file for every
 * interpreter ever recorded and every optimization level. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin-private.h"
#include "rootpath.h"
#include "macro.h"
#include "provdb.h"
#include "pycpath.h"

/* Targets a .py or .pyc names: a .pyc itself; for a .py its cache file for
 * every interpreter ever recorded and every optimization level. */
static int targets_of(Admin *a, const char *path, StrList *out) {
        _cleanup_free_ char *p = NULL;
        size_t n = strlen(path);
        int r;

        r = admin_enter_caller(a);
        if (r < 0)
                return r;
        r = admin_canonical(a, path, &p);
        admin_leave_caller(a);
        if (r < 0)
                return r;
        if (n > 4 && strcmp(path + n - 4, ".pyc") == 0)
                return admin_strlist_add(out, p);
        if (!pycpath_is_source_name(p))
                return -EINVAL;
        (void)provdb_interpreters(a->db_path, admin_add_known, a);
        for (size_t i = 0; i < a->n_known; i++)
                for (unsigned opt = 0; opt <= 2; opt++) {
                        _cleanup_free_ char *t = NULL;
                        if (pycpath_cache_path(p, a->known[i].cache_tag, opt, &t) < 0)
                                return -ENOMEM;
                        r = admin_strlist_add(out, t);
                        if (r < 0)
                                return r;
                }
        strlist_sort_unique(out);
        return 0;
}

typedef struct WhyState {
        Admin *a;
        StrList seen;        /* targets whose newest write was compared */
        const char *first_target;
        char on_disk[32];
        char on_disk_sha[65];
        int error;
} WhyState;

static int why_row(const ProvRow *row, void *userdata) {
        WhyState *ws = userdata;
        MsgWriter w;
        bool newest = true, matches = false;

        if (!admin_caller_may_see(ws->a, row->job->target) ||
            (row->job->source && !admin_caller_may_see(ws->a, row->job->source)))
                return 0;
        for (size_t i = 0; i < ws->seen.n; i++)
                if (strcmp(ws->seen.v[i], row->job->target) == 0)
                        newest = false;
        if (newest) {
                uint8_t sha[32];
                bool exists = false;
                char hexs[65];
                int r;

                (void)admin_strlist_add(&ws->seen, row->job->target);
                r = admin_enter_caller(ws->a);
                if (r < 0)
                        return r;
                r = admin_file_sha256(row->job->target, admin_max_pyc(ws->a), sha, &exists);
                admin_leave_caller(ws->a);
                if (r == 0)
                        matches = row->job->have_pyc_sha256 && memcmp(sha, row->job->pyc_sha256, 32) == 0;
                if (ws->seen.n == 1) {
                        snprintf(ws->on_disk, sizeof(ws->on_disk), "%s",
                                 !exists   ? "missing"
                                 : matches ? "matches"
                                           : "differs");
                        if (exists) {
                                admin_hex(sha, 32, hexs);
                                snprintf(ws->on_disk_sha, sizeof(ws->on_disk_sha), "%s", hexs);
                        }
                }
        }
        if (admin_rec_begin(&w) < 0)
                return -ENOMEM;
        admin_rec_row(ws->a, &w, row);
        admin_rec_bool(&w, "matches_disk", matches);
        return admin_rec_end(ws->a, &w);
}

void admin_why_run(Admin *a) {
        WhyState ws = { .a = a };
        StrList targets = {};
        ProvQuery q = { .writes_only = true, .limit = a->limit ? a->limit : 100 };
        int r;

        snprintf(ws.on_disk, sizeof(ws.on_disk), "never-written");
        r = targets_of(a, a->paths[0], &targets);
        if (r < 0) {
                a->error = r;
                if (r == -EINVAL &&
                    asprintf(&a->error_message, "%s: not a .py or .pyc file", a->paths[0]) < 0)
                        a->error_message = NULL;
                return;
        }
        if (targets.n == 0) {
                msg_put_stat(&a->done, "target", 's', rootpath_inside(a->root, a->paths[0]));
                msg_put_stat(&a->done, "on_disk", 's', "never-written");
                return;
        }
        q.targets = (const char *const *)targets.v;
        q.n_targets = targets.n;
        r = provdb_query(a->db_path, &q, why_row, &ws);
        if (r < 0 && r != -ENOENT)
                a->error = r;
        if (ws.seen.n > 0)
                msg_put_stat(&a->done, "target", 's', rootpath_inside(a->root, ws.seen.v[0]));
        else {
                /* Never written: name the plain (unoptimized) target. */
                const char *t = targets.v[0];
                for (size_t i = 0; i < targets.n; i++)
                        if (!strstr(targets.v[i], ".opt-")) {
                                t = targets.v[i];
                                break;
                        }
                msg_put_stat(&a->done, "target", 's', rootpath_inside(a->root, t));
        }
        msg_put_stat(&a->done, "on_disk", 's', ws.on_disk);
        if (ws.on_disk_sha[0])
                msg_put_stat(&a->done, "on_disk_sha256", 's', ws.on_disk_sha);
        strlist_done(&ws.seen);
        strlist_done(&targets);
}

static int history_row(const ProvRow *row, void *userdata) {
        Admin *a = userdata;
        MsgWriter w;

        if (!admin_caller_may_see(a, row->job->target) ||
            (row->job->source && !admin_caller_may_see(a, row->job->source)))
                return 0;
        if (admin_rec_begin(&w) < 0)
                return -ENOMEM;
        admin_rec_row(a, &w, row);
        return admin_rec_end(a, &w);
}

void admin_history_run(Admin *a) {
        StrList targets = {};
        _cleanup_free_ char *prefix = NULL;
        ProvQuery q = {
                .package = a->package,
                .since_usec = a->since_usec,
                .failed_only = a->failed_only,
                .limit = a->limit ? a->limit : ADMIN_DEFAULT_LIMIT,
        };
        int r = 0;

        if (a->n_paths > 0) {
                struct stat st;
                bool dir;

                r = admin_enter_caller(a);
                if (r < 0) {
                        a->error = r;
                        return;
                }
                dir = stat(a->paths[0], &st) == 0 && S_ISDIR(st.st_mode);
                if (dir)
                        r = admin_canonical(a, a->paths[0], &prefix);
                admin_leave_caller(a);
                if (!dir)
                        r = targets_of(a, a->paths[0], &targets);
                if (r < 0) {
                        a->error = r;
                        if (asprintf(&a->error_message, "%s: %s", a->paths[0],
                                     r == -EINVAL ? "not a .py or .pyc file or a directory" : strerror(-r)) <
                            0)
                                a->error_message = NULL;
                        return;
                }
                if (!prefix && targets.n == 0)
                        return;
                q.targets = (const char *const *)targets.v;
                q.n_targets = targets.n;
                q.prefix = prefix;
        }
        r = provdb_query(a->db_path, &q, history_row, a);
        if (r < 0 && r != -ENOENT)
                a->error = r;
        strlist_done(&targets);
}

static int audit_row(uint64_t time_usec, const char *path, pid_t pid, const char *exe, const char *cmdline,
                     const char *parents, void *userdata) {
        Admin *a = userdata;
        MsgWriter w;

        /* The writer's command line is not the caller's to read. */
        if (!admin_caller_may_see(a, path))
                return 0;
        if (admin_rec_begin(&w) < 0)
                return -ENOMEM;
        admin_rec_time(&w, "time", time_usec);
        admin_rec_path(a, &w, "path", path);
        admin_rec_u64(&w, "pid", (uint64_t)pid);
        if (a->privileged) {
                admin_rec_str(&w, "exe", exe);
                admin_rec_str(&w, "cmdline", cmdline);
                admin_rec_parents(&w, parents);
        } else
                admin_rec_bool(&w, "redacted", true);
        return admin_rec_end(a, &w);
}

void admin_audit_run(Admin *a) {
        int r;

        if (!a->db) {
                a->error = -EIO;
                if (asprintf(&a->error_message, "the provenance database is not available") < 0)
                        a->error_message = NULL;
                return;
        }
        r = provdb_audit_query(a->db, a->since_usec, a->limit ? a->limit : ADMIN_DEFAULT_LIMIT, audit_row,
                               a);
        if (r < 0)
                a->error = r;
}
