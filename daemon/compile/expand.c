/* SPDX-License-Identifier: MIT */
/* Expansion of a compile request, as compileall walks a tree: directories
 * recursively in sorted order, "__pycache__" skipped, symlinked directories
 * not entered, files named "*.py" taken, the -x regexes matched against the
 * full path. Every requested directory is canonicalized first (for a file,
 * its directory) and directories are opened with O_NOFOLLOW from there on
 * (safepath.c). A symlinked source file is compiled where the link is, as
 * compileall does.
 *
 * For each source and each (interpreter, optimization level) the walk also
 * reads the header of the existing .pyc and records whether it is current;
 * the pool re-checks that under the source's lock before skipping a job, so
 * the hint only saves work and never decides correctness. Stale temporary
 * files of a killed daemon are removed from each __pycache__ passed.
 *
 * A path may come with an explicit target and display name (the Python
 * module's cfile and dfile). Such a path must be a file, of any name; the
 * target's directory is canonicalized here as a source's is, and the job
 * opens it again without following symlinks when it writes (job.c), so an
 * explicit target has exactly the safety of a PEP 3147 one. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "expand.h"
#include "job.h"
#include "list.h"
#include "macro.h"
#include "pycpath.h"
#include "rootpath.h"
#include "safepath.h"
#include "util.h"
#include "writer.h"

#define EXPAND_MAX_DEPTH 256

typedef struct Walk {
        const ExpandInput *in;
        ExpandResult *res;
} Walk;

static ExpandEntry *add_entry(Walk *w) {
        ExpandResult *res = w->res;
        ExpandEntry *e;

        if (GREEDY_REALLOC(res->entries, res->allocated, res->n_entries + 1) < 0)
                return NULL;
        e = &res->entries[res->n_entries++];
        *e = (ExpandEntry){};
        return e;
}

static int add_error(Walk *w, const char *path, const char *type, const char *message) {
        ExpandEntry *e = add_entry(w);

        if (!e)
                return -ENOMEM;
        e->source = strdup(path);
        e->error_type = strdup(type);
        e->error_message = strdup(message);
        return e->source && e->error_type && e->error_message ? 0 : -ENOMEM;
}

static bool excluded(Walk *w, const char *path) {
        for (size_t i = 0; i < w->in->n_excludes; i++)
                if (regexec(&w->in->excludes[i], path, 0, NULL, 0) == 0)
                        return true;
        return false;
}

/* stat(2) of the file a walked entry names, following a symlink as the
 * root's own processes would: inside the root, never out of it. */
static int stat_entry(Walk *w, int dir_fd, const char *full, const char *name, struct stat *ret) {
        _cleanup_free_ char *real = NULL;
        int r;

        if (!w->in->root || fstatat(dir_fd, name, ret, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(ret->st_mode))
                return fstatat(dir_fd, name, ret, 0) < 0 ? negative_errno() : 0;
        r = rootpath_canonicalize(w->in->root, rootpath_inside(w->in->root, full), &real);
        if (r < 0)
                return r;
        return stat(real, ret) < 0 ? negative_errno() : 0;
}

/* Reads the header of @name in @cache_fd and compares. */
static bool target_is_current(Walk *w, int cache_fd, const char *name, const ExpandInterpreter *ip,
                              const struct stat *st, const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = -1;
        uint8_t buf[PYC_HEADER_SIZE];
        struct stat tst;
        PycHeader h;

        if (cache_fd < 0)
                return false;
        fd = openat(cache_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &tst) < 0 || !S_ISREG(tst.st_mode) || tst.st_size <= (off_t)PYC_HEADER_SIZE)
                return false;
        if (loop_read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
            pyc_header_parse(buf, sizeof(buf), &h) < 0)
                return false;
        return pyc_header_is_current(&h, ip->magic, ip->hash_algo, w->in->mode,
                                     pyc_mtime_field(st->st_mtim.tv_sec, st->st_mtim.tv_nsec),
                                     (uint32_t)((uint64_t)st->st_size & 0xffffffffu), data, size);
}

