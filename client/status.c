/* SPDX-License-Identifier: MIT */
/* The read-only verbs, open to every local user, which never start the
 * daemon (a status query must not change what it reports):
 *
 * - status: MSG_STATUS, answered by one MSG_STATUS_REPLY whose TAG_STAT
 *   fields are (dotted key, kind, value) in the daemon's order. They are
 *   printed as "key: value" lines, or nested into one JSON object by
 *   json.h's tree ("workers.0.interpreter" → {"workers":[{"interpreter":…}]}).
 *   Exit 0 when the daemon answers, 3 when it does not run (LSB).
 * - wait: MSG_WAIT, optionally for one package, answered by MSG_DONE once
 *   the queue (or that package's jobs) is drained; it prints nothing.
 *   With --failures (root's, for dpkg's trigger) the daemon then sends the
 *   stored failures of --no-wait requests as MSG_RESULTs and clears them:
 *   printed as compile prints its failures, exit 1 when there were any.
 *   Only this form may start the daemon: it has queued work to replay. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "json.h"
#include "output.h"

static void status_help(void) {
        printf("Usage: " PROGRAM_NAME " [OPTION]... status [--json]\n"
               "Show the state of pycqueued: pid, version, uptime, queue, workers per interpreter,\n"
               "totals, throughput, database, content cache (hits, misses, hit rate, size and\n"
               "bound) and recent errors, as \"key: value\" lines or,\n"
               "with --json, as one JSON object. Never starts the daemon.\n"
               "\n"
               "      --json     print one JSON object\n"
               "  -h, --help     show this help and exit\n"
               "\n"
               "Exit status: 0 the daemon runs, 3 it does not, 5 other error.\n");
}

static void wait_help(void) {
        printf("Usage: " PROGRAM_NAME " [OPTION]... wait [--package=NAME | --failures]\n"
               "Block until the daemon's queue is drained, or only the jobs of package NAME.\n"
               "Never starts the daemon, except with --failures.\n"
               "\n"
               "      --package=NAME  wait only for the jobs requested for NAME\n"
               "      --failures      then print the files that failed in --no-wait requests\n"
               "                      (as \"PATH:LINE: Type: message\" on stderr) and forget\n"
               "                      them; root only (dpkg's trigger runs it)\n"
               "  -h, --help          show this help and exit\n"
               "\n"
               "Exit status: 0 drained (and with --failures, none failed), 1 some queued file\n"
               "failed, 3 the daemon does not run or went away, 4 permission denied, 5 other error.\n");
}

enum {
        OPT_PACKAGE = OPT_VERB_BASE,
        OPT_FAILURES,
};

/* Parses the options of a verb that takes no operands; returns 1 to go on,
 * 0 after --help, or -EXIT_*. */
static int parse_simple(ClientOptions *o, const char *verb, void (*help)(void), const char **ret_package,
                        bool *ret_failures, int argc, char **argv) {
        static const struct option options[] = {
                GLOBAL_LONG_OPTIONS,
                { "package", required_argument, NULL, OPT_PACKAGE },
                { "failures", no_argument, NULL, OPT_FAILURES },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, ":qvh", options, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return -client_getopt_error(verb, c, argv);
                if (client_parse_global_option(o, c, optarg))
                        continue;
                if (c == 'h') {
                        help();
                        return 0;
                }
                if (c == OPT_PACKAGE && ret_package && *optarg) {
                        *ret_package = optarg;
                        continue;
                }
                if (c == OPT_FAILURES && ret_failures) {
                        *ret_failures = true;
                        continue;
                }
                if (c == OPT_PACKAGE && ret_package)
                        output_usage_error(verb, "empty package name");
                else
                        output_usage_error(verb, "unrecognized option '%s'", argv[optind - 1]);
                return -EXIT_USAGE;
        }
        if (optind < argc) {
                output_usage_error(verb, "unexpected argument '%s'", argv[optind]);
                return -EXIT_USAGE;
        }
        if (ret_package && *ret_package && ret_failures && *ret_failures) {
                output_usage_error(verb, "--failures waits for the whole queue: it takes no --package");
                return -EXIT_USAGE;
        }
        return 1;
}

/* Sends @w on a new connection (autostarting only when @autostart);
 * *@ret_c gets it. */
static int send_query(ClientOptions *o, MsgWriter *w, bool autostart, Connection **ret_c) {
        int r;

        if (w->error < 0) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        r = client_connect(o, autostart, ret_c);
        if (r != EXIT_OK)
                return r;
        r = connection_send(*ret_c, w);
        return r < 0 ? client_io_error(r) : EXIT_OK;
}

