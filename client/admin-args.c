/* SPDX-License-Identifier: MIT */
/* The arguments of the administration verbs: one option parser that
 * offers each verb only its own options (AdminVerb.args), the --since time
 * syntax, --python resolved to absolute paths, the operands made absolute,
 * and the request built from them. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin-verb.h"
#include "output.h"
#include "util.h"

void admin_args_done(AdminArgs *a) {
        for (size_t i = 0; i < a->n_paths; i++)
                free(a->paths[i]);
        free(a->paths);
        for (size_t i = 0; i < a->n_pythons; i++)
                free(a->pythons[i]);
        free(a->root);
}

static void verb_help(const AdminVerb *v) {
        printf("Usage: " PROGRAM_NAME " [OPTION]... %s\n%s\n", v->usage, v->description);
        if (v->args & ARG_PACKAGE)
                printf("      --package=NAME   only the files of package NAME (as recorded by compile)\n");
        if (v->args & ARG_PYTHON)
                printf("      --python=INTERP  only the .pyc files of INTERP (a name on PATH or a path);\n"
                       "                       repeatable (default: every interpreter)\n");
        if (v->args & ARG_ROOT)
                printf("      --root=DIR       PATH is inside DIR, an installer's target or a chroot:\n"
                       "                       symlinks resolve inside it, paths print as seen inside\n");
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
        r = client_find_executable(a->root, name, &p);
        if (r < 0) {
                errno = -r;
                if (r == -ENOENT && !strchr(name, '/'))
                        output_usage_error(verb, "interpreter '%s' not found on PATH%s", name,
                                           a->root ? " inside the root" : "");
                else if (r == -EINVAL)
                        output_usage_error(verb, "--python with --root needs a name or an absolute path: %s",
                                           name);
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
                /* Resolved after the options: --root may come later. */
                if (a->n_python_names >= ADMIN_MAX_PYTHONS) {
                        output_usage_error(verb, "too many --python options (at most %u)",
                                           ADMIN_MAX_PYTHONS);
                        return -EXIT_USAGE;
                }
                a->python_names[a->n_python_names++] = arg;
                return 1;
        case OPT_ROOT:
                return client_parse_root(verb, arg, &a->root);
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
        return client_paths_absolute(v->name, a->root, n, args, &a->paths, &a->n_paths);
}

int admin_parse_args(ClientOptions *o, const AdminVerb *v, AdminArgs *a, int argc, char **argv) {
        static const struct {
                unsigned arg;
                struct option option;
        } verb_options[] = {
                { ARG_PACKAGE, { "package", required_argument, NULL, OPT_PACKAGE } },
                { ARG_SINCE, { "since", required_argument, NULL, OPT_SINCE } },
                { ARG_FAILED, { "failed", no_argument, NULL, OPT_FAILED } },
                { ARG_LIMIT, { "limit", required_argument, NULL, OPT_LIMIT } },
                { ARG_PYTHON, { "python", required_argument, NULL, OPT_PYTHON } },
                { ARG_ROOT, { "root", required_argument, NULL, OPT_ROOT } },
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
        for (size_t i = 0; i < a->n_python_names; i++) {
                r = add_python(v->name, a, a->python_names[i]);
                if (r <= 0)
                        return r;
        }
        return parse_paths(v, a, argc - optind, argv + optind);
}

int admin_build_request(const ClientOptions *o, const AdminVerb *v, const AdminArgs *a, MsgWriter *w) {
        uint64_t limit = a->limit ? a->limit : v->default_limit;

        msg_writer_init(w, v->type);
        client_put_context(w, o);
        for (size_t i = 0; i < a->n_paths; i++)
                msg_put_bytes(w, TAG_PATH, a->paths[i], strlen(a->paths[i]));
        if (a->package)
                msg_put_string(w, TAG_PACKAGE, a->package);
        for (size_t i = 0; i < a->n_pythons; i++)
                msg_put_bytes(w, TAG_PYTHON, a->pythons[i], strlen(a->pythons[i]));
        if (a->root)
                msg_put_bytes(w, TAG_ROOT, a->root, strlen(a->root));
        if (a->have_since)
                msg_put_u64(w, TAG_SINCE, a->since);
        if (a->failed_only)
                msg_put_u64(w, TAG_FAILED_ONLY, 1);
        if (limit > 0)
                msg_put_u64(w, TAG_LIMIT, limit);
        return w->error;
}
