/* SPDX-License-Identifier: MIT */
#pragma once

/* What the admin files share: the Admin request object, the per-file items
 * verify and repair produce, and the thread-side helpers every verb uses
 * (reply records, .pyc/source paths and walks, known interpreters). Not for
 * use outside daemon/admin*.c; the public interface is admin.h. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "iopool.h"
#include "protocol.h"
#include "admin-stream.h"
#include "fsid.h"
#include "provdb.h"
#include "queue.h"
#include "strlist.h"

#define ADMIN_DEFAULT_LIMIT 1000
#define ADMIN_MAX_PYC (256u << 20)
/* What a caller who may not change files makes the daemon read of one .pyc
 * (hash, marshal check): far beyond any real one, and a bound on what a
 * planted file costs the daemon. */
#define ADMIN_MAX_PYC_LOCAL (16u << 20)
#define ADMIN_MAX_FILES 2000000

typedef struct Known {
        char *interpreter;
        char *cache_tag;
        uint8_t magic[4];
        bool runnable;        /* a pool of this daemon runs it: the checker may */
} Known;

typedef struct Item {
        char *pyc;            /* the .pyc path */
        char *source;
        const char *problem;  /* static string */
        char *detail;
        char *interpreter;    /* to recompile with, if known */
        unsigned opt_level;
        InvalidationMode mode;
        const char *action;   /* repair: what was done */
        bool ok;
        char *result_detail;
} Item;

struct Admin {
        Manager *manager;
        Connection *connection;
        const AdminHooks *hooks; /* no connection: the reply goes here (until on_done) */
        void *hooks_data;
        gid_t gid;               /* a hooked caller's, for provenance */
        pid_t pid;
        Verb verb;
        uint16_t type;        /* its message type */
        uid_t uid;            /* the caller's */
        bool privileged;      /* the caller may change files */
        char *root;      /* paths are inside this root (rootpath.h); NULL: ours */
        bool as_caller;       /* file access with the caller's identity (below) */
        FsId fsid;
        bool resolve_gid;     /* fsid's gid and groups are still to be looked up */
        bool resolve_groups;
        uint64_t reply_rows_max;
        Admin *next, *prev;

        char **paths;
        size_t n_paths;
        char *package;
        uint64_t since_usec, limit;
        bool failed_only;
        Pool **pools;         /* clean --python (loop side only) */
        bool optional_pools;  /* the defaults: one that fails is not an error */
        char **clean_tags;    /* their cache tags, copied for the thread */
        size_t n_clean_tags;
        size_t n_pools;
        Known *known;         /* interpreters we can name by magic or tag */
        size_t n_known;
        char *db_path;
        ProvDb *db;           /* the recorder's, for audit look-ups; may be NULL */

        AdminStream stream;   /* records on their way to the client */
        uint64_t n_records;
        bool truncated;       /* max_reply_rows reached */
        bool entered;         /* the thread has the caller's identity now */
        bool pumping;         /* admin_pump() runs (loop side) */
        MsgWriter done;
        int error;
        char *error_message;

        Item *items;
        size_t n_items, allocated_items;
        size_t outstanding;
        ProvJob *removed;
        size_t n_removed, allocated_removed;
        uint64_t checked;

        /* clean: py3clean's rule for named sources (TAG_CLEAN_SOURCES),
         * and the clean's place in the order of compiles (queue.c) */
        bool clean_sources;
        char **source_tags;   /* only these cache tags; "" = legacy .pyc/.pyo */
        size_t n_source_tags;
        uint64_t n_failed;
        char *tool;           /* the client's context, for provenance */
        char *dpkg_package;
        QueueBarrier *barrier;
        StrList cover;        /* what it covers, canonical (thread side, then the loop's) */
        IoWork cover_io;
        bool order_waiting;   /* waits for compiles that came before it */

        IoWork io;
        bool started;
        bool have_db;         /* recording is on and the database exists */
        uint64_t request_id;  /* provenance id of a mutating request */
};

/* ---- reply records (admin-util.c) -------------------------------------- */

int admin_rec_begin(MsgWriter *w);
void admin_rec_str(MsgWriter *w, const char *key, const char *value);
/* A path, as the caller sees it: inside its root. */
void admin_rec_path(Admin *a, MsgWriter *w, const char *key, const char *path);
void admin_rec_u64(MsgWriter *w, const char *key, uint64_t v);
void admin_rec_bool(MsgWriter *w, const char *key, bool v);
void admin_rec_time(MsgWriter *w, const char *key, uint64_t usec);
/* Finishes @w and streams it as one MSG_RECORD frame of @a's reply;
 * -ENOSPC once max_reply_rows are sent (the verb stops there, and the
 * reply says it was truncated), or the stream's error. */
int admin_rec_end(Admin *a, MsgWriter *w);
/* @parents: "pid\texe\tcmdline" lines, as the provenance database keeps them. */
void admin_rec_parents(MsgWriter *w, const char *parents);
/* One provenance row as a record (why, history). */
void admin_rec_row(Admin *a, MsgWriter *w, const ProvRow *row);

