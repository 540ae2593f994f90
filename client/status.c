/* SPDX-License-Identifier: MIT */
/* The read-only verbs, open to every local user, which never start the
 * daemon (a status query must not change what it reports):
 *
 * - status: MSG_STATUS, answered by one MSG_STATUS_REPLY whose TAG_STAT
 *   fields are (dotted key, kind, value) in the daemon's order. They are
 *   kept as received (status-view.h) and shown as a block for people
 *   (status-view.c), or nested into one JSON object by json.h's tree
 *   ("workers.0.interpreter" → {"workers":[{"interpreter":…}]}).
 *   Exit 0 when the daemon answers, 3 when it does not run or cannot be
 *   reached (LSB); never 4, since every user may ask.
 *   --watch draws over the previous block on a terminal, until a signal
 *   ends it with exit 0. It asks again, over a new connection each time,
 *   when the daemon says on the system bus that something changed
 *   (status-bus.c), and at the latest every interval; without a bus, or
 *   once the bus went away, every interval. The block always comes from
 *   the socket: the bus is only the wake-up, so a watch shows the same
 *   fields with and without one, and GetStatus()'s dictionary needs no
 *   second reader here.
 * - wait: MSG_WAIT, optionally for one package, answered by MSG_DONE once
 *   the queue (or that package's jobs) is drained; it prints nothing.
 *   With --failures (root's, for dpkg's trigger) the daemon then sends the
 *   stored failures of --no-wait requests as MSG_RESULTs and clears them:
 *   printed as compile prints its failures, exit 1 when there were any.
 *   Only this form may start the daemon: it has queued work to replay. */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "json.h"
#include "output.h"
#include "status-bus.h"
#include "status-view.h"
#include "util.h"

static void status_help(void) {
        printf("Usage: " PROGRAM_NAME
               " [OPTION]... status [--json] [--watch [--interval=SECONDS]] [--no-color]\n"
               "Show the state of pycqueued as a short block: state, uptime and how it was started,\n"
               "pid, queue, one line per interpreter's workers, totals, throughput, content cache,\n"
               "database and its health, and the last errors. With --json, everything the daemon\n"
               "reports as one JSON object (the keys are listed in pycqueue(1)). Never starts the\n"
               "daemon.\n"
               "\n"
               "      --json             print one JSON object\n"
               "      --watch            refresh until interrupted (with --json: one object a line)\n"
               "      --interval=SECONDS time between refreshes (default 1, 0.1 to 3600); when the\n"
               "                         daemon is on the system bus, it refreshes on each change\n"
               "                         and this is only the longest time between refreshes\n"
               "      --no-color         no colour, even on a terminal (as $NO_COLOR does)\n"
               "  -h, --help             show this help and exit\n"
               "\n"
               "Exit status: 0 the daemon runs (and --watch was interrupted), 3 it does not run or\n"
               "cannot be reached, 2 usage error, 5 other error.\n");
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
        OPT_WATCH,
        OPT_INTERVAL,
        OPT_NO_COLOR,
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

/* --- status ------------------------------------------------------------- */

#define STATUS_WATCH_DEFAULT_USEC (1000u * 1000u)
#define STATUS_WATCH_MIN_USEC (100u * 1000u)
#define STATUS_WATCH_MAX_USEC (3600ull * 1000u * 1000u)
/* Without a bus, how often the watch tries to connect to one again: a
 * failed connect(2) is cheap, but a bus that accepts and then does not
 * answer costs the bounded wait of status_bus_open(). */
#define STATUS_WATCH_BUS_RETRY_USEC (5000u * 1000u)

typedef struct StatusArgs {
        bool watch;
        bool no_color;
        uint64_t interval_usec; /* 0: not given */
} StatusArgs;

static int parse_interval(const char *arg, uint64_t *ret) {
        char *end;
        double d;

        errno = 0;
        d = strtod(arg, &end);
        if (errno != 0 || end == arg || *end != '\0' || !(d * 1e6 >= STATUS_WATCH_MIN_USEC) ||
            d * 1e6 > (double)STATUS_WATCH_MAX_USEC)
                return -EINVAL;
        *ret = (uint64_t)(d * 1e6);
        return 0;
}

/* Returns 1 to go on, 0 after --help, or -EXIT_*. */
static int parse_status(ClientOptions *o, StatusArgs *a, int argc, char **argv) {
        static const struct option options[] = {
                GLOBAL_LONG_OPTIONS,
                { "watch", no_argument, NULL, OPT_WATCH },
                { "interval", required_argument, NULL, OPT_INTERVAL },
                { "no-color", no_argument, NULL, OPT_NO_COLOR },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, ":qvh", options, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return -client_getopt_error("status", c, argv);
                if (client_parse_global_option(o, c, optarg))
                        continue;
                switch (c) {
                case 'h':
                        status_help();
                        return 0;
                case OPT_WATCH:
                        a->watch = true;
                        break;
                case OPT_NO_COLOR:
                        a->no_color = true;
                        break;
                case OPT_INTERVAL:
                        if (parse_interval(optarg, &a->interval_usec) < 0) {
                                output_usage_error("status", "invalid interval '%s' (seconds, 0.1 to 3600)",
                                                   optarg);
                                return -EXIT_USAGE;
                        }
                        break;
                default:
                        output_usage_error("status", "unrecognized option '%s'", argv[optind - 1]);
                        return -EXIT_USAGE;
                }
        }
        if (optind < argc) {
                output_usage_error("status", "unexpected argument '%s'", argv[optind]);
                return -EXIT_USAGE;
        }
        if (a->interval_usec > 0 && !a->watch) {
                output_usage_error("status", "--interval is for --watch");
                return -EXIT_USAGE;
        }
        return 1;
}

/* Copies the TAG_STAT fields of a MSG_STATUS_REPLY into @ret. */
static int read_status_reply(MsgReader *m, StatusFields *ret) {
        MsgField f;
        int r;

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
                r = status_fields_add(ret, key, kind, value, size);
                if (r < 0)
                        break;
        }
        if (r == -ENOMEM)
                return r;
        return r < 0 ? (r == -E2BIG ? -EMSGSIZE : -EBADMSG) : 0;
}

