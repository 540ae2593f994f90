/* SPDX-License-Identifier: MIT */
/* The administration verbs: why, history, verify, repair, clean, audit.
 *
 * Each is one request answered by a stream of MSG_RECORDs and a final
 * MSG_DONE (or MSG_ERROR), the DONE carrying a summary as TAG_STAT fields.
 * So they share everything but the printing: one option parser that offers
 * each verb only its own options, one request builder, and one reply loop
 * that hands each record to the verb's printer (or, with --json, writes it
 * as one element of a JSON array) and the summary to the verb's end
 * function, which returns the exit code.
 *
 * Records are printed as they arrive, so a history of millions of rows needs
 * no more memory than one row — except for why, whose first line explains
 * the summary that only comes last: its records are kept (bounded) until
 * DONE. The number of records of one reply is bounded too.
 *
 * Like compile, these verbs start the daemon when nothing listens: it holds
 * the database that answers them. Paths are made absolute with the current
 * directory, never resolved (the daemon canonicalizes).
 *
 * Files: admin-args.c parses the arguments and builds the request;
 * why.c and admin-lines.c hold the verbs' printers; this file holds the
 * verb table and the reply loop. */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-verb.h"
#include "json.h"
#include "output.h"
#include "util.h"

static void admin_run_done(AdminRun *run) {
        record_done(&run->record);
        record_done(&run->summary);
        for (size_t i = 0; i < run->n_kept; i++)
                free(run->kept[i].data);
        free(run->kept);
}

static int print_json_record(AdminRun *run, const Record *r) {
        fputs(run->json_open ? ",\n" : "[\n", stdout);
        run->json_open = true;
        return run->verb->json ? run->verb->json(run, r) : record_write_json(r, stdout);
}

/* Ends the JSON array at MSG_DONE: "[]" when there was no record. */
static void json_finish(AdminRun *run) {
        if (!run->o->json)
                return;
        fputs(run->json_open ? "\n]\n" : "[]\n", stdout);
        run->json_open = false;
}

/* Ends an array already begun when the reply fails midway, so that standard
 * output stays valid JSON; the exit code tells that it is incomplete. */
static void json_abort(AdminRun *run) {
        if (run->json_open)
                fputs("\n]\n", stdout);
        run->json_open = false;
}

/* --- the verbs ---------------------------------------------------------------- */

