/* SPDX-License-Identifier: MIT */
/* pycqueue compile: one MSG_COMPILE request, then the daemon's stream of
 * ACCEPTED, PROGRESS and RESULT messages up to DONE (or ERROR).
 *
 * The client checks what it can check cheaply and locally, so a mistake is a
 * usage error (exit 2) before anything is queued: optimization levels, the
 * invalidation mode, exclude regexes (compiled once with the same flags the
 * daemon uses), interpreters (resolved along PATH to an absolute path). Paths
 * are bytes and are only made absolute by prefixing the current directory;
 * they are never resolved here, because the daemon canonicalizes them under
 * its own rules; with --root they are paths inside the root, so they must be
 * absolute. With --no-wait the daemon
 * replies once the jobs are durably queued, and "N queued" replaces the
 * summary. */

#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "output.h"
#include "util.h"

#define VERB "compile"
#define COMPILE_MAX_EXCLUDES 1024u
#define COMPILE_MAX_PYTHONS 32u
#define DEFAULT_PYTHON "python3"

typedef struct CompileArgs {
        bool force;
        bool no_wait;
        bool opt_level[3];
        int invalidation; /* InvalidationMode, or -1 for the default */
        const char *package;
        char *root; /* absolute */
        const char *excludes[COMPILE_MAX_EXCLUDES];
        size_t n_excludes;
        const char *python_names[COMPILE_MAX_PYTHONS];
        size_t n_python_names;
        char *pythons[COMPILE_MAX_PYTHONS]; /* absolute, unique */
        size_t n_pythons;
        char **paths; /* absolute */
        size_t n_paths;
} CompileArgs;

static void compile_args_done(CompileArgs *a) {
        free(a->root);
        for (size_t i = 0; i < a->n_pythons; i++)
                free(a->pythons[i]);
        for (size_t i = 0; i < a->n_paths; i++)
                free(a->paths[i]);
        free(a->paths);
}

static void help(void) {
        printf("Usage: " PROGRAM_NAME " [OPTION]... compile [OPTION]... PATH...\n"
               "Compile Python sources: files, and directories recursively (__pycache__ skipped).\n"
               "\n"
               "  -f, --force                   recompile files that are up to date\n"
               "  -O LEVEL                      optimization level 0, 1 or 2; repeatable (default 0)\n"
               "      --invalidation-mode=MODE  timestamp, checked-hash or unchecked-hash (default\n"
               "                                checked-hash if SOURCE_DATE_EPOCH is set, else timestamp)\n"
               "  -x, --exclude=REGEX           skip paths matching REGEX (POSIX extended); repeatable\n"
               "      --python=INTERP           interpreter: a name on PATH or a path "
               "(default " DEFAULT_PYTHON ");\n"
               "                                repeatable, compiles for each\n"
               "      --package=NAME            record NAME as the package asking\n"
               "      --root=DIR                compile an installer's target at DIR: PATHs are\n"
               "                                absolute inside DIR, DIR's python3 compiles\n"
               "      --no-wait                 return once the jobs are durably queued, printing\n"
               "                                \"N queued\" instead of the summary\n"
               "  -h, --help                    show this help and exit\n"
               "\n"
               "Errors go to stderr as PATH:LINE: Type: message; a summary goes to stdout.\n"
               "Exit status: 0 ok, 1 some file failed, 2 usage error, 3 daemon unreachable,\n"
               "4 permission denied, 5 other error.\n");
}

static int resolve_pythons(CompileArgs *a) {
        if (a->n_python_names == 0)
                a->python_names[a->n_python_names++] = DEFAULT_PYTHON;

        for (size_t i = 0; i < a->n_python_names; i++) {
                const char *name = a->python_names[i];
                _cleanup_free_ char *p = NULL;
                bool seen = false;
                int r;

                r = client_find_executable(a->root, name, &p);
                if (r < 0) {
                        errno = -r;
                        if (r == -ENOENT && !strchr(name, '/'))
                                output_usage_error(VERB, "interpreter '%s' not found on PATH%s", name,
                                                   a->root ? " inside the root" : "");
                        else if (r == -EINVAL)
                                output_usage_error(VERB,
                                                   "--python with --root needs a name or an absolute "
                                                   "path: %s",
                                                   name);
                        else
                                output_usage_error(VERB, "interpreter '%s': %m", name);
                        return -EXIT_USAGE;
                }
                for (size_t j = 0; j < a->n_pythons && !seen; j++)
                        seen = strcmp(a->pythons[j], p) == 0;
                if (!seen)
                        a->pythons[a->n_pythons++] = TAKE_PTR(p);
        }
        return 0;
}