/* Status is open to every local user: the daemon never refuses it. What
 * could still say "permission denied" (a socket in a directory the caller
 * may not enter) means that the daemon cannot be reached: 3, not 4. */
static int status_exit_code(int r) {
        return r == EXIT_PERMISSION ? EXIT_UNREACHABLE : r;
}

/* The next status, from the daemon's socket: one MSG_STATUS on a new
 * connection. With @report, a
 * failure is printed on stderr, as any verb does; without, *@ret_reason
 * says why, for the block. Returns the exit code. */
static int status_fetch(ClientOptions *o, bool report, StatusFields *ret, char **ret_reason) {
        _cleanup_(connection_freep) Connection *c = NULL;
        _cleanup_(msg_writer_done) MsgWriter w = MSG_WRITER_NULL;
        ConnectStep step;
        MsgReader m;
        int r;

        if (msg_writer_init(&w, MSG_STATUS) < 0)
                w.error = -ENOMEM;
        client_put_context(&w, o);
        if (w.error < 0) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        if (report) {
                r = client_connect(o, false, &c);
                if (r != EXIT_OK)
                        return status_exit_code(r);
        } else {
                r = connection_open(o->socket_path, NULL, &step, &c);
                if (r < 0) {
                        errno = -r;
                        if (asprintf(ret_reason, "%s",
                                     r == -ENOENT || r == -ECONNREFUSED ? "nothing listens on the socket"
                                                                        : strerror(-r)) < 0)
                                *ret_reason = NULL;
                        return EXIT_UNREACHABLE;
                }
        }

        r = connection_send(c, &w);
        while (r >= 0) {
                r = connection_receive(c, &m);
                if (r < 0)
                        break;
                if (m.type == MSG_STATUS_REPLY) {
                        r = read_status_reply(&m, ret);
                        if (r >= 0)
                                return EXIT_OK;
                        break;
                }
                if (m.type == MSG_ERROR) {
                        if (report)
                                return status_exit_code(client_request_error(&m));
                        *ret_reason = strdup("the daemon refused the request");
                        return EXIT_OTHER;
                }
                /* anything else: a newer daemon's message, skipped */
        }
        if (r == -ENOMEM) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        if (report)
                return status_exit_code(client_io_error(r));
        *ret_reason = strdup(r == -ECONNRESET || r == -EPIPE ? "the connection ended" : strerror(-r));
        return r == -ECONNRESET || r == -EPIPE ? EXIT_UNREACHABLE : EXIT_OTHER;
}