static const AdminVerb verb_table[] = {
        {
                .name = "why",
                .type = MSG_WHY,
                .args = ARG_LIMIT | ARG_ROOT,
                .min_paths = 1,
                .max_paths = 1,
                .usage = "why [--limit=N] [--root=DIR] PATH",
                .description =
                        "Show who wrote a .pyc file, and when: every write recorded by pycqueued, newest\n"
                        "first, with the process, its command line and parent chain, the package, the\n"
                        "interpreter and the sha256 of source and .pyc; and whether the file on disk\n"
                        "still is what pycqueued last wrote. PATH is a .pyc, or a source .py.\n",
                .exit_status = "Exit status: 0 records found, 1 never written by pycqueued, 2 usage error,\n"
                               "3 daemon unreachable, 5 other error.\n",
                .record = why_keep,
                .done = why_done,
        },
        {
                .name = "history",
                .type = MSG_HISTORY,
                .args = ARG_PACKAGE | ARG_SINCE | ARG_FAILED | ARG_LIMIT,
                .max_paths = 1,
                .default_limit = ADMIN_DEFAULT_LIMIT,
                .usage = "history [OPTION]... [PATH]",
                .description =
                        "Show the log of compile jobs, newest first, as a table (TIME, OUTCOME, PACKAGE,\n"
                        "PID, EXE, TARGET, and the error type of failures); with PATH, only the jobs\n"
                        "of that file (a .py or .pyc) or of the files under that directory.\n",
                .exit_status = "Exit status: 0 ok, 2 usage error, 3 daemon unreachable, 5 other error.\n",
                .record = history_record,
                .done = log_done,
        },
        {
                .name = "verify",
                .type = MSG_VERIFY,
                .args = ARG_PACKAGE | ARG_ROOT,
                .max_paths = SIZE_MAX,
                .usage = "verify [--package=NAME] [--root=DIR] [PATH]...",
                .description =
                        "Check the .pyc files and sources under PATH (files or directories), or those\n"
                        "of package NAME, and print one \"PATH: PROBLEM: DETAIL\" line per problem:\n"
                        "  corrupt  bad magic or header, truncated, or marshal data that does not load\n"
                        "  stale    the source changed since the .pyc was written\n"
                        "  foreign  not what pycqueued last wrote, or never written by it\n"
                        "  orphan   a .pyc without its source\n"
                        "  missing  a .pyc that pycqueued wrote is gone\n"
                        "then \"N checked, N problems\" (not with -q). With --json: an array of\n"
                        "{\"path\", \"problem\", \"detail\"} objects.\n",
                .exit_status = "Exit status: 0 no problem, 1 some problem, 2 usage error, 3 daemon\n"
                               "unreachable, 5 other error.\n",
                .record = verify_record,
                .json = verify_json,
                .done = verify_done,
        },
        {
                .name = "repair",
                .type = MSG_REPAIR,
                .args = ARG_PACKAGE | ARG_ROOT,
                .max_paths = SIZE_MAX,
                .usage = "repair [--package=NAME] [--root=DIR] [PATH]...",
                .description =
                        "Repair what verify finds under PATH, or for package NAME: recompile corrupt,\n"
                        "stale, foreign and missing .pyc files, remove orphans. One line per file,\n"
                        "\"PATH: PROBLEM: ACTION (RESULT)\", then \"N repaired, N failed\" (not with -q).\n"
                        "Reserved to root when the daemon runs as root.\n",
                .exit_status = "Exit status: 0 all repaired, 1 some repair failed, 2 usage error, 3 daemon\n"
                               "unreachable, 4 permission denied, 5 other error.\n",
                .record = repair_record,
                .done = repair_done,
        },
        {
                .name = "clean",
                .type = MSG_CLEAN,
                .args = ARG_PACKAGE | ARG_PYTHON | ARG_ROOT,
                .min_paths = 1,
                .max_paths = SIZE_MAX,
                .paths_or_package = true,
                .usage = "clean [--package=NAME] [--python=INTERP]... [--root=DIR] PATH...",
                .description =
                        "Remove the .pyc files of the sources under PATH (files or directories), or of\n"
                        "package NAME, as py3clean does, through the daemon so that removals are\n"
                        "serialized with compiles and recorded. Prints \"N removed\" (not with -q);\n"
                        "with -v also \"removed PATH\" per file. Reserved to root when the daemon\n"
                        "runs as root.\n",
                .exit_status = "Exit status: 0 ok, 2 usage error, 3 daemon unreachable, 4 permission\n"
                               "denied, 5 other error.\n",
                .record = clean_record,
                .done = clean_done,
        },
        {
                .name = "audit",
                .type = MSG_AUDIT,
                .args = ARG_SINCE | ARG_LIMIT,
                .default_limit = ADMIN_DEFAULT_LIMIT,
                .usage = "audit [--since=TIME] [--limit=N]",
                .description = "List the .pyc files that processes other than pycqueued created or wrote\n"
                               "under the daemon's audited roots (pycqueued --audit), newest first: time,\n"
                               "pid, executable and path, then the process's parent chain.\n",
                .exit_status = "Exit status: 0 ok, 2 usage error, 3 daemon unreachable, 5 other error\n"
                               "(also when the daemon does not audit).\n",
                .record = audit_record,
                .done = log_done,
        },
};

/* --- the reply loop --------------------------------------------------------- */

/* Reports a failure while handling a reply; returns the exit code. */
static int admin_failure(AdminRun *run, int r) {
        json_abort(run);
        if (r == -ENOMEM) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        if (r == -E2BIG)
                r = -EMSGSIZE;
        return client_io_error(r == -ENOENT || r == -EINVAL ? -EBADMSG : r);
}

