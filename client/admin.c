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
 * directory, never resolved (the daemon canonicalizes). */

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "json.h"
#include "output.h"
#include "record.h"
#include "util.h"

#define ADMIN_MAX_RECORDS 10000000u /* in one reply; also the largest --limit */
#define ADMIN_MAX_PYTHONS 32u
#define ADMIN_DEFAULT_LIMIT 1000u /* history and audit */
#define WHY_MAX_KEPT_RECORDS 100000u
#define WHY_MAX_KEPT_BYTES (256u * 1024u * 1024u)

/* What the verbs' options are; each verb accepts a subset. */
enum {
        ARG_PACKAGE = 1u << 0,
        ARG_SINCE = 1u << 1,
        ARG_FAILED = 1u << 2,
        ARG_LIMIT = 1u << 3,
        ARG_PYTHON = 1u << 4,
};

enum {
        OPT_PACKAGE = OPT_VERB_BASE,
        OPT_SINCE,
        OPT_FAILED,
        OPT_LIMIT,
        OPT_PYTHON,
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

static void admin_args_done(AdminArgs *a) {
        for (size_t i = 0; i < a->n_paths; i++)
                free(a->paths[i]);
        free(a->paths);
        for (size_t i = 0; i < a->n_pythons; i++)
                free(a->pythons[i]);
}

static void admin_run_done(AdminRun *run) {
        record_done(&run->record);
        record_done(&run->summary);
        for (size_t i = 0; i < run->n_kept; i++)
                free(run->kept[i].data);
        free(run->kept);
}

/* --- arguments -------------------------------------------------------------- */

static void verb_help(const AdminVerb *v) {
        printf("Usage: " PROGRAM_NAME " [OPTION]... %s\n%s\n", v->usage, v->description);
        if (v->args & ARG_PACKAGE)
                printf("      --package=NAME   only the files of package NAME (as recorded by compile)\n");
        if (v->args & ARG_PYTHON)
                printf("      --python=INTERP  only the .pyc files of INTERP (a name on PATH or a path);\n"
                       "                       repeatable (default: every interpreter)\n");
        if (v->args & ARG_SINCE)
                printf("      --since=TIME     only records at or after TIME, one of:\n"
                       "                         Unix seconds                  1700000000\n"
                       "                         YYYY-MM-DD[ HH:MM[:SS]]       \"2025-01-31 14:00\" (local "
                       "time;\n"
                       "                                                       'T' may replace the space)\n"
                       "                         N{s,m,h,d,w}[ ago]            N seconds, minutes, hours, "
                       "days\n"
                       "                                                       or weeks ago: 90s, \"2h "
                       "ago\", 7d\n");
        if (v->args & ARG_FAILED)
                printf("      --failed         only failed jobs\n");
        if (v->args & ARG_LIMIT && v->default_limit)
                printf("      --limit=N        at most N records, newest first (default %" PRIu64 ")\n",
                       v->default_limit);
        else if (v->args & ARG_LIMIT)
                printf("      --limit=N        at most N records, newest first\n");
        printf("      --json           print a JSON array of the records\n"
               "  -h, --help           show this help and exit\n"
               "\n%s",
               v->exit_status);
}

/* Parses a count of 1..ADMIN_MAX_RECORDS. */
static int parse_limit(const char *s, uint64_t *ret) {
        uint64_t v;

        if (safe_atou64(s, &v) < 0 || v == 0 || v > ADMIN_MAX_RECORDS)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Reads exactly @n digits at *@p into *@ret and advances *@p. */
static bool read_digits(const char **p, unsigned n, int *ret) {
        int v = 0;

        for (unsigned i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

/* "YYYY-MM-DD", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" ('T' for the
 * space too), in local time. An impossible date (02-30) is refused. */
static int parse_local_time(const char *s, uint64_t *ret) {
        struct tm tm = { .tm_isdst = -1 }, want;
        const char *p = s;
        time_t t;

        if (!read_digits(&p, 4, &tm.tm_year) || *p++ != '-' || !read_digits(&p, 2, &tm.tm_mon) ||
            *p++ != '-' || !read_digits(&p, 2, &tm.tm_mday))
                return -EINVAL;
        if (*p == ' ' || *p == 'T') {
                p++;
                if (!read_digits(&p, 2, &tm.tm_hour) || *p++ != ':' || !read_digits(&p, 2, &tm.tm_min))
                        return -EINVAL;
                if (*p == ':') {
                        p++;
                        if (!read_digits(&p, 2, &tm.tm_sec))
                                return -EINVAL;
                }
        }
        if (*p != '\0')
                return -EINVAL;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 59)
                return -EINVAL;
        want = tm;
        t = mktime(&tm);
        if (t == (time_t)-1 || tm.tm_mday != want.tm_mday || tm.tm_mon != want.tm_mon)
                return -EINVAL;
        if (t < 0)
                return -ERANGE;
        *ret = (uint64_t)t;
        return 0;
}

/* "NUNIT" or "NUNIT ago": that long before @now (clamped at the epoch). */
static int parse_relative_time(const char *s, uint64_t now, uint64_t *ret) {
        static const struct {
                char unit;
                uint64_t seconds;
        } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 } };
        char number[32], unit;
        size_t n = strspn(s, "0123456789");
        const char *rest = s + n;
        uint64_t v;

        if (n == 0 || n >= sizeof(number))
                return -EINVAL;
        memcpy(number, s, n);
        number[n] = '\0';
        unit = *rest++;
        if (*rest != '\0' && strcmp(rest, " ago") != 0)
                return -EINVAL;
        if (safe_atou64(number, &v) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (units[i].unit == unit) {
                        if (v > now / units[i].seconds)
                                *ret = 0;
                        else
                                *ret = now - v * units[i].seconds;
                        return 0;
                }
        return -EINVAL;
}

/* TIME of --since, documented in verb_help() and pycqueue(1). */
static int parse_since(const char *s, uint64_t *ret) {
        uint64_t now = now_usec(CLOCK_REALTIME) / 1000000u;

        if (*s && s[strspn(s, "0123456789")] == '\0')
                return safe_atou64(s, ret) < 0 ? -EINVAL : 0;
        if (strlen(s) >= 10 && s[4] == '-')
                return parse_local_time(s, ret);
        return parse_relative_time(s, now, ret);
}

static int add_python(const char *verb, AdminArgs *a, const char *name) {
        _cleanup_free_ char *p = NULL;
        int r;

        if (!*name) {
                output_usage_error(verb, "empty --python");
                return -EXIT_USAGE;
        }
        if (a->n_pythons >= ADMIN_MAX_PYTHONS) {
                output_usage_error(verb, "too many --python options (at most %u)", ADMIN_MAX_PYTHONS);
                return -EXIT_USAGE;
        }
        r = find_executable(name, &p);
        if (r < 0) {
                errno = -r;
                if (r == -ENOENT && !strchr(name, '/'))
                        output_usage_error(verb, "interpreter '%s' not found on PATH", name);
                else
                        output_usage_error(verb, "interpreter '%s': %m", name);
                return -EXIT_USAGE;
        }
        for (size_t i = 0; i < a->n_pythons; i++)
                if (strcmp(a->pythons[i], p) == 0)
                        return 1;
        a->pythons[a->n_pythons++] = TAKE_PTR(p);
        return 1;
}

/* Returns 1 to go on, 0 after --help, or -EXIT_* after reporting. */
static int parse_option(const AdminVerb *v, AdminArgs *a, int c, const char *arg) {
        const char *verb = v->name;

        switch (c) {
        case OPT_PACKAGE:
                if (!*arg) {
                        output_usage_error(verb, "empty package name");
                        return -EXIT_USAGE;
                }
                a->package = arg;
                return 1;
        case OPT_SINCE:
                if (parse_since(arg, &a->since) < 0) {
                        output_usage_error(verb,
                                           "invalid time '%s' (Unix seconds, YYYY-MM-DD[ HH:MM[:SS]], or "
                                           "a duration ago like 90s, 30m, 2h, 7d, 1w)",
                                           arg);
                        return -EXIT_USAGE;
                }
                a->have_since = true;
                return 1;
        case OPT_FAILED:
                a->failed_only = true;
                return 1;
        case OPT_LIMIT:
                if (parse_limit(arg, &a->limit) < 0) {
                        output_usage_error(verb, "invalid limit '%s' (1 to %u)", arg, ADMIN_MAX_RECORDS);
                        return -EXIT_USAGE;
                }
                return 1;
        case OPT_PYTHON:
                return add_python(verb, a, arg);
        case 'h':
                verb_help(v);
                return 0;
        default:
                return -EXIT_USAGE; /* not reached: getopt errors are handled by the caller */
        }
}

static int parse_paths(const AdminVerb *v, AdminArgs *a, int n, char **args) {
        if ((size_t)n < v->min_paths && !(v->paths_or_package && a->package)) {
                output_usage_error(v->name,
                                   v->paths_or_package ? "no PATH and no --package given" : "no PATH given");
                return -EXIT_USAGE;
        }
        if ((size_t)n > v->max_paths) {
                output_usage_error(v->name, "unexpected argument '%s'", args[v->max_paths]);
                return -EXIT_USAGE;
        }
        if (n == 0)
                return 1;
        return client_paths_absolute(v->name, n, args, &a->paths, &a->n_paths);
}

static int parse_args(ClientOptions *o, const AdminVerb *v, AdminArgs *a, int argc, char **argv) {
        static const struct {
                unsigned arg;
                struct option option;
        } verb_options[] = {
                { ARG_PACKAGE, { "package", required_argument, NULL, OPT_PACKAGE } },
                { ARG_SINCE, { "since", required_argument, NULL, OPT_SINCE } },
                { ARG_FAILED, { "failed", no_argument, NULL, OPT_FAILED } },
                { ARG_LIMIT, { "limit", required_argument, NULL, OPT_LIMIT } },
                { ARG_PYTHON, { "python", required_argument, NULL, OPT_PYTHON } },
        };
        static const struct option common[] = {
                GLOBAL_LONG_OPTIONS,
                { "help", no_argument, NULL, 'h' },
        };
        struct option options[ELEMENTSOF(common) + ELEMENTSOF(verb_options) + 1] = {};
        size_t n = 0;
        int c, r;

        for (size_t i = 0; i < ELEMENTSOF(common); i++)
                options[n++] = common[i];
        for (size_t i = 0; i < ELEMENTSOF(verb_options); i++)
                if (v->args & verb_options[i].arg)
                        options[n++] = verb_options[i].option;

        while ((c = getopt_long(argc, argv, ":qvh", options, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return -client_getopt_error(v->name, c, argv);
                if (client_parse_global_option(o, c, optarg))
                        continue;
                r = parse_option(v, a, c, optarg);
                if (r <= 0)
                        return r;
        }
        return parse_paths(v, a, argc - optind, argv + optind);
}

static int build_request(const ClientOptions *o, const AdminVerb *v, const AdminArgs *a, MsgWriter *w) {
        uint64_t limit = a->limit ? a->limit : v->default_limit;

        msg_writer_init(w, v->type);
        client_put_context(w, o);
        for (size_t i = 0; i < a->n_paths; i++)
                msg_put_bytes(w, TAG_PATH, a->paths[i], strlen(a->paths[i]));
        if (a->package)
                msg_put_string(w, TAG_PACKAGE, a->package);
        for (size_t i = 0; i < a->n_pythons; i++)
                msg_put_bytes(w, TAG_PYTHON, a->pythons[i], strlen(a->pythons[i]));
        if (a->have_since)
                msg_put_u64(w, TAG_SINCE, a->since);
        if (a->failed_only)
                msg_put_u64(w, TAG_FAILED_ONLY, 1);
        if (limit > 0)
                msg_put_u64(w, TAG_LIMIT, limit);
        return w->error;
}

/* --- printing helpers ------------------------------------------------------- */

static void write_field_padded(const Record *r, const char *key, size_t width) {
        const RecordField *f = record_get(r, key);
        size_t used = f && f->size > 0 ? f->size : 1;

        record_write_value(r, key, stdout);
        for (; used < width; used++)
                fputc(' ', stdout);
}

static void write_field_right(const Record *r, const char *key, size_t width) {
        const RecordField *f = record_get(r, key);

        for (size_t used = f && f->size > 0 ? f->size : 1; used < width; used++)
                fputc(' ', stdout);
        record_write_value(r, key, stdout);
}

static bool has(const Record *r, const char *key) {
        const RecordField *f = record_get(r, key);
        return f && f->size > 0;
}

static void write_label(const char *label) {
        printf("    %-15s", label);
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

/* --- why -------------------------------------------------------------------- */

static int why_keep(AdminRun *run, const Record *r, const MsgReader *m) {
        KeptFrame k;

        if (run->n_kept >= WHY_MAX_KEPT_RECORDS || run->kept_bytes + m->size > WHY_MAX_KEPT_BYTES) {
                run->not_kept++;
                return 0;
        }
        if (run->n_kept == run->allocated_kept) {
                size_t a = run->allocated_kept ? run->allocated_kept * 2 : 16;
                KeptFrame *n = realloc(run->kept, a * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                run->kept = n;
                run->allocated_kept = a;
        }
        k.data = malloc(m->size);
        if (!k.data)
                return -ENOMEM;
        memcpy(k.data, m->data, m->size);
        k.size = m->size;
        run->kept[run->n_kept++] = k;
        run->kept_bytes += k.size;
        return 0;
}

static void why_print_disk_state(AdminRun *run, const Record *s) {
        const RecordField *target = record_get(s, "target");
        const RecordField *sha = record_get(s, "on_disk_sha256");

        if (target && target->size > 0)
                output_write_path(stdout, target->value, target->size);
        else
                output_write_path(stdout, run->args->paths[0], strlen(run->args->paths[0]));
        fputs(": ", stdout);
        if (record_equals(s, "on_disk", "matches"))
                fputs("on disk, identical to the last write by pycqueued", stdout);
        else if (record_equals(s, "on_disk", "differs"))
                fputs("on disk, but NOT what pycqueued last wrote: changed by another process since",
                      stdout);
        else if (record_equals(s, "on_disk", "missing"))
                fputs("not on disk: removed since pycqueued last wrote it", stdout);
        else if (record_equals(s, "on_disk", "never-written"))
                fputs(sha && sha->size > 0 ? "on disk, but never written by pycqueued"
                                           : "never written by pycqueued",
                      stdout);
        else if (has(s, "on_disk")) {
                fputs("on disk: ", stdout);
                record_write_value(s, "on_disk", stdout);
        } else
                fputs("state on disk unknown", stdout);
        if (sha && sha->size > 0) {
                fputs(" (sha256 ", stdout);
                output_write_text(stdout, sha->value, sha->size);
                fputc(')', stdout);
        }
        fputc('\n', stdout);
}

static void why_print_process(const Record *r) {
        static const char *const ids[] = { "pid", "uid", "gid" };
        const char *sep = "";

        if (!has(r, "pid") && !has(r, "uid") && !has(r, "exe"))
                return;
        write_label("process:");
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                if (has(r, ids[i])) {
                        printf("%s%s ", sep, ids[i]);
                        record_write_value(r, ids[i], stdout);
                        sep = ", ";
                }
        if (has(r, "exe")) {
                fputs(sep, stdout);
                record_write_value(r, "exe", stdout);
        }
        fputc('\n', stdout);
}

static void why_print_interpreter(const Record *r) {
        if (!has(r, "interpreter") && !has(r, "cache_tag"))
                return;
        write_label("interpreter:");
        record_write_value(r, "interpreter", stdout);
        if (has(r, "cache_tag")) {
                fputs(" (", stdout);
                record_write_value(r, "cache_tag", stdout);
                fputc(')', stdout);
        }
        if (has(r, "opt_level")) {
                fputs(", optimization ", stdout);
                record_write_value(r, "opt_level", stdout);
        }
        if (has(r, "invalidation_mode")) {
                fputs(", ", stdout);
                record_write_value(r, "invalidation_mode", stdout);
        }
        fputc('\n', stdout);
}

static void why_print_line(const Record *r, const char *label, const char *key) {
        if (!has(r, key))
                return;
        write_label(label);
        record_write_value(r, key, stdout);
        fputc('\n', stdout);
}

static void why_print_record(const Record *r, const Record *summary) {
        const RecordField *target = record_get(r, "target"), *main_target = record_get(summary, "target");
        char when[64];

        record_format_time(r, true, when, sizeof(when));
        printf("\n%s  ", when);
        record_write_value(r, "outcome", stdout);
        fputc('\n', stdout);

        why_print_process(r);
        if (has(r, "cmdline")) {
                write_label("command line:");
                record_write_cmdline(record_get(r, "cmdline"), stdout);
                fputc('\n', stdout);
        }
        write_label("chain:");
        if (!record_write_chain(r, stdout))
                fputc('-', stdout);
        fputc('\n', stdout);
        why_print_line(r, "package:", "package");
        why_print_line(r, "tool:", "tool");
        why_print_interpreter(r);
        /* Asked about a source, the records may be of several targets. */
        if (target && target->size > 0 &&
            !(main_target && main_target->size == target->size &&
              memcmp(main_target->value, target->value, target->size) == 0))
                why_print_line(r, "target:", "target");
        why_print_line(r, "source:", "source");
        why_print_line(r, "source sha256:", "source_sha256");
        if (has(r, "pyc_sha256")) {
                write_label("pyc sha256:");
                record_write_value(r, "pyc_sha256", stdout);
                if (record_equals(r, "matches_disk", "true"))
                        fputs(" (the file on disk)", stdout);
                fputc('\n', stdout);
        }
        if (has(r, "error_type") || has(r, "error_message")) {
                uint64_t line = 0;

                write_label("error:");
                record_write_value(r, "error_type", stdout);
                if (record_get_u64(r, "error_line", &line) >= 0 && line > 0)
                        printf(" at line %" PRIu64, line);
                if (has(r, "error_message")) {
                        fputs(": ", stdout);
                        record_write_value(r, "error_message", stdout);
                }
                fputc('\n', stdout);
        }
}

static int why_done(AdminRun *run, const Record *summary) {
        const char *path = run->args->paths[0];

        if (run->o->json) {
                if (run->n_records == 0)
                        output_error("%s: never written by pycqueued", path);
                return run->n_records > 0 ? EXIT_OK : EXIT_FILES_FAILED;
        }

        why_print_disk_state(run, summary);
        for (size_t i = 0; i < run->n_kept; i++) {
                MsgReader m;
                int r;

                r = msg_parse(run->kept[i].data, run->kept[i].size, &m);
                if (r < 0)
                        return r;
                r = record_parse(&run->record, &m);
                if (r < 0)
                        return r;
                why_print_record(&run->record, summary);
        }
        if (run->not_kept > 0)
                printf("\n… and %" PRIu64 " older records (see --limit, or --json for all)\n",
                       run->not_kept);
        return run->n_records > 0 ? EXIT_OK : EXIT_FILES_FAILED;
}

/* --- history and audit ------------------------------------------------------ */

static int history_record(AdminRun *run, const Record *r, const MsgReader *m) {
        char when[64];

        if (!run->header_printed) {
                printf("%-19s  %-10s  %-20s  %7s  %-20s  %s\n", "TIME", "OUTCOME", "PACKAGE", "PID", "EXE",
                       "TARGET");
                run->header_printed = true;
        }
        record_format_time(r, false, when, sizeof(when));
        printf("%-19s  ", when);
        write_field_padded(r, "outcome", 10);
        fputs("  ", stdout);
        write_field_padded(r, "package", 20);
        fputs("  ", stdout);
        write_field_right(r, "pid", 7);
        fputs("  ", stdout);
        write_field_padded(r, "exe", 20);
        fputs("  ", stdout);
        record_write_value(r, has(r, "target") ? "target" : "source", stdout);
        if (has(r, "error_type")) {
                fputs("  ", stdout);
                record_write_value(r, "error_type", stdout);
        }
        fputc('\n', stdout);
        return 0;
}

static int audit_record(AdminRun *run, const Record *r, const MsgReader *m) {
        char when[64];

        if (!run->header_printed) {
                printf("%-19s  %7s  %-20s  %s\n", "TIME", "PID", "EXE", "PATH");
                run->header_printed = true;
        }
        record_format_time(r, false, when, sizeof(when));
        printf("%-19s  ", when);
        write_field_right(r, "pid", 7);
        fputs("  ", stdout);
        write_field_padded(r, "exe", 20);
        fputs("  ", stdout);
        record_write_value(r, "path", stdout);
        fputc('\n', stdout);
        fputs("    by ", stdout);
        if (!record_write_chain(r, stdout))
                fputc('-', stdout);
        fputc('\n', stdout);
        return 0;
}

static int log_done(AdminRun *run, const Record *summary) {
        if (!run->o->json && run->n_records == 0 && !run->o->quiet)
                printf("no records\n");
        return EXIT_OK;
}

/* --- verify, repair, clean -------------------------------------------------- */

static int verify_record(AdminRun *run, const Record *r, const MsgReader *m) {
        record_write_value(r, "path", stdout);
        fputs(": ", stdout);
        record_write_value(r, "problem", stdout);
        if (has(r, "detail")) {
                fputs(": ", stdout);
                record_write_value(r, "detail", stdout);
        }
        fputc('\n', stdout);
        return 0;
}

/* Exactly {"path","problem","detail"}, whatever else the record holds. */
static int verify_json(AdminRun *run, const Record *r) {
        static const char *const keys[] = { "path", "problem", "detail" };

        fputc('{', stdout);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const RecordField *f = record_get(r, keys[i]);

                printf("%s\"%s\":", i > 0 ? "," : "", keys[i]);
                json_write_string(stdout, f ? f->value : (const uint8_t *)"", f ? f->size : 0);
        }
        fputc('}', stdout);
        return 0;
}

/* A count from the summary, else @fallback. */
static uint64_t summary_count(const Record *s, const char *key, uint64_t fallback) {
        uint64_t v;
        return record_get_u64(s, key, &v) >= 0 ? v : fallback;
}

static int verify_done(AdminRun *run, const Record *summary) {
        uint64_t problems = summary_count(summary, "problems", run->n_records), checked;

        if (!run->o->json && !run->o->quiet) {
                if (record_get_u64(summary, "checked", &checked) >= 0)
                        printf("%" PRIu64 " checked, %" PRIu64 " problems\n", checked, problems);
                else
                        printf("%" PRIu64 " problems\n", problems);
        }
        return problems > 0 || run->n_records > 0 ? EXIT_FILES_FAILED : EXIT_OK;
}

static int repair_record(AdminRun *run, const Record *r, const MsgReader *m) {
        record_write_value(r, "path", stdout);
        fputs(": ", stdout);
        record_write_value(r, "problem", stdout);
        fputs(": ", stdout);
        record_write_value(r, "action", stdout);
        fputs(" (", stdout);
        record_write_value(r, "result", stdout);
        fputc(')', stdout);
        if (has(r, "detail")) {
                fputs(": ", stdout);
                record_write_value(r, "detail", stdout);
        }
        fputc('\n', stdout);
        return 0;
}

static int repair_done(AdminRun *run, const Record *summary) {
        uint64_t failed = summary_count(summary, "failed", run->n_failed);
        uint64_t repaired = summary_count(summary, "repaired", run->n_records - run->n_failed);

        if (!run->o->json && !run->o->quiet)
                printf("%" PRIu64 " repaired, %" PRIu64 " failed\n", repaired, failed);
        return failed > 0 || run->n_failed > 0 ? EXIT_FILES_FAILED : EXIT_OK;
}

static int clean_record(AdminRun *run, const Record *r, const MsgReader *m) {
        if (!run->o->verbose)
                return 0;
        fputs("removed ", stdout);
        record_write_value(r, "path", stdout);
        fputc('\n', stdout);
        return 0;
}

static int clean_done(AdminRun *run, const Record *summary) {
        if (!run->o->json && !run->o->quiet)
                printf("%" PRIu64 " removed\n", summary_count(summary, "removed", run->n_records));
        return EXIT_OK;
}

/* --- the verbs ---------------------------------------------------------------- */

static const AdminVerb verb_table[] = {
        {
                .name = "why",
                .type = MSG_WHY,
                .args = ARG_LIMIT,
                .min_paths = 1,
                .max_paths = 1,
                .usage = "why [--limit=N] PATH",
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
                .args = ARG_PACKAGE,
                .max_paths = SIZE_MAX,
                .usage = "verify [--package=NAME] [PATH]...",
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
                .args = ARG_PACKAGE,
                .max_paths = SIZE_MAX,
                .usage = "repair [--package=NAME] [PATH]...",
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
                .args = ARG_PACKAGE | ARG_PYTHON,
                .min_paths = 1,
                .max_paths = SIZE_MAX,
                .paths_or_package = true,
                .usage = "clean [--package=NAME] [--python=INTERP]... PATH...",
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

        r = parse_args(o, v, &a, argc, argv);
        if (r <= 0) {
                admin_args_done(&a);
                return -r;
        }
        r = build_request(o, v, &a, &w);
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