/* ---- the caller's identity (admin-util.c) -------------------------------- */

/* For a read-only request of a caller who may not change files, the I/O
 * thread takes the caller's filesystem identity around every walk, stat
 * and read of the caller's paths, and returns to ours for the database.
 * No-ops for everyone else. */
int admin_enter_caller(Admin *a);
/* True once an unprivileged caller's request has used up request_time_limit:
 * long loops check it and stop. */
bool admin_past_deadline(Admin *a);
void admin_leave_caller(Admin *a);
/* True when the caller could look @path up itself (always, for the
 * privileged): records of other paths are not shown. */
bool admin_caller_may_see(Admin *a, const char *path);
/* @out gets 2 * @n hex digits and a NUL. */
void admin_hex(const uint8_t *b, size_t n, char *out);
/* ISO 8601 UTC. */
void admin_fmt_time(uint64_t usec, char *buf, size_t size);

/* ---- files and paths (admin-util.c) ------------------------------------ */

/* -EFBIG for a file over @max bytes, which is not read. */
int admin_file_sha256(const char *path, uint64_t max, uint8_t out[32], bool *ret_exists);
/* The most of one .pyc the daemon reads for @a's caller. */
static inline uint64_t admin_max_pyc(const Admin *a) {
        return a->privileged ? ADMIN_MAX_PYC : ADMIN_MAX_PYC_LOCAL;
}
/* "DIR/__pycache__/STEM.TAG[.opt-N].pyc" → source "DIR/STEM.py", tag, opt.
 * @ret_tag may be NULL. */
int admin_pyc_source(const char *pyc, char **ret_source, char **ret_tag, unsigned *ret_opt);
/* Canonical form of a request path: directories fully, files by their
 * directory. */
int admin_canonical(Admin *a, const char *path, char **ret);
/* Every .pyc inside __pycache__ directories under @dir; -ETIMEDOUT once
 * @a's deadline (an unprivileged caller's request_time_limit) has passed. */
int admin_collect_pycs(Admin *a, const char *dir, StrList *out, unsigned depth);
/* The .pyc files of source @py: its __pycache__/STEM.*.pyc. */
int admin_collect_pycs_of_source(const char *py, StrList *out);

/* At most ADMIN_MAX_FILES entries; -E2BIG past that. */
int admin_strlist_add(StrList *l, const char *s);
/* admin_strlist_add() as a provdb_targets() callback; @userdata is the StrList. */
int admin_strlist_add_cb(const char *s, void *userdata);

/* ---- interpreters and items (admin-util.c) ----------------------------- */

const Known *admin_known_by_magic(Admin *a, const uint8_t magic[4]);
const Known *admin_known_by_tag(Admin *a, const char *tag);
/* A provdb_interpreters() callback; @userdata is the Admin. @magic is hex. */
int admin_add_known(const char *interpreter, const char *cache_tag, const char *magic, void *userdata);
/* Appends an Item; @problem is a static string. */
int admin_add_item(Admin *a, const char *pyc, const char *source, const char *problem, const char *detail);

/* ---- removing .pyc files (admin-clean.c) -------------------------------- */

/* Records a removal for provenance (thread side; sent to the recorder on
 * the loop). */
/* The .pyc files a verify, repair or clean request selects: under its
 * paths and of its package; @missing_fn, if set, is also given the targets
 * recorded under each directory (see collect_missing()). */
int admin_collect_selected(Admin *a, StrList *files, int (*missing_fn)(const char *target, void *userdata));
void admin_note_removed(Admin *a, const char *pyc, const char *source, InvalidationMode mode);
/* The invalidation mode a .pyc's header says, timestamp when unreadable. */
InvalidationMode admin_pyc_mode(const char *pyc);
/* Removes @pyc holding @source's lock (if @source is not NULL and exists). */
int admin_remove_pyc(const char *pyc, const char *source);

/* ---- the verbs (thread side) -------------------------------------------- */

/* Each runs on an I/O thread and leaves its result in @a: frames, fields of
 * the closing MSG_DONE, or error and error_message. */
void admin_why_run(Admin *a);     /* admin-query.c */
void admin_history_run(Admin *a); /* admin-query.c */
void admin_audit_run(Admin *a);   /* admin-query.c */
void admin_verify_run(Admin *a);  /* admin-verify.c */
void admin_repair_run(Admin *a);  /* admin-verify.c: orphans only; the loop recompiles */
/* verify's or repair's items as records, and their totals in MSG_DONE. */
void admin_items_to_records(Admin *a, bool repair); /* admin-verify.c */
void admin_clean_run(Admin *a);   /* admin-clean.c */
/* The canonical paths a clean covers, into a->cover (thread side). */
void admin_clean_cover_run(Admin *a); /* admin-clean.c */