static int on_record(AdminRun *run, MsgReader *m) {
        MsgReader frame = *m; /* record_parse() consumes @m */
        int r;

        r = record_parse(&run->record, m);
        if (r < 0)
                return r;
        run->n_records++;
        /* repair's exit code, with or without --json */
        if (record_equals(&run->record, "result", "failed"))
                run->n_failed++;
        if (run->o->json)
                return print_json_record(run, &run->record);
        return run->verb->record(run, &run->record, &frame);
}

static int read_replies(AdminRun *run, Connection *c) {
        for (;;) {
                MsgReader m;
                int r;

                r = connection_receive(c, &m);
                if (r < 0)
                        return admin_failure(run, r);

                switch (m.type) {
                case MSG_RECORD:
                        if (run->n_records >= ADMIN_MAX_RECORDS) {
                                json_abort(run);
                                output_error("more than %u records in one reply; use --limit",
                                             ADMIN_MAX_RECORDS);
                                return EXIT_OTHER;
                        }
                        r = on_record(run, &m);
                        if (r < 0)
                                return admin_failure(run, r);
                        if (ferror(stdout))
                                return EXIT_OTHER; /* a closed pipe: main() reports the rest */
                        break;
                case MSG_DONE:
                        r = record_parse(&run->summary, &m);
                        if (r < 0)
                                return admin_failure(run, r);
                        json_finish(run);
                        if (record_equals(&run->summary, "truncated", "true"))
                                output_error(
                                        "the reply was cut at the daemon's max_reply_rows records; narrow "
                                             "the request (paths, --package, --since, --limit)");
                        r = run->verb->done(run, &run->summary);
                        return r < 0 ? admin_failure(run, r) : r;
                case MSG_ERROR:
                        json_abort(run);
                        return client_request_error(&m);
                default:
                        break; /* a newer daemon's message: skip it */
                }
        }
}

static int run_admin_verb(ClientOptions *o, const char *name, int argc, char **argv) {
        _cleanup_(connection_freep) Connection *c = NULL;
        _cleanup_(msg_writer_done) MsgWriter w = MSG_WRITER_NULL;
        const AdminVerb *v = NULL;
        AdminArgs a = {};
        AdminRun run = { .o = o, .args = &a };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(verb_table) && !v; i++)
                if (strcmp(verb_table[i].name, name) == 0)
                        v = &verb_table[i];
        assert(v);
        run.verb = v;

        r = admin_parse_args(o, v, &a, argc, argv);
        if (r <= 0) {
                admin_args_done(&a);
                return -r;
        }
        r = admin_build_request(o, v, &a, &w);
        if (r == -EMSGSIZE) {
                admin_args_done(&a);
                output_error("request too large (over %u bytes): pass fewer paths, or directories",
                             PROTOCOL_MAX_FRAME);
                return EXIT_OTHER;
        }
        if (r < 0) {
                admin_args_done(&a);
                return client_io_error(r);
        }

        r = client_connect(o, true, &c);
        if (r == EXIT_OK) {
                r = connection_send(c, &w);
                r = r < 0 ? client_io_error(r) : read_replies(&run, c);
        }
        admin_run_done(&run);
        admin_args_done(&a);
        return r;
}

int verb_why(ClientOptions *o, int argc, char **argv) {
        return run_admin_verb(o, "why", argc, argv);
}

int verb_history(ClientOptions *o, int argc, char **argv) {
        return run_admin_verb(o, "history", argc, argv);
}

int verb_verify(ClientOptions *o, int argc, char **argv) {
        return run_admin_verb(o, "verify", argc, argv);
}

int verb_repair(ClientOptions *o, int argc, char **argv) {
        return run_admin_verb(o, "repair", argc, argv);
}

int verb_clean(ClientOptions *o, int argc, char **argv) {
        return run_admin_verb(o, "clean", argc, argv);
}

int verb_audit(ClientOptions *o, int argc, char **argv) {
        return run_admin_verb(o, "audit", argc, argv);
}