/* Adds canonical source @path (in directory @dir_fd, file @name). */
static int add_source(Walk *w, int dir_fd, int cache_fd, const char *path, const char *name) {
        const ExpandInput *in = w->in;
        size_t n_targets = in->n_interpreters * in->n_opt_levels;
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        struct stat st;
        ExpandEntry *e;
        bool have_stat;

        if (w->res->n_entries >= in->max_files) {
                w->res->error = -E2BIG;
                return -E2BIG;
        }
        e = add_entry(w);
        if (!e)
                return -ENOMEM;
        e->source = strdup(path);
        e->targets = calloc(n_targets, sizeof(ExpandTarget));
        if (!e->source || !e->targets)
                return -ENOMEM;

        have_stat = stat_entry(w, dir_fd, path, name, &st) == 0 && S_ISREG(st.st_mode);
        if (have_stat && !in->force && in->mode != INVALIDATION_TIMESTAMP && cache_fd >= 0) {
                _cleanup_close_ int fd =
                        openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0 || read_full_fd(fd, 64u << 20, &data, &size) < 0)
                        have_stat = false;
        }

        for (size_t i = 0; i < in->n_interpreters; i++)
                for (size_t k = 0; k < in->n_opt_levels; k++) {
                        ExpandTarget *t = &e->targets[i * in->n_opt_levels + k];
                        const char *base;
                        int r;

                        r = pycpath_cache_path(path, in->interpreters[i].cache_tag, in->opt_levels[k],
                                               &t->path);
                        if (r < 0)
                                return r;
                        base = strrchr(t->path, '/') + 1;
                        t->up_to_date =
                                have_stat && !in->force &&
                                        target_is_current(w, cache_fd, base, &in->interpreters[i], &st, data, size);
                }
        return 0;
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(Walk *w, int dir_fd, const char *path, unsigned depth) {
        _cleanup_close_ int cache_fd = -1;
        char **names = NULL;
        size_t n_names = 0, allocated = 0;
        struct dirent *de;
        DIR *d;
        int fd, r = 0;

        if (depth > EXPAND_MAX_DEPTH)
                return 0;
        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return add_error(w, path, "PermissionError", "cannot list directory");
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (strcmp(de->d_name, PYCACHE_DIR) == 0)
                        continue;
                if (GREEDY_REALLOC(names, allocated, n_names + 1) < 0) {
                        r = -ENOMEM;
                        break;
                }
                names[n_names] = strdup(de->d_name);
                if (!names[n_names]) {
                        r = -ENOMEM;
                        break;
                }
                n_names++;
        }
        closedir(d);
        if (r < 0)
                goto finish;
        /* An empty directory leaves @names NULL: qsort() wants a valid
         * pointer even for zero elements. */
        if (n_names > 0)
                qsort(names, n_names, sizeof(char *), cmp_names);

        if (writer_open_cache_dir(dir_fd, false, &cache_fd) >= 0)
                (void)writer_remove_stale_temps(cache_fd);

        for (size_t i = 0; i < n_names && r >= 0; i++) {
                _cleanup_free_ char *full = path_join(path, names[i]);
                struct stat st;

                if (!full) {
                        r = -ENOMEM;
                        break;
                }
                if (fstatat(dir_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* vanished meanwhile */
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub =
                                openat(dir_fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                r = walk_dir(w, sub, full, depth + 1);
                        continue;
                }
                if (!pycpath_is_source_name(names[i]) || excluded(w, full))
                        continue;
                if (S_ISREG(st.st_mode))
                        r = add_source(w, dir_fd, cache_fd, full, names[i]);
                else if (S_ISLNK(st.st_mode)) {
                        /* compileall compiles a symlinked module where the
                         * link is; so do we, reading through the link. */
                        struct stat rst;

                        if (stat_entry(w, dir_fd, full, names[i], &rst) == 0 && S_ISREG(rst.st_mode))
                                r = add_source(w, dir_fd, cache_fd, full, names[i]);
                }
        }

finish:
        for (size_t i = 0; i < n_names; i++)
                free(names[i]);
        free(names);
        return r;
}

/* Makes @e's single target the explicit @target, its directory canonical. */
static int set_explicit_target(ExpandEntry *e, char *canonical_target) {
        free(e->targets[0].path);
        e->targets[0] = (ExpandTarget){ .path = canonical_target, .up_to_date = false };
        e->explicit_target = true;
        return 0;
}

static int expand_path(Walk *w, const char *named, const char *target, const char *display) {
        _cleanup_free_ char *real = NULL, *host = NULL, *real_target = NULL;
        _cleanup_close_ int fd = -1, cache_fd = -1;
        const char *name, *requested = named;
        char msg[512];
        struct stat st;
        int r;

        if (w->in->root) {
                /* Results name the path as the host sees it, like every
                 * other; the request shows them inside its root. */
                if (asprintf(&host, "%s%s", w->in->root, named) < 0)
                        return -ENOMEM;
                requested = host;
        }
        r = rootpath_canonicalize_named(w->in->root, named, false, &real);
        if (r >= 0 && w->in->root && lstat(real, &st) == 0 && S_ISLNK(st.st_mode)) {
                /* A symlinked module keeps its name; what it reads is found
                 * inside the root. */
                _cleanup_free_ char *to = NULL;

                r = rootpath_canonicalize(w->in->root, named, &to);
                if (r >= 0 && stat(to, &st) < 0)
                        r = negative_errno();
        } else if (r >= 0 && stat(real, &st) < 0)
                r = negative_errno();
        if (r < 0) {
                snprintf(msg, sizeof(msg), "cannot resolve path: %s",
                         r == -EXDEV ? "it leads out of the root" : strerror(-r));
                return add_error(w, requested, errno_to_exception(r), msg);
        }
        if (S_ISDIR(st.st_mode) && (target || display))
                return add_error(w, requested, "IsADirectoryError",
                                 "an explicit target or display name needs a source file, not a directory");
        if (S_ISDIR(st.st_mode)) {
                r = safepath_open_dir(real, &fd);
                if (r < 0) {
                        snprintf(msg, sizeof(msg), "cannot open directory: %s", strerror(-r));
                        return add_error(w, requested, errno_to_exception(r), msg);
                }
                return walk_dir(w, fd, real, 0);
        }
        if (!S_ISREG(st.st_mode))
                return add_error(w, requested, "OSError", "not a regular file or directory");
        /* An explicit target names its .pyc: the source may have any name. */
        if (!target && !pycpath_is_source_name(real))
                return add_error(w, requested, "ValueError",
                                 "not a Python source file (its name must end in .py)");
        if (target) {
                /* In the request's root, like the source. */
                r = rootpath_canonicalize_named(w->in->root, target, false, &real_target);
                if (r < 0) {
                        snprintf(msg, sizeof(msg), "cannot resolve the target's directory: %s",
                                 r == -EXDEV ? "it leads out of the root" : strerror(-r));
                        return add_error(w, requested, errno_to_exception(r), msg);
                }
        }
        r = safepath_open_parent(real, &fd, &name);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "cannot open the source's directory: %s", strerror(-r));
                return add_error(w, requested, errno_to_exception(r), msg);
        }
        (void)writer_open_cache_dir(fd, false, &cache_fd);
        r = add_source(w, fd, cache_fd, real, name);
        if (r < 0 || (!target && !display))
                return r;
        {
                ExpandEntry *e = &w->res->entries[w->res->n_entries - 1];

                if (display) {
                        e->display = strdup(display);
                        if (!e->display)
                                return -ENOMEM;
                }
                if (target)
                        return set_explicit_target(e, TAKE_PTR(real_target));
        }
        return 0;
}

