/* SPDX-License-Identifier: MIT */
#pragma once

/* What the verbs of pycqueue share: the global options, the exit codes
 * (listed in pycqueue(1), EXIT STATUS), and one entry point per verb. A verb returns an exit code;
 * it has printed whatever the user needs to know about a failure. */

#include <stdbool.h>

#include "connection.h"
#include "output.h"
#include "protocol.h"

#define PROGRAM_NAME "pycqueue"
#define DEFAULT_SOCKET_PATH "/run/pycqueue/socket"

typedef enum ExitCode {
        EXIT_OK = 0,
        EXIT_FILES_FAILED = 1, /* some file failed to compile */
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3, /* daemon not running or connection lost */
        EXIT_PERMISSION = 4,
        EXIT_OTHER = 5,
} ExitCode;

typedef struct ClientOptions {
        const char *socket_path; /* resolved: --socket, $PYCQUEUE_SOCKET or the default */
        bool json;
        bool quiet;
        bool verbose;
        bool autostart;
        const char *tool; /* TAG_CTX_TOOL; NULL: PROGRAM_NAME */
        int argc;         /* the whole command line, sent as context */
        char **argv;
} ClientOptions;

/* Global options may also follow the verb ("pycqueue status --json"):
 * every verb's getopt table includes GLOBAL_LONG_OPTIONS and "qv" and hands
 * what it does not know itself to client_parse_global_option(), which
 * returns true when it consumed @opt. */
enum {
        OPT_GLOBAL_SOCKET = 0x1000,
        OPT_GLOBAL_JSON,
        OPT_GLOBAL_NO_AUTOSTART,
        OPT_GLOBAL_VERSION,
        OPT_VERB_BASE = 0x1100, /* verbs number their long-only options from here */
};
/* clang-format off */
#define GLOBAL_LONG_OPTIONS \
        { "socket", required_argument, NULL, OPT_GLOBAL_SOCKET }, \
        { "json", no_argument, NULL, OPT_GLOBAL_JSON }, \
        { "quiet", no_argument, NULL, 'q' }, \
        { "verbose", no_argument, NULL, 'v' }, \
        { "no-autostart", no_argument, NULL, OPT_GLOBAL_NO_AUTOSTART }
/* clang-format on */
bool client_parse_global_option(ClientOptions *o, int opt, const char *arg);

/* Reports a getopt failure ('?' or ':') with the usage hint for @verb (NULL
 * for the global parser); returns EXIT_USAGE. */
int client_getopt_error(const char *verb, int opt, char **argv);

/* Connects to the daemon, starting it when @autostart and nothing listens.
 * On failure prints why and returns the exit code; EXIT_OK on success. */
int client_connect(const ClientOptions *o, bool autostart, Connection **ret);
/* Adds the client context (tool, dpkg package and maintainer script,
 * command line) to a request. */
void client_put_context(MsgWriter *w, const ClientOptions *o);
/* Prints why a request failed and returns the exit code: for a MSG_ERROR
 * reply, and for a negative errno from sending or receiving. */
int client_request_error(MsgReader *m);
int client_io_error(int r);

/* Makes @path absolute by prefixing the current directory, without
 * resolving anything ("." is the directory itself); a new string. */
int client_path_absolute(const char *path, char **ret);
/* Makes the @n operands absolute into @paths/@n_paths (the array holds @n
 * entries; @n_paths counts those filled, for the caller's cleanup). Returns
 * 1, or -EXIT_USAGE / -EXIT_OTHER after printing why. */
int client_paths_absolute(const char *verb, const char *root, int n, char **args, char ***paths,
                          size_t *n_paths);
/* An interpreter name as --python takes it: a name looked up on PATH, or a
 * path; with @root, both as seen inside that root (-EINVAL for a relative
 * path there). The result is absolute, inside @root when given. */
int client_find_executable(const char *root, const char *name, char **ret);
/* --root=DIR: made absolute (it is a directory of ours, not of the root)
 * into *@root, replacing an earlier one. Returns 1, or -EXIT_* after
 * reporting. */
int client_parse_root(const char *verb, const char *arg, char **root);

/* Reads the count fields of ACCEPTED, PROGRESS and DONE (@total, @done and
 * @k may be NULL). */
int client_parse_counts(MsgReader *m, uint64_t *total, uint64_t *done, CompileCounts *k);
/* Reads one MSG_RESULT; its fields borrow @m's frame. -EBADMSG when malformed. */
int client_parse_result(MsgReader *m, FileResult *ret);
/* Reads a compile request's replies until DONE or ERROR, reporting through
 * @out; returns the exit code (EXIT_FILES_FAILED when any file failed). */
int client_compile_replies(Connection *c, CompileOutput *out, bool no_wait);
/* Connects (starting the daemon when @autostart), sends the compile request
 * @w and reads its replies, reported as @json/@quiet/@verbose say; returns
 * the exit code. */
int client_compile_exchange(ClientOptions *o, bool autostart, MsgWriter *w, bool json, bool quiet,
                            bool verbose, bool no_wait);

int verb_compile(ClientOptions *o, int argc, char **argv);
int verb_status(ClientOptions *o, int argc, char **argv);
int verb_wait(ClientOptions *o, int argc, char **argv);
/* admin.c: provenance and administration */
int verb_why(ClientOptions *o, int argc, char **argv);
int verb_history(ClientOptions *o, int argc, char **argv);
int verb_verify(ClientOptions *o, int argc, char **argv);
int verb_repair(ClientOptions *o, int argc, char **argv);
int verb_clean(ClientOptions *o, int argc, char **argv);
int verb_audit(ClientOptions *o, int argc, char **argv);