static int print_json(const StatusFields *s, FILE *f) {
        _cleanup_(json_tree_freep) JsonTree *tree = NULL;
        int r;

        r = json_tree_new(&tree);
        for (size_t i = 0; r >= 0 && i < s->n; i++)
                r = json_tree_add(tree, s->fields[i].key, s->fields[i].kind, s->fields[i].value,
                                  s->fields[i].size);
        if (r == -ENOMEM) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        if (r < 0)
                return client_io_error(r == -E2BIG ? -EMSGSIZE : -EBADMSG);
        json_tree_write(tree, f);
        fputc('\n', f);
        return EXIT_OK;
}

static uint64_t realtime_usec(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --watch on a terminal hides the cursor, and whatever ends the watch shows
 * it again. A signal ends the watch from its handler, with exit status 0:
 * the loop may be inside an exchange with a daemon that does not answer,
 * and the user asked to stop. */
#define ANSI_SHOW_CURSOR "\033[0m\033[?25h"
#define ANSI_HIDE_CURSOR "\033[?25l"
#define ANSI_HOME_AND_CLEAR "\033[H\033[J"

static volatile sig_atomic_t watch_cursor_hidden;

static void watch_on_signal(int sig) {
        static const char show[] = ANSI_SHOW_CURSOR "\n";

        if (watch_cursor_hidden)
                (void)!write(STDOUT_FILENO, show, sizeof(show) - 1);
        _exit(EXIT_OK);
}

static void watch_sleep(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t)(usec / 1000000u),
                               .tv_nsec = (long)(usec % 1000000u) * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Waits until the next refresh is due: on a change the bus announces, or
 * after @interval. Changes closer together than STATUS_WATCH_MIN_USEC are
 * drawn as one (a burst of signals is one refresh). Without a bus, tries
 * to get one now and then; a bus that goes away is dropped, and that is a
 * reason to look at once. */
static void watch_wait(StatusBus **bus, uint64_t *bus_retry_at, uint64_t interval) {
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        int r;

        if (!*bus) {
                watch_sleep(interval);
                if (now_usec(CLOCK_MONOTONIC) >= *bus_retry_at) {
                        (void)status_bus_open(bus); /* *bus stays NULL on failure */
                        *bus_retry_at = now_usec(CLOCK_MONOTONIC) + STATUS_WATCH_BUS_RETRY_USEC;
                }
                return;
        }
        r = status_bus_wait(*bus, interval, false);
        if (r > 0) {
                uint64_t waited = now_usec(CLOCK_MONOTONIC) - start;

                if (waited < STATUS_WATCH_MIN_USEC)
                        r = status_bus_wait(*bus, STATUS_WATCH_MIN_USEC - waited, true);
        }
        if (r < 0) {
                *bus = status_bus_free(*bus);
                *bus_retry_at = now_usec(CLOCK_MONOTONIC) + STATUS_WATCH_BUS_RETRY_USEC;
        }
}

/* Draws one refresh: on a terminal over the previous one, elsewhere
 * appended (a blank line between blocks; with --json one object a line,
 * {"state":"not running"} while nothing listens, {"state":"unreachable"}
 * while the daemon does not answer otherwise). */
static int watch_draw(ClientOptions *o, bool in_place, bool color, bool first, const StatusFields *s,
                      const char *reason, bool not_running) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (o->json) {
                int r = EXIT_OK;

                if (!reason)
                        r = print_json(s, stdout);
                else
                        fputs(not_running ? "{\"state\":\"not running\"}\n"
                                          : "{\"state\":\"unreachable\"}\n",
                              stdout);
                fflush(stdout);
                return r;
        }
        /* One write per refresh: no half-drawn block on the screen. */
        f = open_memstream(&buf, &size);
        if (!f) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        if (in_place)
                fputs(ANSI_HOME_AND_CLEAR, f);
        else if (!first)
                fputc('\n', f);
        if (!reason)
                status_view_print(f, s, color, realtime_usec());
        else
                status_view_print_unreachable(f, o->socket_path, not_running, reason, color);
        if (fclose(f) != 0) {
                output_error("out of memory");
                return EXIT_OTHER;
        }
        fwrite(buf, 1, size, stdout);
        fflush(stdout);
        return EXIT_OK;
}