static bool streq_null(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* Two entries of one source ask for the same files and names. */
static bool same_request(const ExpandEntry *a, const ExpandEntry *b) {
        return a->explicit_target == b->explicit_target && streq_null(a->display, b->display) &&
               (!a->explicit_target || strcmp(a->targets[0].path, b->targets[0].path) == 0);
}

static int cmp_entries(const void *a, const void *b) {
        const ExpandEntry *x = a, *y = b;
        int c = strcmp(x->source, y->source);
        if (c != 0)
                return c;
        return (x->error_type != NULL) - (y->error_type != NULL);
}

static void entry_done(ExpandEntry *e, size_t n_targets) {
        if (e->targets)
                for (size_t i = 0; i < n_targets; i++)
                        free(e->targets[i].path);
        free(e->targets);
        free(e->source);
        free(e->display);
        free(e->error_type);
        free(e->error_message);
}

ExpandResult *expand_run(const ExpandInput *in) {
        ExpandResult *res = calloc(1, sizeof(*res));
        Walk w = { .in = in, .res = res };
        size_t kept = 0;

        if (!res)
                return NULL;
        res->n_targets_per_entry = in->n_interpreters * in->n_opt_levels;
        for (size_t i = 0; i < in->n_paths; i++) {
                const char *target = in->path_targets && in->path_targets[i][0] ? in->path_targets[i] : NULL;
                const char *display =
                        in->path_displays && in->path_displays[i][0] ? in->path_displays[i] : NULL;
                int r = expand_path(&w, in->paths[i], target, display);
                if (r == -E2BIG) {
                        if (asprintf(&res->error_message, "the request names more than %zu files",
                                     in->max_files) < 0)
                                res->error_message = NULL;
                        return res;
                }
                if (r < 0) {
                        res->error = r;
                        return res;
                }
        }

        /* The same source named twice (directly, through a symlink, or in two
         * overlapping directories) is one entry. Keep the first. Named with
         * other explicit targets or display names, it stays twice. */
        if (res->n_entries > 0)
                qsort(res->entries, res->n_entries, sizeof(ExpandEntry), cmp_entries);
        for (size_t i = 0; i < res->n_entries; i++) {
                if (kept > 0 && !res->entries[i].error_type && !res->entries[kept - 1].error_type &&
                    strcmp(res->entries[kept - 1].source, res->entries[i].source) == 0 &&
                    same_request(&res->entries[kept - 1], &res->entries[i])) {
                        entry_done(&res->entries[i], res->n_targets_per_entry);
                        continue;
                }
                res->entries[kept++] = res->entries[i];
        }
        res->n_entries = kept;
        return res;
}

ExpandResult *expand_result_free(ExpandResult *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_entries; i++)
                entry_done(&r->entries[i], r->n_targets_per_entry);
        free(r->entries);
        free(r->error_message);
        free(r);
        return NULL;
}