static int check_exclude(const char *regex) {
        regex_t re;
        char error[256];
        int r;

        r = regcomp(&re, regex, REG_EXTENDED | REG_NOSUB);
        if (r == 0) {
                regfree(&re);
                return 0;
        }
        regerror(r, &re, error, sizeof(error));
        output_usage_error(VERB, "invalid exclude regex '%s': %s", regex, error);
        return -EXIT_USAGE;
}

enum {
        OPT_INVALIDATION_MODE = OPT_VERB_BASE,
        OPT_PYTHON,
        OPT_PACKAGE,
        OPT_ROOT,
        OPT_NO_WAIT,
};

/* Returns 1 to go on, 0 after --help, or -EXIT_* after reporting. */
static int parse_option(CompileArgs *a, int c, const char *arg) {
        int r;

        switch (c) {
        case 'f':
                a->force = true;
                return 1;
        case 'O':
                if (strlen(arg) != 1 || arg[0] < '0' || arg[0] > '2') {
                        output_usage_error(VERB, "invalid optimization level '%s' (0, 1 or 2)", arg);
                        return -EXIT_USAGE;
                }
                a->opt_level[arg[0] - '0'] = true; /* a repeated level counts once */
                return 1;
        case OPT_INVALIDATION_MODE:
                r = invalidation_mode_from_string(arg);
                if (r < 0) {
                        output_usage_error(VERB,
                                           "invalid invalidation mode '%s' (timestamp, checked-hash or "
                                           "unchecked-hash)",
                                           arg);
                        return -EXIT_USAGE;
                }
                a->invalidation = r;
                return 1;
        case 'x':
                if (a->n_excludes >= COMPILE_MAX_EXCLUDES) {
                        output_usage_error(VERB, "too many --exclude options (at most %u)",
                                           COMPILE_MAX_EXCLUDES);
                        return -EXIT_USAGE;
                }
                r = check_exclude(arg);
                if (r < 0)
                        return r;
                a->excludes[a->n_excludes++] = arg;
                return 1;
        case OPT_PYTHON:
                if (!*arg) {
                        output_usage_error(VERB, "empty --python");
                        return -EXIT_USAGE;
                }
                if (a->n_python_names >= COMPILE_MAX_PYTHONS) {
                        output_usage_error(VERB, "too many --python options (at most %u)",
                                           COMPILE_MAX_PYTHONS);
                        return -EXIT_USAGE;
                }
                a->python_names[a->n_python_names++] = arg;
                return 1;
        case OPT_PACKAGE:
                if (!*arg) {
                        output_usage_error(VERB, "empty package name");
                        return -EXIT_USAGE;
                }
                a->package = arg;
                return 1;
        case OPT_ROOT:
                return client_parse_root(VERB, arg, &a->root);
        case OPT_NO_WAIT:
                a->no_wait = true;
                return 1;
        case 'h':
                help();
                return 0;
        default:
                return -EXIT_USAGE; /* not reached: getopt errors are handled by the caller */
        }
}

static int parse_paths(CompileArgs *a, int n, char **args) {
        if (n <= 0) {
                output_usage_error(VERB, "no PATH given");
                return -EXIT_USAGE;
        }
        return client_paths_absolute(VERB, a->root, n, args, &a->paths, &a->n_paths);
}

