/* SPDX-License-Identifier: MIT */
/* pycqueued: command line, configuration, and handing over to the Manager. */

#include <errno.h>
#include <grp.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "util.h"

#define EXIT_USAGE 2

/* Every client connection, worker pipe, pidfd and open source costs a
 * descriptor, and the usual soft limit of 1024 is soon reached under load.
 * The hard limit is what the administrator allows (the unit sets it with
 * LimitNOFILE=); we take it, up to a bound that keeps per-descriptor tables
 * small. Interpreters never see it: the sandbox gives them two descriptors. */
#define NOFILE_MAX 524288

/* Raises the soft RLIMIT_NOFILE to the hard limit (at most NOFILE_MAX).
 * Returns the new soft limit, or a negative errno. */
static int raise_nofile_limit(void) {
        struct rlimit rl;
        rlim_t want;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return negative_errno();
        want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > NOFILE_MAX ? NOFILE_MAX : rl.rlim_max;
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want)
                return rl.rlim_cur > INT32_MAX ? INT32_MAX : (int)rl.rlim_cur;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return negative_errno();
        return (int)want;
}

static void help(void) {
        printf("Usage: pycqueued [OPTION]...\n"
               "The pycqueue daemon: serialises Python byte-compilation on this machine.\n\n"
               "      --socket=PATH        listen on PATH (default %s) unless systemd passes a socket\n"
               "      --state-dir=DIR      state directory (default %s)\n"
               "      --config=FILE        configuration file (default %s; a missing default is fine)\n"
               "      --workers=N          workers per interpreter (default: online CPUs)\n"
               "      --idle-exit=SECONDS  exit after SECONDS without clients or jobs (0 = never)\n"
               "      --log-level=LEVEL    err, warning, notice, info or debug (default info)\n"
               "      --audit[=DIR[:DIR...]] record .pyc files other processes write there (default /usr)\n"
               "      --version            print the version and exit\n"
               "  -h, --help               print this help and exit\n\n"
               "SIGTERM stops accepting, finishes accepted work and exits 0. See pycqueued(8).\n",
               CONFIG_DEFAULT_SOCKET, CONFIG_DEFAULT_STATE_DIR, CONFIG_DEFAULT_PATH);
}

typedef struct Args {
        const char *config_path;
        const char *socket_path;
        const char *state_dir;
        const char *workers;
        const char *idle_exit;
        const char *log_level;
        const char *audit;
} Args;

static int parse_args(int argc, char **argv, Args *a) {
        enum {
                ARG_SOCKET = 0x100,
                ARG_STATE_DIR,
                ARG_CONFIG,
                ARG_WORKERS,
                ARG_IDLE_EXIT,
                ARG_LOG_LEVEL,
                ARG_VERSION,
                ARG_AUDIT
        };
        static const struct option options[] = {
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "workers", required_argument, NULL, ARG_WORKERS },
                { "idle-exit", required_argument, NULL, ARG_IDLE_EXIT },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "version", no_argument, NULL, ARG_VERSION },
                { "audit", optional_argument, NULL, ARG_AUDIT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_SOCKET:
                        a->socket_path = optarg;
                        break;
                case ARG_STATE_DIR:
                        a->state_dir = optarg;
                        break;
                case ARG_CONFIG:
                        a->config_path = optarg;
                        break;
                case ARG_WORKERS:
                        a->workers = optarg;
                        break;
                case ARG_IDLE_EXIT:
                        a->idle_exit = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        a->log_level = optarg;
                        break;
                case ARG_AUDIT:
                        a->audit = optarg ? optarg : "/usr";
                        break;
                case ARG_VERSION:
                        printf("pycqueued %s\n", PACKAGE_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'pycqueued --help' for more information.\n");
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "pycqueued: unexpected argument '%s'\nTry 'pycqueued --help'.\n",
                        argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int apply(Config *c, const char *key, const char *value, const char *option) {
        int r;

        if (!value)
                return 0;
        r = config_set(c, key, value);
        if (r < 0)
                fprintf(stderr, "pycqueued: invalid value '%s' for %s\n", value, option);
        return r;
}

/* @p, made absolute against the working directory we are about to leave. */
static char *absolute_path(const char *p) {
        _cleanup_free_ char *cwd = NULL;

        if (p[0] == '/')
                return strdup(p);
        cwd = getcwd(NULL, 0);
        return cwd ? path_join(cwd, p) : NULL;
}

static int run(int argc, char **argv) {
        _cleanup_free_ char *error = NULL;
        Args a = {};
        Config config;
        Manager *m = NULL;
        int r;

        r = parse_args(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        config_init(&config);
        r = config_load_file(&config, a.config_path ? a.config_path : CONFIG_DEFAULT_PATH,
                             a.config_path != NULL, &error);
        if (r < 0) {
                fprintf(stderr, "pycqueued: %s\n", error ? error : strerror(-r));
                config_done(&config);
                return EXIT_USAGE;
        }
        if (apply(&config, "workers", a.workers, "--workers") < 0 ||
            apply(&config, "idle_exit", a.idle_exit, "--idle-exit") < 0 ||
            apply(&config, "log_level", a.log_level, "--log-level") < 0 ||
            apply(&config, "audit_roots", a.audit, "--audit") < 0) {
                config_done(&config);
                return EXIT_USAGE;
        }
        config.socket_path = absolute_path(a.socket_path ? a.socket_path : CONFIG_DEFAULT_SOCKET);
        config.state_dir = absolute_path(a.state_dir ? a.state_dir : CONFIG_DEFAULT_STATE_DIR);
        if (!config.socket_path || !config.state_dir) {
                config_done(&config);
                return EXIT_FAILURE;
        }
        /* Started by hand from inside an installer's target, the daemon
         * must not keep it busy as its working directory. */
        if (chdir("/") < 0)
                log_warning_errno(-errno, "Cannot change to /: %m");
        log_set_max_level(config.log_level);

        r = raise_nofile_limit();
        if (r < 0)
                log_warning_errno(r, "Cannot raise the limit of open files: %m");
        else
                log_debug("Open files limit: %d", r);

        /* Whatever groups the starting shell had are no business of the
         * daemon's: it keeps none (and a thread that served a caller with
         * that caller's groups returns to none, see fsid.c). */
        if (geteuid() == 0 && setgroups(0, NULL) < 0)
                log_warning_errno(-errno, "Cannot drop supplementary groups: %m");

        if (mkdir(config.state_dir, 0700) < 0 && errno != EEXIST)
                log_warning_errno(-errno, "Cannot create state directory %s: %m", config.state_dir);

        r = manager_new(&config, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to start: %m");
                config_done(&config);
                return EXIT_FAILURE;
        }
        r = manager_run(m);
        manager_free(m);
        config_done(&config);
        if (r < 0) {
                log_error_errno(r, "Failed: %m");
                return EXIT_FAILURE;
        }
        return r;
}

int main(int argc, char **argv) {
        log_setup("pycqueued", !isatty(STDERR_FILENO));
        /* Under journald, log through its native protocol: structured
         * fields, and paths kept as the bytes they are. The stream check
         * (not just "is stderr a socket") is what systemd documents: a
         * stderr redirected elsewhere by whoever started us does not match. */
        if (log_stream_is_journal(STDERR_FILENO))
                log_set_journal(sd_journal_sendv);
        return run(argc, argv);
}