static int print_stats(const ClientOptions *o, MsgReader *m) {
        _cleanup_(json_tree_freep) JsonTree *tree = NULL;
        MsgField f;
        int r;

        if (o->json && json_tree_new(&tree) < 0) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        while ((r = msg_next(m, &f)) > 0) {
                const uint8_t *value;
                const char *key;
                size_t size;
                char kind;

                if (f.tag != TAG_STAT)
                        continue;
                r = field_stat(&f, &key, &kind, &value, &size);
                if (r < 0)
                        break;
                if (!o->json) {
                        output_status_line(key, kind, value, size);
                        continue;
                }
                r = json_tree_add(tree, key, kind, value, size);
                if (r < 0)
                        break;
        }
        if (r < 0)
                return client_io_error(r == -E2BIG ? -EMSGSIZE : r == -ENOMEM ? r : -EBADMSG);
        if (o->json) {
                json_tree_write(tree, stdout);
                putchar('\n');
        }
        return EXIT_OK;
}

int verb_status(ClientOptions *o, int argc, char **argv) {
        _cleanup_(connection_freep) Connection *c = NULL;
        _cleanup_(msg_writer_done) MsgWriter w = MSG_WRITER_NULL;
        int r;

        r = parse_simple(o, "status", status_help, NULL, NULL, argc, argv);
        if (r <= 0)
                return -r;

        if (msg_writer_init(&w, MSG_STATUS) < 0)
                w.error = -ENOMEM;
        client_put_context(&w, o);
        r = send_query(o, &w, false, &c);
        if (r != EXIT_OK)
                return r;

        for (;;) {
                MsgReader m;

                r = connection_receive(c, &m);
                if (r < 0)
                        return client_io_error(r);
                if (m.type == MSG_STATUS_REPLY)
                        return print_stats(o, &m);
                if (m.type == MSG_ERROR)
                        return client_request_error(&m);
                /* anything else: a newer daemon's message, skipped */
        }
}

/* The replies of wait --failures: a MSG_RESULT per stored failure, then
 * MSG_DONE counting them. */
static int wait_failures_replies(ClientOptions *o, Connection *c) {
        _cleanup_(compile_output_freep) CompileOutput *out = NULL;
        bool saw_failure = false;
        int r;

        r = compile_output_new(o->json, true, false, &out);
        if (r < 0) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        for (;;) {
                FileResult fr;
                MsgReader m;

                r = connection_receive(c, &m);
                if (r < 0)
                        return client_io_error(r);
                switch (m.type) {
                case MSG_RESULT:
                        r = client_parse_result(&m, &fr);
                        if (r < 0 || !fr.source)
                                return client_io_error(-EBADMSG);
                        fr.outcome = OUTCOME_FAILED;
                        saw_failure = true;
                        if (compile_output_result(out, &fr) < 0) {
                                output_error("out of memory");
                                return EXIT_OTHER;
                        }
                        break;
                case MSG_DONE: {
                        CompileCounts counts = {};

                        r = client_parse_counts(&m, NULL, NULL, &counts);
                        if (r < 0)
                                return client_io_error(-EBADMSG);
                        if (o->json)
                                compile_output_summary(out, &counts);
                        return counts.failed > 0 || saw_failure ? EXIT_FILES_FAILED : EXIT_OK;
                }
                case MSG_ERROR:
                        return client_request_error(&m);
                default:
                        break;
                }
        }
}

int verb_wait(ClientOptions *o, int argc, char **argv) {
        _cleanup_(connection_freep) Connection *c = NULL;
        _cleanup_(msg_writer_done) MsgWriter w = MSG_WRITER_NULL;
        const char *package = NULL;
        bool failures = false;
        int r;

        r = parse_simple(o, "wait", wait_help, &package, &failures, argc, argv);
        if (r <= 0)
                return -r;

        if (msg_writer_init(&w, MSG_WAIT) < 0)
                w.error = -ENOMEM;
        client_put_context(&w, o);
        if (package)
                msg_put_string(&w, TAG_PACKAGE, package);
        if (failures)
                msg_put_u64(&w, TAG_COLLECT_FAILURES, 1);
        /* Collecting starts the daemon: the queue it replays at startup
         * and the failures it keeps are what is asked for. */
        r = send_query(o, &w, failures, &c);
        if (r != EXIT_OK)
                return r;
        if (failures)
                return wait_failures_replies(o, c);

        for (;;) {
                MsgReader m;

                r = connection_receive(c, &m);
                if (r < 0)
                        return client_io_error(r);
                if (m.type == MSG_DONE)
                        return EXIT_OK;
                if (m.type == MSG_ERROR)
                        return client_request_error(&m);
        }
}
