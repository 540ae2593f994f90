/* SPDX-License-Identifier: MIT */
/* py3compile, pycompile and py3clean: Debian's byte-compile tools as
 * clients of pycqueued, one program that reads its name from argv[0].
 *
 * They take dh-python's options and decide what to compile exactly as it
 * does (debpython.c): the package's files from dpkg's database, the
 * operands, -V, -X and the bcep exclusions. The compile itself is one
 * MSG_COMPILE request per call, naming every file and every interpreter
 * (/usr/bin/python3.X), with the tool, the package and the calling
 * maintainer script as context; the daemon writes what
 * `python3.X [-O] -m py_compile` would write. Only when files need
 * different sets of versions (a bcep rule for one version, a
 * /usr/lib/python3.X/dist-packages file) does a call send one request per
 * set.
 *
 * py3clean decides what to remove as Debian's does: the *.py files of the
 * package (dpkg-query --listfiles, every directory, not only the public
 * ones), or those found under the operands, or the files in both; then one
 * MSG_CLEAN request (TAG_CLEAN_SOURCES) per batch of sources, in which the
 * daemon removes each source's compiled files by py3clean's rule
 * (daemon/admin/admin-clean.c), ordered after the compiles of those sources
 * already queued. -V X.Y becomes that version's cache tag, asked of
 * /usr/bin/pythonX.Y as py3clean does; -V 3.1 the legacy .pyc/.pyo only.
 *
 * They never break dpkg: when pycqueued can neither be reached nor started,
 * they run the original tool (the file dpkg-divert --rename moved aside) and
 * say so on stderr. They do the same when the daemon refuses the caller (a
 * user other than root): the original then compiles or removes what that
 * user may. They are installed under $(pkglibexecdir) and diverted over
 * /usr/bin by the Debian package, never installed there directly.
 *
 * Inside a maintainer script a compile is queued and left to pycqueue's
 * dpkg trigger (maintscript_defer_to_trigger()).
 *
 * Environment: $PYCQUEUE_SOCKET (the daemon), $PYCQUEUE_NO_AUTOSTART=1 (do
 * not start one), $PYCQUEUE_NO_DEFER=1 (inside a maintainer script too,
 * wait for the files), $PYCQUEUE_ORIGINAL_PY3COMPILE / _PY3CLEAN / _PYCOMPILE
 * (the original to fall back on), $PYCQUEUE_DPKG_ADMINDIR, else
 * $DPKG_ADMINDIR, else dpkg's own default (dpkg's database, read through
 * dpkg-query). */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "debpython.h"
#include "output.h"
#include "util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define FRONTEND_MAX_EXCLUDES 256u
/* Sources per py3clean request: far below the daemon's path limit and its
 * frame size, whatever the paths. */
#define FRONTEND_CLEAN_BATCH 1024u

typedef enum Tool {
        TOOL_PY3COMPILE,
        TOOL_PYCOMPILE,
        TOOL_PY3CLEAN,
} Tool;

typedef struct Args {
        Tool tool;
        const char *name;
        bool force;
        bool optimize;
        bool verbose;
        const char *package;
        bool has_range;
        VersionRange range;
        const char *clean_version; /* py3clean -V, as given */
        regex_t *regexes[FRONTEND_MAX_EXCLUDES];
        size_t n_regexes;
        char **operands;
        size_t n_operands;
} Args;

static void args_done(Args *a) {
        for (size_t i = 0; i < a->n_regexes; i++) {
                regfree(a->regexes[i]);
                free(a->regexes[i]);
        }
}

