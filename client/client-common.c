/* SPDX-License-Identifier: MIT */
/* What every client program shares (pycqueue and the py3compile front-ends):
 * the global options, connecting with one message and one exit code per
 * failure, the client context of a request, and making operands absolute.
 * Moved out of main.c unchanged so that the front-ends link the same code
 * (libclient.a) instead of carrying a copy. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "output.h"
#include "util.h"
/* The command line is context for provenance; the daemon also reads
 * /proc/PID/cmdline, so a huge one (thousands of paths) is cut here rather
 * than doubling the request. */
#define CONTEXT_MAX_ARGV_BYTES (64u * 1024u)

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
        const char *script = getenv("DPKG_MAINTSCRIPT_NAME");
        size_t budget = CONTEXT_MAX_ARGV_BYTES;

        msg_put_string(w, TAG_CTX_TOOL, o->tool ? o->tool : PROGRAM_NAME);
        if (pkg && *pkg)
                msg_put_string(w, TAG_CTX_DPKG_PACKAGE, pkg);
        if (script && *script)
                msg_put_string(w, TAG_CTX_DPKG_SCRIPT, script);
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

/* Looks @name up along PATH as seen inside @root; returns the path inside. */
static int find_executable_in_root(const char *root, const char *name, char **ret) {
        const char *path = getenv("PATH");

        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                size_t n = strcspn(path, ":");
                _cleanup_free_ char *inside = NULL, *outside = NULL;
                struct stat st;

                if (n > 0 && path[0] == '/') {
                        if (asprintf(&inside, "%.*s/%s", (int)n, path, name) < 0)
                                return -ENOMEM;
                        outside = path_join(root, inside);
                        if (!outside)
                                return -ENOMEM;
                        if (stat(outside, &st) == 0 && S_ISREG(st.st_mode) && access(outside, X_OK) == 0) {
                                *ret = TAKE_PTR(inside);
                                return 0;
                        }
                }
                path += n;
                if (*path == ':')
                        path++;
        }
        return -ENOENT;
}

int client_parse_root(const char *verb, const char *arg, char **root) {
        int r;

        if (!*arg) {
                output_usage_error(verb, "empty --root directory");
                return -EXIT_USAGE;
        }
        free(*root);
        *root = NULL;
        r = client_path_absolute(arg, root);
        if (r < 0) {
                errno = -r;
                output_error("cannot make '%s' absolute: %m", arg);
                return -EXIT_OTHER;
        }
        return 1;
}

int client_find_executable(const char *root, const char *name, char **ret) {
        if (!root)
                return find_executable(name, ret);
        if (strchr(name, '/')) {
                if (name[0] != '/')
                        return -EINVAL; /* relative to what, inside the root? */
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        return find_executable_in_root(root, name, ret);
}

int client_paths_absolute(const char *verb, const char *root, int n, char **args, char ***paths,
                          size_t *n_paths) {
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
                if (root && args[i][0] != '/') {
                        /* Our working directory is not one inside the root. */
                        output_usage_error(
                                verb, "with --root, PATH must be absolute (as seen inside the root): %s",
                                args[i]);
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
