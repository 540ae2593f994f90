/* SPDX-License-Identifier: MIT */
/* pycqueue: the command-line client of pycqueued.
 *
 * main() parses the global options up to the verb, then hands the rest of
 * the command line to the verb, whose parser accepts the global options too.
 * A verb connects (compile and the admin verbs may start the daemon; status
 * and wait never do), sends one request carrying the client context, reads
 * replies until the one that ends the request, and returns one of the exit
 * codes pycqueue(1) documents: 0 ok, 1 some file failed, 2 usage, 3 daemon unreachable, 4 permission
 * denied, 5 anything else. The helpers here map every connection and
 * request failure to one message and one exit code, so the verbs agree. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "output.h"
#include "util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static void help(void) {
        printf("Usage: " PROGRAM_NAME " [OPTION]... VERB [ARG]...\n"
               "Byte-compile Python sources through the pycqueued daemon.\n"
               "\n"
               "Verbs:\n"
               "  compile PATH...     compile files and directories (recursively)\n"
               "  wait                block until the daemon's queue is drained\n"
               "  status              show the daemon's state\n"
               "  why PATH            who wrote this .pyc (or the .pyc of this source), and when\n"
               "  history [PATH]      the log of compile jobs, newest first\n"
               "  verify [PATH...]    find corrupt, stale, foreign, orphaned and missing .pyc files\n"
               "  repair [PATH...]    recompile or remove what verify finds\n"
               "  clean PATH...       remove .pyc files, like py3clean\n"
               "  audit               .pyc files written behind the daemon's back\n"
               "\n"
               "Options (also accepted after the verb):\n"
               "      --socket=PATH   daemon socket (default: $PYCQUEUE_SOCKET, else " DEFAULT_SOCKET_PATH
               ")\n"
               "      --json          print the result as JSON (an object, or an array of records)\n"
               "  -q, --quiet         no summary line and no progress line\n"
               "  -v, --verbose       one line per file\n"
               "      --no-autostart  do not start pycqueued when nothing listens\n"
               "  -h, --help          show this help and exit\n"
               "      --version       show the version and exit\n"
               "\n"
               "Exit status: 0 ok, 1 some file failed (compile, repair), a problem found (verify)\n"
               "or never written (why), 2 usage error, 3 daemon not running, 4 permission denied,\n"
               "5 other error.\n"
               "Run '" PROGRAM_NAME " VERB --help' for a verb's options; see pycqueue(1).\n");
}

/* So that no socket or status pipe ever lands on fd 0, 1 or 2. */
static void ensure_std_fds(void) {
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
                        (void)open("/dev/null", O_RDWR | O_NOCTTY); /* lowest free fd: @fd */
}

static int run_verb(ClientOptions *o, int argc, char **argv) {
        static const struct {
                const char *name;
                int (*run)(ClientOptions *o, int argc, char **argv);
        } verbs[] = {
                /* clang-format off */
                { "compile", verb_compile },
                { "status", verb_status },
                { "wait", verb_wait },
                { "why", verb_why },
                { "history", verb_history },
                { "verify", verb_verify },
                { "repair", verb_repair },
                { "clean", verb_clean },
                { "audit", verb_audit },
                /* clang-format on */
        };

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(argv[0], verbs[i].name) == 0)
                        return verbs[i].run(o, argc, argv);
        output_usage_error(NULL, "unknown verb '%s'", argv[0]);
        return EXIT_USAGE;
}

static int parse_global(ClientOptions *o, int argc, char **argv) {
        static const struct option options[] = {
                GLOBAL_LONG_OPTIONS,
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_GLOBAL_VERSION },
                {},
        };
        int c;

        opterr = 0;
        /* '+': stop at the verb, whose own options follow it. */
        while ((c = getopt_long(argc, argv, "+:qvh", options, NULL)) >= 0) {
                if (client_parse_global_option(o, c, optarg))
                        continue;
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case OPT_GLOBAL_VERSION:
                        printf(PROGRAM_NAME " " PACKAGE_VERSION "\n");
                        return 0;
                default:
                        return -client_getopt_error(NULL, c, argv);
                }
        }
        if (optind >= argc) {
                output_usage_error(NULL, "missing verb (compile, wait, status, why, history, verify, "
                                         "repair, clean or audit)");
                return -EXIT_USAGE;
        }
        return 1;
}

/* Flushes stdout: output that was lost turns success into failure. */
static int finish(int exit_code) {
        int r = output_flush();

        if (r < 0 && r != -EPIPE) {
                errno = -r;
                output_error("cannot write the output: %m");
        }
        return r < 0 && exit_code == EXIT_OK ? EXIT_OTHER : exit_code;
}

int main(int argc, char **argv) {
        ClientOptions o = { .autostart = true, .argc = argc, .argv = argv };
        int r, verb_index;

        ensure_std_fds();
        /* A daemon that goes away must show up as EPIPE on a send, not kill us. */
        signal(SIGPIPE, SIG_IGN);

        r = parse_global(&o, argc, argv);
        if (r <= 0)
                return finish(r < 0 ? -r : EXIT_OK);
        verb_index = optind;

        if (!o.socket_path) {
                const char *e = getenv("PYCQUEUE_SOCKET");
                o.socket_path = e && *e ? e : DEFAULT_SOCKET_PATH;
        }

        optind = 0; /* glibc: a full re-initialisation for the verb's parser */
        return finish(run_verb(&o, argc - verb_index, argv + verb_index));
}