static void help(const Args *a) {
        if (a->tool == TOOL_PY3CLEAN) {
                printf("Usage: %s [-V VERSION] [-p PACKAGE] [DIR_OR_FILE]...\n"
                       "Remove the byte-compiled files of Python sources.\n\n"
                       "  -p, --package=PKG  the sources of a Debian package\n"
                       "  -V VERSION         only the files of this Python version\n"
                       "  -v, --verbose      one line per file\n"
                       "  -q, --quiet        be quiet\n"
                       "  -h, --help         show this help and exit\n",
                       a->name);
                return;
        }
        printf("Usage: %s [-V [X.Y][-][A.B]] DIR_OR_FILE [-X REGEXPR]\n"
               "       %s -p PACKAGE [DIR]...\n"
               "Byte-compile Python sources through pycqueued, as Debian's %s does.\n\n"
               "  -p, --package=PKG    the package's public modules, or its files under DIR\n"
               "  -V VRANGE            Python versions: 3.11, 3.9-, 3.9-3.12, -4.0\n"
               "  -X, --exclude=REGEX  skip paths matching REGEX (POSIX extended, anchored at the\n"
               "                       start); repeatable; with DIR operands only\n"
               "  -O                   optimization level 1 (.opt-1.pyc)\n"
               "  -f, --force          recompile files that are up to date\n"
               "  -v, --verbose        one line per file\n"
               "  -q, --quiet          be quiet (the default)\n"
               "  -h, --help           show this help and exit\n"
               "\n"
               "Exit status: 0 every file compiled, 1 some file failed, 2 usage error,\n"
               "3 requested versions not installed, 5 other error. See pycqueue-py3compile(1).\n",
               a->name, a->name, a->name);
}

static Tool tool_from_name(const char *name) {
        if (strstr(name, "py3clean"))
                return TOOL_PY3CLEAN;
        if (strstr(name, "pycompile"))
                return TOOL_PYCOMPILE;
        return TOOL_PY3COMPILE;
}

/* --- falling back on the original tool ------------------------------------------ */

static bool is_self(const char *path) {
        struct stat a, b;

        return stat(path, &a) == 0 && stat("/proc/self/exe", &b) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
}

#define UNREACHABLE "pycqueued cannot be reached or started"
/* A root daemon changes files for root alone (daemon/frontdesk/dispatch.c):
 * another user's call runs the original, with that user's own rights. */
#define REFUSED "pycqueued changes files for root only"

/* Runs the original tool with our arguments, saying @why; returns only on
 * failure. */
static int run_original(const Args *a, const char *why, char **argv) {
        const char *env_names[] = {
                [TOOL_PY3COMPILE] = "PYCQUEUE_ORIGINAL_PY3COMPILE",
                [TOOL_PYCOMPILE] = "PYCQUEUE_ORIGINAL_PYCOMPILE",
                [TOOL_PY3CLEAN] = "PYCQUEUE_ORIGINAL_PY3CLEAN",
        };
        const char *base[] = {
                [TOOL_PY3COMPILE] = "py3compile",
                [TOOL_PYCOMPILE] = "pycompile",
                [TOOL_PY3CLEAN] = "py3clean",
        };
        const char *configured = getenv(env_names[a->tool]);
        char real[64], plain[64];
        const char *candidates[3];
        size_t n = 0;

        snprintf(real, sizeof(real), "/usr/bin/%s.real", base[a->tool]); /* dpkg-divert --rename's name */
        snprintf(plain, sizeof(plain), "/usr/bin/%s", base[a->tool]);
        if (configured && *configured)
                candidates[n++] = configured;
        else {
                candidates[n++] = real;
                candidates[n++] = plain;
        }
        for (size_t i = 0; i < n; i++) {
                if (access(candidates[i], X_OK) < 0 || is_self(candidates[i]))
                        continue;
                output_error("%s; running %s instead", why, candidates[i]);
                fflush(stdout);
                argv[0] = (char *)candidates[i];
                execv(candidates[i], argv);
                output_error("cannot execute %s: %m", candidates[i]);
                return EXIT_UNREACHABLE;
        }
        output_error("%s, and no original %s to run instead (tried %s%s%s)", why, base[a->tool],
                     candidates[0], n > 1 ? " and " : "", n > 1 ? candidates[1] : "");
        return EXIT_UNREACHABLE;
}

/* --- requests --------------------------------------------------------------------- */

/* The package as provenance records it: its name without the ":ARCH"
 * that dh_python3 adds for Architecture: any packages (dpkg-query needs it
 * to list a multi-arch package's files; `pycqueue why`, history --package
 * and clean --package name packages as dpkg's maintainer scripts do, by
 * $DPKG_MAINTSCRIPT_PACKAGE). */
static void put_package(MsgWriter *w, const char *package) {
        const char *colon = strchr(package, ':');

        msg_put_bytes(w, TAG_PACKAGE, package, colon ? (size_t)(colon - package) : strlen(package));
}