static int parse_args(ClientOptions *o, CompileArgs *a, int argc, char **argv) {
        static const struct option options[] = {
                GLOBAL_LONG_OPTIONS,
                { "force", no_argument, NULL, 'f' },
                { "exclude", required_argument, NULL, 'x' },
                { "invalidation-mode", required_argument, NULL, OPT_INVALIDATION_MODE },
                { "python", required_argument, NULL, OPT_PYTHON },
                { "package", required_argument, NULL, OPT_PACKAGE },
                { "root", required_argument, NULL, OPT_ROOT },
                { "no-wait", no_argument, NULL, OPT_NO_WAIT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, ":fO:x:qvh", options, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return -client_getopt_error(VERB, c, argv);
                if (client_parse_global_option(o, c, optarg))
                        continue;
                r = parse_option(a, c, optarg);
                if (r <= 0)
                        return r;
        }

        if (a->invalidation < 0) {
                /* As py_compile: a non-empty SOURCE_DATE_EPOCH asks for reproducible output. */
                const char *e = getenv("SOURCE_DATE_EPOCH");
                a->invalidation = e && *e ? INVALIDATION_CHECKED_HASH : INVALIDATION_TIMESTAMP;
        }
        r = parse_paths(a, argc - optind, argv + optind);
        if (r <= 0)
                return r;
        r = resolve_pythons(a);
        return r < 0 ? r : 1;
}

static int build_request(const ClientOptions *o, const CompileArgs *a, MsgWriter *w) {
        bool any_level = false;

        msg_writer_init(w, MSG_COMPILE);
        client_put_context(w, o);
        for (size_t i = 0; i < a->n_paths; i++)
                msg_put_bytes(w, TAG_PATH, a->paths[i], strlen(a->paths[i]));
        for (size_t i = 0; i < a->n_excludes; i++)
                msg_put_string(w, TAG_EXCLUDE, a->excludes[i]);
        for (size_t i = 0; i < a->n_pythons; i++)
                msg_put_bytes(w, TAG_PYTHON, a->pythons[i], strlen(a->pythons[i]));
        for (unsigned level = 0; level < ELEMENTSOF(a->opt_level); level++)
                if (a->opt_level[level]) {
                        msg_put_u64(w, TAG_OPT_LEVEL, level);
                        any_level = true;
                }
        if (!any_level)
                msg_put_u64(w, TAG_OPT_LEVEL, 0);
        msg_put_u64(w, TAG_INVALIDATION, (uint64_t)a->invalidation);
        if (a->force)
                msg_put_u64(w, TAG_FORCE, 1);
        if (a->package)
                msg_put_string(w, TAG_PACKAGE, a->package);
        if (a->root)
                msg_put_bytes(w, TAG_ROOT, a->root, strlen(a->root));
        if (a->no_wait)
                msg_put_u64(w, TAG_NO_WAIT, 1);
        if (o->verbose)
                msg_put_u64(w, TAG_REPORT_ALL, 1);
        return w->error;
}

int client_parse_counts(MsgReader *m, uint64_t *total, uint64_t *done, CompileCounts *k) {
        MsgField f;
        int r;

        while ((r = msg_next(m, &f)) > 0) {
                uint64_t *dst = NULL;

                switch (f.tag) {
                case TAG_COUNT_TOTAL:
                        dst = total;
                        break;
                case TAG_COUNT_DONE:
                        dst = done;
                        break;
                case TAG_COUNT_COMPILED:
                        dst = k ? &k->compiled : NULL;
                        break;
                case TAG_COUNT_UP_TO_DATE:
                        dst = k ? &k->up_to_date : NULL;
                        break;
                case TAG_COUNT_COALESCED:
                        dst = k ? &k->coalesced : NULL;
                        break;
                case TAG_COUNT_FAILED:
                        dst = k ? &k->failed : NULL;
                        break;
                }
                if (dst && field_u64(&f, dst) < 0)
                        return -EBADMSG;
        }
        return r;
}

int client_parse_result(MsgReader *m, FileResult *ret) {
        FileResult fr = { .outcome = _OUTCOME_MAX };
        uint64_t v;
        MsgField f;
        int r;

        while ((r = msg_next(m, &f)) > 0) {
                switch (f.tag) {
                case TAG_RESULT_SOURCE:
                        fr.source = f.data;
                        fr.source_size = f.size;
                        break;
                case TAG_RESULT_OUTCOME:
                        if (field_u64(&f, &v) < 0)
                                return -EBADMSG;
                        fr.outcome = v < _OUTCOME_MAX ? (Outcome)v : _OUTCOME_MAX;
                        break;
                case TAG_ERROR_TYPE:
                        fr.type = f.data;
                        fr.type_size = f.size;
                        break;
                case TAG_ERROR_LINE:
                        if (field_u64(&f, &fr.line) < 0)
                                return -EBADMSG;
                        break;
                case TAG_ERROR_MESSAGE:
                        fr.message = f.data;
                        fr.message_size = f.size;
                        break;
                }
        }
        if (r < 0)
                return r;
        *ret = fr;
        return 0;
}

int client_compile_exchange(ClientOptions *o, bool autostart, MsgWriter *w, bool json, bool quiet,
                            bool verbose, bool no_wait) {
        _cleanup_(connection_freep) Connection *c = NULL;
        _cleanup_(compile_output_freep) CompileOutput *out = NULL;
        int r;

        r = client_connect(o, autostart, &c);
        if (r != EXIT_OK)
                return r;
        r = compile_output_new(json, quiet, verbose, &out);
        if (r < 0) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        r = connection_send(c, w);
        if (r < 0)
                return client_io_error(r);
        return client_compile_replies(c, out, no_wait);
}

/* Reads replies until DONE or ERROR; returns the exit code. With --no-wait
 * the daemon answers ACCEPTED, then DONE once the jobs are durably queued,
 * its COUNT_TOTAL being the number of targets queued. */
int client_compile_replies(Connection *c, CompileOutput *out, bool no_wait) {
        uint64_t total = 0, done = 0;
        bool saw_failure = false;

        for (;;) {
                CompileCounts counts = {};
                FileResult fr;
                MsgReader m;
                int r;

                r = connection_receive(c, &m);
                if (r < 0)
                        return client_io_error(r);

                switch (m.type) {
                case MSG_ACCEPTED:
                case MSG_PROGRESS:
                        r = client_parse_counts(&m, &total, &done, NULL);
                        if (r >= 0 && !no_wait)
                                compile_output_progress(out, done, total);
                        break;
                case MSG_RESULT:
                        r = client_parse_result(&m, &fr);
                        if (r >= 0) {
                                saw_failure = saw_failure || fr.outcome == OUTCOME_FAILED;
                                r = compile_output_result(out, &fr);
                        }
                        break;
                case MSG_DONE:
                        r = client_parse_counts(&m, &total, &done, &counts);
                        if (r < 0)
                                break;
                        if (no_wait)
                                compile_output_queued(out, total);
                        else
                                compile_output_summary(out, &counts);
                        return counts.failed > 0 || saw_failure ? EXIT_FILES_FAILED : EXIT_OK;
                case MSG_ERROR:
                        return client_request_error(&m);
                default:
                        break; /* a newer daemon's message: skip it */
                }
                if (r == -ENOMEM) {
                        output_error("out of memory");
                        return EXIT_OTHER;
                }
                if (r < 0)
                        return client_io_error(r);
        }
}

int verb_compile(ClientOptions *o, int argc, char **argv) {
        _cleanup_(msg_writer_done) MsgWriter w = MSG_WRITER_NULL;
        CompileArgs a = { .invalidation = -1 };
        bool no_wait;
        int r;

        r = parse_args(o, &a, argc, argv);
        if (r <= 0) {
                compile_args_done(&a);
                return -r;
        }

        r = build_request(o, &a, &w);
        no_wait = a.no_wait;
        compile_args_done(&a);
        if (r == -EMSGSIZE) {
                output_error("request too large (over %u bytes): pass fewer paths, or directories",
                             PROTOCOL_MAX_FRAME);
                return EXIT_OTHER;
        }
        if (r < 0)
                return client_io_error(r);

        return client_compile_exchange(o, true, &w, o->json, o->quiet, o->verbose, no_wait);
}
