/* SPDX-License-Identifier: MIT */
#pragma once

/* What the administration verbs share (see admin.c): their table entry
 * (AdminVerb), their parsed arguments (AdminArgs, admin-args.c), the state
 * of one reply being printed (AdminRun), the printing helpers and each
 * verb's printers (why.c, admin-lines.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "record.h"

#define ADMIN_MAX_RECORDS 10000000u /* in one reply; also the largest --limit */
#define ADMIN_MAX_PYTHONS 32u
#define ADMIN_DEFAULT_LIMIT 1000u /* history and audit */

/* What the verbs' options are; each verb accepts a subset. */
enum {
        ARG_PACKAGE = 1u << 0,
        ARG_SINCE = 1u << 1,
        ARG_FAILED = 1u << 2,
        ARG_LIMIT = 1u << 3,
        ARG_PYTHON = 1u << 4,
        ARG_ROOT = 1u << 5,
};

enum {
        OPT_PACKAGE = OPT_VERB_BASE,
        OPT_SINCE,
        OPT_FAILED,
        OPT_LIMIT,
        OPT_PYTHON,
        OPT_ROOT,
};

typedef struct AdminArgs {
        char **paths; /* absolute */
        size_t n_paths;
        const char *package;
        char *pythons[ADMIN_MAX_PYTHONS]; /* absolute, unique */
        size_t n_pythons;
        uint64_t limit; /* 0: not given */
        uint64_t since;
        bool have_since;
        bool failed_only;
        char *root;                                  /* --root, absolute */
        const char *python_names[ADMIN_MAX_PYTHONS]; /* as given, resolved once --root is known */
        size_t n_python_names;
} AdminArgs;

typedef struct KeptFrame {
        uint8_t *data;
        size_t size;
} KeptFrame;

typedef struct AdminVerb AdminVerb;

/* The state of one reply being printed. */
typedef struct AdminRun {
        const ClientOptions *o;
        const AdminVerb *verb;
        const AdminArgs *args;
        Record record;
        Record summary;
        uint64_t n_records;
        uint64_t n_failed; /* records whose "result" is "failed" (repair) */
        bool json_open;
        bool header_printed;
        KeptFrame *kept; /* why */
        size_t n_kept;
        size_t allocated_kept;
        size_t kept_bytes;
        uint64_t not_kept;
} AdminRun;

struct AdminVerb {
        const char *name;
        MessageType type;
        unsigned args;           /* ARG_* */
        size_t min_paths;        /* operands */
        size_t max_paths;        /* SIZE_MAX: any number */
        bool paths_or_package;   /* min_paths may be met by --package instead */
        uint64_t default_limit;  /* sent when --limit is not given; 0: none */
        const char *usage;       /* after "pycqueue [OPTION]... " */
        const char *description; /* --help, before the options */
        const char *exit_status; /* --help, after them */
        /* Prints one record for humans; @m is its frame. Negative errno on failure. */
        int (*record)(AdminRun *run, const Record *r, const MsgReader *m);
        /* Writes one record as a JSON value; NULL: every field, nested. */
        int (*json)(AdminRun *run, const Record *r);
        /* Prints the end from the summary; returns the exit code, or a negative errno. */
        int (*done)(AdminRun *run, const Record *summary);
};

/* admin-args.c */
void admin_args_done(AdminArgs *a);
/* Parses the verb's options and operands into @a. Returns 1 to go on, 0
 * after --help, or -EXIT_* after reporting. */
int admin_parse_args(ClientOptions *o, const AdminVerb *v, AdminArgs *a, int argc, char **argv);
int admin_build_request(const ClientOptions *o, const AdminVerb *v, const AdminArgs *a, MsgWriter *w);

/* admin-lines.c: printing helpers */
void admin_write_field_padded(const Record *r, const char *key, size_t width);
void admin_write_field_right(const Record *r, const char *key, size_t width);
bool admin_has_field(const Record *r, const char *key);
void admin_write_label(const char *label);
/* "py3compile (postinst of python3-foo)": the tool and its maintainer script. */
void admin_write_tool(const Record *r);

/* admin-lines.c: the verbs that print a line per record */
int history_record(AdminRun *run, const Record *r, const MsgReader *m);
int audit_record(AdminRun *run, const Record *r, const MsgReader *m);
int log_done(AdminRun *run, const Record *summary);
int verify_record(AdminRun *run, const Record *r, const MsgReader *m);
int verify_json(AdminRun *run, const Record *r);
int verify_done(AdminRun *run, const Record *summary);
int repair_record(AdminRun *run, const Record *r, const MsgReader *m);
int repair_done(AdminRun *run, const Record *summary);
int clean_record(AdminRun *run, const Record *r, const MsgReader *m);
int clean_done(AdminRun *run, const Record *summary);

/* why.c */
int why_keep(AdminRun *run, const Record *r, const MsgReader *m);
int why_done(AdminRun *run, const Record *summary);