/* Inside a maintainer script (dpkg sets $DPKG_MAINTSCRIPT_NAME and
 * $DPKG_MAINTSCRIPT_PACKAGE) a compile is deferred: the request is queued
 * durably (TAG_NO_WAIT) and pycqueue's trigger activated, so that the
 * tool returns at once and pycqueue's `triggered` postinst waits, once per
 * dpkg run, for everything the run queued and reports what failed
 * (`pycqueue wait --failures`). The trigger is activated first: when it
 * cannot be (dpkg-trigger missing or failing), nothing would report the
 * failures, so the compile waits for its files as outside dpkg.
 *
 * dpkg-trigger is run without a shell, from $PATH, with our environment:
 * it honours $DPKG_ADMINDIR itself. --no-await: the package whose script
 * called us does not wait for pycqueue's trigger to be configured.
 * $PYCQUEUE_NO_DEFER=1 turns deferral off. */
static int activate_trigger(void) {
        int status;
        pid_t pid;

        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

                /* Its messages go to stderr; our stdout stays ours. */
                if ((devnull >= 0 && dup2(devnull, STDIN_FILENO) < 0) ||
                    dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
                        _exit(127);
                execlp("dpkg-trigger", "dpkg-trigger", "--no-await", "pycqueue", (char *)NULL);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
                return -ENOEXEC;
        return WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}

/* Decided once per run of the tool, which may send several requests:
 * the trigger is activated at most once. */
static bool maintscript_defer_to_trigger(void) {
        static int decided = -1;
        const char *script = getenv("DPKG_MAINTSCRIPT_NAME");
        const char *package = getenv("DPKG_MAINTSCRIPT_PACKAGE");
        const char *no_defer = getenv("PYCQUEUE_NO_DEFER");
        int r;

        if (decided >= 0)
                return decided;
        decided = false;
        if (!script || !*script || !package || !*package || (no_defer && strcmp(no_defer, "1") == 0))
                return false;
        r = activate_trigger();
        if (r < 0) {
                output_error("%s pycqueue's trigger (dpkg-trigger --no-await pycqueue); compiling now",
                             r == -ENOEXEC ? "cannot run dpkg-trigger to activate" : "cannot activate");
                return false;
        }
        decided = true;
        return true;
}

static int build_compile(MsgWriter *w, ClientOptions *o, const Args *a, const DebPython *d,
                         const SourceList *files, VersionMask mask, bool no_wait) {
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        int r;

        msg_writer_init(w, MSG_COMPILE);
        client_put_context(w, o);
        for (size_t i = 0; i < files->n; i++)
                if (files->files[i].versions == mask) {
                        _cleanup_free_ char *abs = NULL;
                        /* A relative file operand: the daemon wants absolute paths. */
                        r = client_path_absolute(files->files[i].path, &abs);
                        if (r < 0)
                                return client_io_error(r);
                        msg_put_bytes(w, TAG_PATH, abs, strlen(abs));
                }
        for (size_t i = 0; i < d->n_known; i++)
                if (mask & (1u << i)) {
                        char python[64];
                        snprintf(python, sizeof(python), "/usr/bin/python%d.%d",
                                 PYVERSION_MAJOR(d->known[i]), PYVERSION_MINOR(d->known[i]));
                        msg_put_bytes(w, TAG_PYTHON, python, strlen(python));
                }
        /* As `python3.X [-O] -m py_compile`: level 1 with -O, else 0; the
         * invalidation mode py_compile picks by default. */
        msg_put_u64(w, TAG_OPT_LEVEL, a->optimize ? 1 : 0);
        msg_put_u64(w, TAG_INVALIDATION, sde && *sde ? INVALIDATION_CHECKED_HASH : INVALIDATION_TIMESTAMP);
        if (a->force)
                msg_put_u64(w, TAG_FORCE, 1);
        if (a->package)
                put_package(w, a->package);
        if (no_wait)
                msg_put_u64(w, TAG_NO_WAIT, 1);
        if (a->verbose)
                msg_put_u64(w, TAG_REPORT_ALL, 1);
        if (w->error == -EMSGSIZE) {
                output_error("request too large (over %u bytes)", PROTOCOL_MAX_FRAME);
                return EXIT_OTHER;
        }
        if (w->error < 0)
                return client_io_error(w->error);
        return EXIT_OK;
}

static int send_compile(ClientOptions *o, const Args *a, const DebPython *d, const SourceList *files,
                        VersionMask mask) {
        bool no_wait = maintscript_defer_to_trigger();
        int r;

        for (;;) {
                _cleanup_(msg_writer_done) MsgWriter w = MSG_WRITER_NULL;

                r = build_compile(&w, o, a, d, files, mask, no_wait);
                if (r != EXIT_OK)
                        return r;
                r = client_compile_exchange(o, o->autostart, &w, false, !a->verbose, a->verbose, no_wait);
                /* A daemon that cannot queue durably (its recording is off)
                 * refuses before doing anything: compile now instead. */
                if (!no_wait || r != EXIT_OTHER)
                        return r;
                output_error("the request could not be queued; compiling now");
                no_wait = false;
        }
}

/* --- what to compile ---------------------------------------------------------- */

static const char *dpkg_admindir(void) {
        const char *e = getenv("PYCQUEUE_DPKG_ADMINDIR");

        if (!e || !*e)
                e = getenv("DPKG_ADMINDIR");
        return e && *e ? e : NULL; /* dpkg-query's own default */
}

static int package_sources(const Args *a, StrList *ret) {
        const char *admindir = dpkg_admindir();
        int r = dpkg_package_sources(admindir, a->package, ret);

        if (r >= 0)
                return 0;
        errno = -r;
        if (r == -ENOENT)
                output_error("package %s is not installed (dpkg-query --listfiles knows no such package, or "
                             "it is installed for several architectures: then give PKG:ARCH)",
                             a->package);
        else if (r == -ENOEXEC)
                output_error("cannot run dpkg-query to list the files of %s", a->package);
        else
                output_error("cannot list the files of %s: %m", a->package);
        return -EXIT_FILES_FAILED;
}

static int add_for_directory(DebPython *d, const ExcludeList *bcep, const Args *a, const char *directory,
                             StrList *candidates, VersionMask versions, SourceList *out) {
        ExcludeList rules = {};
        int r;

        r = exclude_list_for(d, bcep, directory, a->regexes, a->n_regexes, versions, &rules);
        if (r >= 0)
                r = source_list_add_filtered(d, out, candidates->v, candidates->n, &rules, versions);
        exclude_list_done(&rules);
        return r;
}

/* py3compile's three forms: -p PKG DIR... (the package's files under each DIR,
 * for the first version only), -p PKG (its public modules), DIR... */
static int select_sources(DebPython *d, const Args *a, VersionMask versions, SourceList *out) {
        ExcludeList bcep = {};
        StrList pkg = {};
        int r;

        r = bcep_load(d, DEBPYTHON_BCEP_DIR, &bcep);
        if (r < 0)
                goto finish;

        if (a->package) {
                r = package_sources(a, &pkg);
                if (r < 0)
                        goto finish;
        }

        if (a->package && a->n_operands > 0) {
                VersionMask first = debpython_first(d, versions);

                for (size_t i = 0; i < a->n_operands && r >= 0; i++) {
                        const char *item = a->operands[i];
                        StrList under = {};

                        if (access(item, F_OK) < 0) {
                                output_error("warning: no such file or directory: %s", item);
                                continue;
                        }
                        for (size_t j = 0; j < pkg.n && r >= 0; j++)
                                if (strncmp(pkg.v[j], item, strlen(item)) == 0)
                                        r = strlist_add(&under, pkg.v[j], DEBPYTHON_MAX_FILES);
                        if (r >= 0)
                                r = add_for_directory(d, &bcep, a, item, &under, first, out);
                        strlist_done(&under);
                }
        } else if (a->package) {
                StrList public = {};
                ExcludeList rules = {};

                /* Only the public directories of the requested versions. */
                for (size_t j = 0; j < pkg.n && r >= 0; j++) {
                        bool shared, wanted = false;
                        PyVersion v;

                        if (!debpython_public_dir(pkg.v[j], &shared, &v))
                                continue;
                        for (size_t i = 0; i < d->n_known && !wanted; i++)
                                if (versions & (1u << i))
                                        wanted = shared ? PYVERSION_MAJOR(d->known[i]) == PYVERSION_MAJOR(v)
                                                        : d->known[i] == v;
                        if (wanted)
                                r = strlist_add(&public, pkg.v[j], DEBPYTHON_MAX_FILES);
                }
                if (r >= 0)
                        r = exclude_list_for(d, &bcep, "/", NULL, 0, 0, &rules);
                if (r >= 0)
                        r = source_list_add_filtered(d, out, public.v, public.n, &rules, versions);
                exclude_list_done(&rules);
                strlist_done(&public);
        } else {
                for (size_t i = 0; i < a->n_operands && r >= 0; i++) {
                        StrList found = {};

                        r = directory_sources(a->operands[i], &found);
                        if (r >= 0)
                                r = add_for_directory(d, &bcep, a, a->operands[i], &found, versions, out);
                        strlist_done(&found);
                }
        }
        if (r < 0) {
                errno = -r;
                output_error("cannot list the files to compile: %m");
                r = -EXIT_OTHER;
        }
finish:
        strlist_done(&pkg);
        exclude_list_done(&bcep);
        return r;
}

static int run_compile(ClientOptions *o, Args *a, char **argv) {
        _cleanup_free_ char *message = NULL;
        SourceList files = {};
        VersionMask versions, done = 0;
        DebPython d;
        int r, exit_code = EXIT_OK;

        r = debpython_load(&d, &message);
        if (r < 0) {
                output_error("%s", message);
                return EXIT_OTHER;
        }
        r = a->has_range ? debpython_requested(&d, &a->range, &versions)
                         : debpython_requested(&d, &(VersionRange){}, &versions);
        if (r < 0 || versions == 0) {
                output_error("requested versions are not installed: no /usr/bin/python3.X for %s",
                             a->has_range ? "the -V range" : "the supported versions");
                return 3; /* as py3compile */
        }

        r = select_sources(&d, a, versions, &files);
        if (r < 0) {
                source_list_done(&files);
                return -r;
        }

        /* One request per distinct version set; nearly always exactly one. */
        for (size_t i = 0; i < files.n; i++) {
                VersionMask mask = files.files[i].versions;
                bool seen = false;

                for (size_t j = 0; j < i && !seen; j++)
                        seen = files.files[j].versions == mask;
                if (seen)
                        continue;
                r = send_compile(o, a, &d, &files, mask);
                if ((r == EXIT_UNREACHABLE || r == EXIT_PERMISSION) && done == 0) {
                        source_list_done(&files);
                        return run_original(a, r == EXIT_PERMISSION ? REFUSED : UNREACHABLE, argv);
                }
                done |= mask;
                if (r != EXIT_OK && (exit_code == EXIT_OK || exit_code == EXIT_FILES_FAILED))
                        exit_code = r;
        }
        source_list_done(&files);
        return exit_code;
}

/* --- py3clean ------------------------------------------------------------------- */

/* The cache tag of /usr/bin/pythonX.Y, asked of it as py3clean does.
 * -ENOENT when it cannot be run or says nothing. */
static int cache_tag_of(PyVersion v, char *buf, size_t size) {
        char python[64];
        int fds[2], status;
        ssize_t n = 0, k;
        pid_t pid;

        snprintf(python, sizeof(python), "/usr/bin/python%d.%d", PYVERSION_MAJOR(v), PYVERSION_MINOR(v));
        if (access(python, X_OK) < 0)
                return -ENOENT;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return -errno;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

                if (dup2(fds[1], STDOUT_FILENO) < 0 || (devnull >= 0 && dup2(devnull, STDERR_FILENO) < 0))
                        _exit(127);
                execl(python, python, "-I", "-S", "-c", "import sys; print(sys.implementation.cache_tag)",
                      (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        while ((size_t)n < size - 1 && (k = read(fds[0], buf + n, size - 1 - (size_t)n)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        break;
                n += k;
        }
        close(fds[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !*buf || strchr(buf, '/'))
                return -ENOENT;
        return 0;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* py3clean -V: the cache tag to remove into @tag ("" = the legacy files of
 * 3.1). Returns 1 to go on, 0 when nothing is to be removed (another
 * supported version shares the tag), or -exit code after reporting. */
static int clean_tag(const Args *a, char *tag, size_t size) {
        _cleanup_free_ char *message = NULL;
        unsigned major, minor;
        char extra;
        DebPython d;
        PyVersion v;

        if (ends_with(a->clean_version, "3.1")) { /* 3.1, -3.1: py3clean's test */
                *tag = 0;
                return 1;
        }
        if (sscanf(a->clean_version, "%u.%u%c", &major, &minor, &extra) < 2 || major > 99 || minor > 999) {
                output_error("invalid Python version: %s", a->clean_version);
                return -EXIT_FILES_FAILED;
        }
        v = PYVERSION((int)major, (int)minor);
        if (v < PYVERSION(3, 2))
                return 0; /* no __pycache__ before 3.2, and no legacy files but 3.1's */
        if (cache_tag_of(v, tag, size) < 0) {
                output_error("cannot find magic tag for Python %u.%u", major, minor);
                return -4; /* as py3clean */
        }
        /* A tag another supported version uses stays: its files are that one's too. */
        if (debpython_load(&d, &message) >= 0)
                for (size_t i = 0; i < d.n_supported; i++) {
                        char other[64];

                        if (d.known[i] == v || cache_tag_of(d.known[i], other, sizeof(other)) < 0 ||
                            strcmp(other, tag) != 0)
                                continue;
                        if (a->verbose)
                                printf("magic tag(s) used by python%d.%d. Nothing to remove.\n",
                                       PYVERSION_MAJOR(d.known[i]), PYVERSION_MINOR(d.known[i]));
                        return 0;
                }
        return 1;
}

/* py3clean's selection: the package's *.py files, the *.py files of the
 * operands (a file as given, a directory walked from its absolute path),
 * or those in both. Sorted, without duplicates. */
static int clean_select(const Args *a, StrList *ret) {
        StrList pkg = {}, found = {};
        int r = 0;

        if (a->package) {
                r = package_sources(a, &pkg);
                if (r < 0)
                        return r;
                strlist_sort_unique(&pkg);
        }
        for (size_t i = 0; i < a->n_operands && r >= 0; i++)
                r = directory_sources(a->operands[i], &found);
        if (r < 0) {
                errno = -r;
                output_error("cannot list the files to clean: %m");
                r = -EXIT_OTHER;
        } else if (a->package && a->n_operands > 0) {
                strlist_sort_unique(&found);
                for (size_t i = 0; i < found.n && r >= 0; i++)
                        for (size_t j = 0; j < pkg.n; j++)
                                if (strcmp(found.v[i], pkg.v[j]) == 0) {
                                        r = strlist_add(ret, found.v[i], DEBPYTHON_MAX_FILES);
                                        break;
                                }
        } else {
                StrList *from = a->package ? &pkg : &found;

                *ret = *from;
                *from = (StrList){};
                strlist_sort_unique(ret);
        }
        if (r == -ENOMEM || r == -E2BIG) {
                output_error("too many files to clean");
                r = -EXIT_OTHER;
        }
        strlist_done(&pkg);
        strlist_done(&found);
        return r;
}

/* The string value of the TAG_STAT field @key of a record, or NULL; it
 * borrows the frame. */
static const uint8_t *record_value(const MsgReader *m, const char *key, size_t *ret_size) {
        MsgReader rd = *m;
        MsgField f;

        while (msg_next(&rd, &f) > 0) {
                const char *k;
                const uint8_t *v;
                size_t n;
                char kind;

                if (f.tag == TAG_STAT && field_stat(&f, &k, &kind, &v, &n) >= 0 && strcmp(k, key) == 0) {
                        *ret_size = n;
                        return v;
                }
        }
        return NULL;
}

/* One MSG_CLEAN for @n sources from @files; prints failures (and with -v
 * each removal) and adds to the counts. Returns an exit code. */
static int send_clean(ClientOptions *o, const Args *a, char **files, size_t n, const char *tag,
                      uint64_t *removed, uint64_t *failed) {
        _cleanup_(connection_freep) Connection *c = NULL;
        _cleanup_(msg_writer_done) MsgWriter w = MSG_WRITER_NULL;
        int r;

        msg_writer_init(&w, MSG_CLEAN);
        client_put_context(&w, o);
        msg_put_u64(&w, TAG_CLEAN_SOURCES, 1);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *abs = NULL;

                r = client_path_absolute(files[i], &abs);
                if (r < 0)
                        return client_io_error(r);
                msg_put_bytes(&w, TAG_PATH, abs, strlen(abs));
        }
        if (tag)
                msg_put_string(&w, TAG_CLEAN_TAG, tag);
        if (a->package)
                put_package(&w, a->package);
        if (w.error == -EMSGSIZE) {
                output_error("request too large (over %u bytes)", PROTOCOL_MAX_FRAME);
                return EXIT_OTHER;
        }
        if (w.error < 0)
                return client_io_error(w.error);

        r = client_connect(o, o->autostart, &c);
        if (r != EXIT_OK)
                return r;
        r = connection_send(c, &w);
        if (r < 0)
                return client_io_error(r);
        for (;;) {
                const uint8_t *path, *error;
                size_t path_size = 0, error_size = 0;
                MsgReader m;

                r = connection_receive(c, &m);
                if (r < 0)
                        return client_io_error(r);
                switch (m.type) {
                case MSG_RECORD:
                        path = record_value(&m, "path", &path_size);
                        error = record_value(&m, "error", &error_size);
                        if (!path)
                                break;
                        if (error) {
                                (*failed)++;
                                output_error("cannot remove %.*s: %.*s", (int)path_size, (const char *)path,
                                             (int)error_size, (const char *)error);
                        } else {
                                (*removed)++;
                                if (a->verbose)
                                        printf("removed %.*s\n", (int)path_size, (const char *)path);
                        }
                        break;
                case MSG_DONE:
                        /* Failures past the records the daemon sends still count. */
                        error = record_value(&m, "failed", &error_size);
                        if (error && !(error_size == 1 && error[0] == '0') && *failed == 0)
                                (*failed)++;
                        return EXIT_OK;
                case MSG_ERROR:
                        return client_request_error(&m);
                default:
                        break; /* a newer daemon's message */
                }
        }
}

static int run_clean(ClientOptions *o, Args *a, char **argv) {
        StrList files = {};
        char tag_buf[64];
        const char *tag = NULL;
        uint64_t removed = 0, failed = 0;
        int r, exit_code = EXIT_OK;

        if (a->clean_version) {
                r = clean_tag(a, tag_buf, sizeof(tag_buf));
                if (r <= 0)
                        return -r;
                tag = tag_buf;
        }
        if (!a->package && a->n_operands == 0) {
                printf("Usage: %s [-V VERSION] [-p PACKAGE] [DIR_OR_FILE]\n", a->name);
                return EXIT_FILES_FAILED; /* py3clean exits 1 here */
        }
        r = clean_select(a, &files);
        if (r < 0)
                return -r;
        for (size_t i = 0; i < files.n; i += FRONTEND_CLEAN_BATCH) {
                size_t n = MIN(files.n - i, (size_t)FRONTEND_CLEAN_BATCH);

                r = send_clean(o, a, files.v + i, n, tag, &removed, &failed);
                if ((r == EXIT_UNREACHABLE || r == EXIT_PERMISSION) && i == 0) {
                        /* Nothing done yet: the original does it all (with
                         * the caller's own rights, when the daemon refused). */
                        strlist_done(&files);
                        return run_original(a, r == EXIT_PERMISSION ? REFUSED : UNREACHABLE, argv);
                }
                if (r != EXIT_OK && exit_code == EXIT_OK)
                        exit_code = r;
        }
        strlist_done(&files);
        if (a->verbose)
                printf("removed files: %llu\n", (unsigned long long)removed);
        if (failed > 0 && exit_code == EXIT_OK)
                exit_code = EXIT_FILES_FAILED;
        return exit_code;
}

/* --- options ------------------------------------------------------------------ */

static int usage_error(const Args *a, const char *message, const char *arg) {
        output_error("%s%s", message, arg ? arg : "");
        fprintf(stderr, "Try '%s --help' for more information.\n", a->name);
        return -EXIT_USAGE;
}

/* Returns 1 to go on, 0 after --help or --version, or -EXIT_* after reporting. */
static int parse_args(Args *a, int argc, char **argv) {
        static const struct option options[] = {
                { "verbose", no_argument, NULL, 'v' },       { "quiet", no_argument, NULL, 'q' },
                { "force", no_argument, NULL, 'f' },         { "package", required_argument, NULL, 'p' },
                { "exclude", required_argument, NULL, 'X' }, { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'W' },       {},
        };
        const char *shortopts = a->tool == TOOL_PY3CLEAN ? ":vqp:V:h" : ":vqfOp:V:X:h";
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts, options, NULL)) >= 0) {
                switch (c) {
                case 'v':
                        a->verbose = true;
                        break;
                case 'q':
                        a->verbose = false;
                        break;
                case 'f':
                        if (a->tool == TOOL_PY3CLEAN)
                                return usage_error(a, "unrecognized option --force", NULL);
                        a->force = true;
                        break;
                case 'O':
                        a->optimize = true;
                        break;
                case 'p':
                        if (!*optarg)
                                return usage_error(a, "empty package name", NULL);
                        a->package = optarg;
                        break;
                case 'V':
                        if (a->tool == TOOL_PY3CLEAN) {
                                a->clean_version = optarg; /* judged as py3clean does, in clean_tag() */
                                break;
                        }
                        if (version_range_parse(optarg, &a->range) < 0)
                                return usage_error(a, "version range is invalid: ", optarg);
                        a->has_range = true;
                        break;
                case 'X':
                        if (a->tool == TOOL_PY3CLEAN)
                                return usage_error(a, "unrecognized option --exclude", NULL);
                        if (a->n_regexes >= FRONTEND_MAX_EXCLUDES)
                                return usage_error(a, "too many -X options", NULL);
                        r = exclude_regex_compile(optarg, &a->regexes[a->n_regexes]);
                        if (r == -ENOMEM) {
                                output_error("out of memory");
                                return -EXIT_OTHER;
                        }
                        if (r < 0)
                                return usage_error(a, "regular expression is not valid: ", optarg);
                        a->n_regexes++;
                        break;
                case 'h':
                        help(a);
                        return 0;
                case 'W':
                        printf("%s (pycqueue) " PACKAGE_VERSION "\n", a->name);
                        return 0;
                case ':':
                        return usage_error(a, "option requires an argument: ", argv[optind - 1]);
                default:
                        return usage_error(a, "unrecognized option: ", argv[optind - 1]);
                }
        }
        a->operands = argv + optind;
        a->n_operands = (size_t)(argc - optind);
        if (a->n_regexes > 0 && a->n_operands == 0)
                return usage_error(a,
                                   "--exclude works with private directories only; use "
                                   "/usr/share/python3/bcep to exclude public modules",
                                   NULL);
        if (!a->package && a->n_operands == 0 && a->tool != TOOL_PY3CLEAN) {
                fprintf(stderr,
                        "Usage: %s [-V [X.Y][-][A.B]] DIR_OR_FILE [-X REGEXPR]\n       %s -p PACKAGE\n",
                        a->name, a->name);
                return -EXIT_FILES_FAILED; /* py3compile exits 1 here */
        }
        return 1;
}

/* So that no socket ever lands on fd 0, 1 or 2. */
static void ensure_std_fds(void) {
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
                        (void)open("/dev/null", O_RDWR | O_NOCTTY);
}

int main(int argc, char **argv) {
        const char *slash = strrchr(argv[0], '/');
        const char *name = slash ? slash + 1 : argv[0];
        Args a = { .tool = tool_from_name(name) };
        ClientOptions o = { .argc = argc, .argv = argv, .quiet = true };
        const char *e;
        int r;

        ensure_std_fds();
        signal(SIGPIPE, SIG_IGN);
        a.name = a.tool == TOOL_PY3CLEAN    ? "py3clean"
                 : a.tool == TOOL_PYCOMPILE ? "pycompile"
                                            : "py3compile";
        output_set_program_name(a.name);
        o.tool = a.name;
        e = getenv("PYCQUEUE_SOCKET");
        o.socket_path = e && *e ? e : DEFAULT_SOCKET_PATH;
        e = getenv("PYCQUEUE_NO_AUTOSTART");
        o.autostart = !(e && strcmp(e, "1") == 0);

        r = parse_args(&a, argc, argv);
        if (r <= 0) {
                args_done(&a);
                return r < 0 ? -r : EXIT_OK;
        }
        o.verbose = a.verbose;
        o.quiet = !a.verbose;

        if (a.tool == TOOL_PY3CLEAN)
                r = run_clean(&o, &a, argv);
        else
                r = run_compile(&o, &a, argv);
        args_done(&a);
        fflush(stdout);
        return r;
}