/* Refreshes on every change @bus announces and at the latest every
 * interval, until a signal ends it (exit 0, see above), or an error that is
 * not the daemon's absence. The daemon may stop and start again while
 * watched: that is shown, and the watch goes on. @bus is consumed; NULL
 * when there is none. */
static int status_watch(ClientOptions *o, const StatusArgs *a, StatusFields *s, StatusBus *bus_arg) {
        _cleanup_(status_bus_freep) StatusBus *bus = bus_arg;
        uint64_t bus_retry_at = now_usec(CLOCK_MONOTONIC) + STATUS_WATCH_BUS_RETRY_USEC;
        const char *term = getenv("TERM");
        bool in_place = !o->json && isatty(STDOUT_FILENO) == 1 && !(term && strcmp(term, "dumb") == 0);
        bool color = !o->json && status_view_use_color(STDOUT_FILENO, a->no_color);
        uint64_t interval = a->interval_usec > 0 ? a->interval_usec : STATUS_WATCH_DEFAULT_USEC;
        struct sigaction sa = { .sa_handler = watch_on_signal };
        _cleanup_free_ char *reason = NULL;
        bool not_running = false;
        int r;

        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        (void)sigaction(SIGHUP, &sa, NULL);
        if (in_place) {
                watch_cursor_hidden = true;
                fputs(ANSI_HIDE_CURSOR, stdout);
        }

        for (bool first = true;; first = false) {
                r = watch_draw(o, in_place, color, first, s, reason, not_running);
                if (r != EXIT_OK)
                        break;
                watch_wait(&bus, &bus_retry_at, interval);
                status_fields_done(s);
                free(reason);
                reason = NULL;
                r = status_fetch(o, false, s, &reason);
                if (r != EXIT_OK && !reason) {
                        r = EXIT_OTHER; /* out of memory, said */
                        break;
                }
                not_running = r == EXIT_UNREACHABLE;
        }
        if (watch_cursor_hidden) {
                fputs(ANSI_SHOW_CURSOR, stdout);
                watch_cursor_hidden = false;
        }
        return r;
}

int verb_status(ClientOptions *o, int argc, char **argv) {
        _cleanup_(status_fields_done) StatusFields s = {};
        _cleanup_(status_bus_freep) StatusBus *bus = NULL;
        StatusArgs a = {};
        int r;

        r = parse_status(o, &a, argc, argv);
        if (r <= 0)
                return -r;

        /* Subscribed before the first fetch, so that no change falls
         * between what is first drawn and the first signal. */
        if (a.watch)
                (void)status_bus_open(&bus); /* none: the watch polls */
        r = status_fetch(o, true, &s, NULL);
        if (r != EXIT_OK)
                return r;
        if (a.watch)
                return status_watch(o, &a, &s, TAKE_PTR(bus));
        if (o->json)
                return print_json(&s, stdout);
        status_view_print(stdout, &s, status_view_use_color(STDOUT_FILENO, a.no_color), realtime_usec());
        return EXIT_OK;
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
