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

/* The command line is context for provenance; the daemon also reads
 * /proc/PID/cmdline, so a huge one (thousands of paths) is cut here rather
 * than doubling the request. */
#define CONTEXT_MAX_ARGV_BYTES (64u * 1024u)

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

bool client_parse_global_option(ClientOptions *o, int opt, const char *arg) {
        switch (opt) {
        case OPT_GLOBAL_SOCKET:
                o->socket_path = arg;
                return true;
        case OPT_GLOBAL_JSON:
                o->json = true;
                return true;
        case 'q':
                o->quiet = true;
                o->verbose = false;
                return true;
        case 'v':
                o->verbose = true;
                o->quiet = false;
                return true;
        case OPT_GLOBAL_NO_AUTOSTART:
                o->autostart = false;
                return true;
        default:
                return false;
        }
}

int client_getopt_error(const char *verb, int opt, char **argv) {
        const char *arg = optind > 0 ? argv[optind - 1] : "";

        if (opt == ':')
                output_usage_error(verb, "option '%s' requires an argument", arg);
        else if (strncmp(arg, "--", 2) == 0 && strchr(arg, '=') && optopt != 0)
                output_usage_error(verb, "option '%.*s' does not take an argument", (int)strcspn(arg, "="),
                                   arg);
        else if (strncmp(arg, "--", 2) == 0)
                output_usage_error(verb, "unrecognized option '%s'", arg);
        else
                output_usage_error(verb, "invalid option -- '%c'", optopt);
        return EXIT_USAGE;
}

static int report_connect_failure(const ClientOptions *o, ConnectStep step, int r) {
        const char *path = o->socket_path;

        errno = -r;
        switch (step) {
        case CONNECT_STEP_CONNECT:
                if (r == -ENOENT || r == -ECONNREFUSED)
                        output_error("pycqueued is not running (nothing listens on %s)", path);
                else if (r == -EACCES || r == -EPERM) {
                        output_error("permission denied: cannot connect to %s", path);
                        return EXIT_PERMISSION;
                } else if (r == -ENAMETOOLONG) {
                        output_error("socket path too long (at most %zu bytes): %s",
                                     sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1, path);
                        return EXIT_USAGE;
                } else
                        output_error("cannot connect to %s: %m", path);
                break;
        case CONNECT_STEP_MKDIR:
                output_error("cannot start pycqueued: cannot create the directory of %s: %m", path);
                break;
        case CONNECT_STEP_LOCK:
                if (r == -ETIMEDOUT)
                        output_error("cannot start pycqueued: another client held %s.lock for %u s", path,
                                     AUTOSTART_LOCK_TIMEOUT_USEC / 1000000u);
                else
                        output_error("cannot start pycqueued: cannot lock %s.lock: %m", path);
                break;
        case CONNECT_STEP_SPAWN:
                output_error("cannot start pycqueued: cannot execute %s: %m", connection_daemon_path());
                break;
        case CONNECT_STEP_STARTUP:
                if (r == -ESRCH)
                        output_error("%s exited before listening on %s; run it by hand to see why",
                                     connection_daemon_path(), path);
                else if (r == -ETIMEDOUT)
                        output_error("%s did not listen on %s within %u s", connection_daemon_path(), path,
                                     AUTOSTART_TIMEOUT_USEC / 1000000u);
                else
                        output_error("cannot connect to %s: %m", path);
                break;
        }
        return EXIT_UNREACHABLE;
}

int client_connect(const ClientOptions *o, bool autostart, Connection **ret) {
        ConnectStep step;
        int r;

        if (!*o->socket_path) {
                output_usage_error(NULL, "the socket path is empty");
                return EXIT_USAGE;
        }
        r = connection_open(o->socket_path, autostart && o->autostart ? connection_daemon_path() : NULL,
                            &step, ret);
        if (r < 0)
                return report_connect_failure(o, step, r);
        return EXIT_OK;
}

void client_put_context(MsgWriter *w, const ClientOptions *o) {
        const char *pkg = getenv("DPKG_MAINTSCRIPT_PACKAGE");
        size_t budget = CONTEXT_MAX_ARGV_BYTES;

        msg_put_string(w, TAG_CTX_TOOL, PROGRAM_NAME);
        if (pkg && *pkg)
                msg_put_string(w, TAG_CTX_DPKG_PACKAGE, pkg);
        for (int i = 0; i < o->argc; i++) {
                size_t n = strlen(o->argv[i]);
                if (n > budget)
                        break;
                budget -= n;
                msg_put_bytes(w, TAG_CTX_ARGV, o->argv[i], n);
        }
}

int client_request_error(MsgReader *m) {
        _cleanup_free_ char *message = NULL;
        uint64_t error = EIO;
        MsgField f;

        while (msg_next(m, &f) > 0) {
                if (f.tag == TAG_ERRNO)
                        (void)field_u64(&f, &error);
                else if (f.tag == TAG_ERROR_MESSAGE && !message)
                        (void)field_strdup(&f, &message);
        }
        if (error == 0 || error > INT16_MAX)
                error = EIO;
        if (!message || !*message) {
                free(message);
                message = strdup(strerror((int)error));
        }

        if (error == EPERM || error == EACCES) {
                output_error("permission denied: %s", message ? message : "");
                return EXIT_PERMISSION;
        }
        output_error("%s", message ? message : "request failed");
        return EXIT_OTHER;
}

int client_io_error(int r) {
        errno = -r;
        if (r == -ECONNRESET || r == -EPIPE) {
                output_error("lost the connection to pycqueued before the request completed");
                return EXIT_UNREACHABLE;
        }
        if (r == -EMSGSIZE || r == -EBADMSG) {
                output_error("malformed reply from pycqueued: %m");
                return EXIT_OTHER;
        }
        if (r == -EPROTONOSUPPORT) {
                output_error("pycqueued speaks another protocol version than this client (%d)",
                             PROTOCOL_VERSION);
                return EXIT_OTHER;
        }
        output_error("communication with pycqueued failed: %m");
        return EXIT_OTHER;
}

int client_path_absolute(const char *path, char **ret) {
        _cleanup_free_ char *cwd = NULL;

        if (path_is_absolute(path)) {
                *ret = strdup(path);
                return *ret ? 0 : -ENOMEM;
        }
        cwd = getcwd(NULL, 0);
        if (!cwd)
                return negative_errno();
        /* "." is the directory itself: keep the path the user will read clean. */
        *ret = strcmp(path, ".") == 0 ? TAKE_PTR(cwd) : path_join(cwd, path);
        return *ret ? 0 : -ENOMEM;
}

int client_paths_absolute(const char *verb, int n, char **args, char ***paths, size_t *n_paths) {
        *paths = calloc((size_t)n, sizeof(char *));
        if (!*paths) {
                output_error("out of memory");
                return -EXIT_OTHER;
        }
        for (int i = 0; i < n; i++) {
                int r;

                if (!*args[i]) {
                        output_usage_error(verb, "empty PATH");
                        return -EXIT_USAGE;
                }
                r = client_path_absolute(args[i], &(*paths)[*n_paths]);
                if (r < 0) {
                        errno = -r;
                        output_error("cannot make the path absolute: %m");
                        return -EXIT_OTHER;
                }
                (*n_paths)++;
        }
        return 1;
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
