/* SPDX-License-Identifier: MIT */
/* clean, and removing .pyc files.
 *
 * clean removes the .pyc files under the selected paths (or of a package),
 * optionally only those of the interpreters named with --python, then the
 * __pycache__ directories left empty. A .pyc is removed with its source's
 * flock held, so no compile of that source writes at the same moment; repair
 * removes orphans the same way. Every removal is noted here and recorded in
 * the provenance database from the loop.
 *
 * py3clean's clean (TAG_CLEAN_SOURCES) names source files instead, and
 * removes what Debian's py3clean removes for each DIR/NAME.py: every entry
 * of DIR/__pycache__ that the glob "NAME.*" matches (hidden names only when
 * NAME is hidden too, as Python's glob), DIR/NAME.pyc and DIR/NAME.pyo, and
 * for a NAME with a dot the same glob for the part before the first dot
 * (the workaround py3clean carries for bpo-22966); then DIR/__pycache__ if
 * that left it empty. With cache tags only "NAME.TAG.py[co]" (and the
 * dotless part's) is removed, and the tag "" means the legacy NAME.pyc and
 * NAME.pyo alone, as py3clean -V 3.1. Unlike py3clean it follows no
 * symlinked __pycache__ and removes only regular files, and it does not
 * take DIR/PART + "c" for a legacy .pyc of the dotless part (py3clean
 * does, which can remove a file that is no compiled file at all).
 *
 * A clean's place among the compiles: it covers the canonical paths
 * admin_clean_cover_run() gives, and runs after every compile of them that
 * came before it (queue.c). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin-private.h"
#include "rootpath.h"
#include "list.h"
#include "macro.h"
#include "pool.h"
#include "provdb.h"
#include "pycpath.h"
#include "safepath.h"
#include "util.h"
#include "writer.h"

/* Records a removal for provenance (thread side; sent to the recorder on
 * the loop). */
void admin_note_removed(Admin *a, const char *pyc, const char *source, InvalidationMode mode) {
        ProvJob *j;

        if (GREEDY_REALLOC(a->removed, a->allocated_removed, a->n_removed + 1) < 0)
                return;
        j = &a->removed[a->n_removed++];
        *j = (ProvJob){ .outcome = PROV_OUTCOME_REMOVED, .request_id = a->request_id };
        j->target = strdup(pyc);
        j->source = source ? strdup(source) : NULL;
        j->start_usec = j->end_usec = now_usec(CLOCK_REALTIME);
        {
                /* What was removed: its level from the name, its mode from
                 * the header (read before the removal). */
                _cleanup_free_ char *src = NULL, *tag = NULL;
                unsigned opt = 0;
                if (admin_pyc_source(pyc, &src, &tag, &opt) == 0) {
                        j->opt_level = opt;
                        j->cache_tag = TAKE_PTR(tag);
                }
                j->mode = mode;
        }
}

/* Removes @pyc holding its source's lock (if the source exists), so no
 * compile of that source writes at the same moment. */
int admin_remove_pyc(const char *pyc, const char *source) {
        _cleanup_close_ int sfd = -1;
        _cleanup_close_ int dfd = -1;
        const char *name;
        int r;

        if (source) {
                bool locked = false;

                sfd = open(source, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                for (int i = 0; sfd >= 0 && i < 100; i++) {
                        if (flock(sfd, LOCK_EX | LOCK_NB) == 0) {
                                locked = true;
                                break;
                        }
                        usleep(20000);
                }
                /* Someone compiles it right now and keeps at it: leave it. */
                if (sfd >= 0 && !locked)
                        return -EBUSY;
        }
        r = safepath_open_parent(pyc, &dfd, &name);
        if (r < 0)
                return r;
        if (unlinkat(dfd, name, 0) < 0)
                return negative_errno();
        (void)writer_sync_dir(dfd);
        return 0;
}

static bool tag_selected(Admin *a, const char *tag) {
        if (a->n_pools == 0)
                return true;
        /* The tags were copied on the loop (admin_submit()): pools are
         * the loop's, never read here. */
        for (size_t i = 0; i < a->n_clean_tags; i++)
                if (strcmp(a->clean_tags[i], tag) == 0)
                        return true;
        return false;
}

static int clean_one(Admin *a, const char *pyc) {
        _cleanup_free_ char *source = NULL, *tag = NULL;
        InvalidationMode mode;
        struct stat st;
        unsigned opt;
        MsgWriter w;
        int r;

        if (admin_pyc_source(pyc, &source, &tag, &opt) < 0 || !tag_selected(a, tag))
                return 0;
        if (lstat(pyc, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        mode = admin_pyc_mode(pyc);
        r = admin_remove_pyc(pyc, stat(source, &st) == 0 ? source : NULL);
        if (r < 0)
                return 0;
        admin_note_removed(a, pyc, source, mode);
        if (admin_rec_begin(&w) < 0)
                return -ENOMEM;
        admin_rec_path(a, &w, "path", pyc);
        return admin_rec_end(a, &w);
}

static void remove_empty_cache_dirs(const char *dir, unsigned depth) {
        DIR *d;
        struct dirent *de;

        if (depth > 256 || !(d = opendir(dir)))
                return;
        while ((de = readdir(d))) {
                _cleanup_free_ char *full = NULL;
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                full = path_join(dir, de->d_name);
                if (!full || lstat(full, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (strcmp(de->d_name, PYCACHE_DIR) == 0)
                        (void)rmdir(full); /* only succeeds when empty */
                else
                        remove_empty_cache_dirs(full, depth + 1);
        }
        closedir(d);
}

/* ---- py3clean's rule ------------------------------------------------ */

/* Takes @source's flock (if it exists) as admin_remove_pyc() does; the fd
 * holds it. -EBUSY when a writer keeps it. */
static int lock_source(const char *source, int *ret_fd) {
        _cleanup_close_ int fd = open(source, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat st;

        *ret_fd = -1;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return 0; /* no source (any more): nobody compiles it */
        for (int i = 0; i < 100; i++) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        *ret_fd = TAKE_FD(fd);
                        return 0;
                }
                usleep(20000);
        }
        return -EBUSY;
}

/* One file to remove: a regular file @name in @dir_fd (which is @dir). */
static int remove_one(Admin *a, int dir_fd, const char *dir, const char *name, const char *source) {
        _cleanup_free_ char *path = path_join(dir, name);
        InvalidationMode mode;
        struct stat st;
        MsgWriter w;
        int r;

        if (!path)
                return -ENOMEM;
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return 0; /* gone, or not a file we remove */
        mode = admin_pyc_mode(path);
        r = unlinkat(dir_fd, name, 0) < 0 ? negative_errno() : 0;
        if (r == -ENOENT)
                return 0;
        if (admin_rec_begin(&w) < 0)
                return -ENOMEM;
        admin_rec_path(a, &w, "path", path);
        if (r < 0) {
                a->n_failed++;
                admin_rec_str(&w, "error", strerror(-r));
        } else
                admin_note_removed(a, path, source, mode);
        return admin_rec_end(a, &w);
}

static bool tag_wanted(Admin *a, const char *tag) {
        for (size_t i = 0; i < a->n_source_tags; i++)
                if (strcmp(a->source_tags[i], tag) == 0)
                        return true;
        return false;
}

/* py3clean's glob1(): fnmatch without escapes, hidden names only for a
 * hidden pattern. */
static bool glob_match(const char *pattern, const char *name) {
        if (name[0] == '.' && pattern[0] != '.')
                return false;
        return fnmatch(pattern, name, FNM_NOESCAPE) == 0;
}

/* Whether @entry of __pycache__ belongs to stem @stem: "STEM.*", or with
 * tags "STEM.TAG.py[co]" for each non-empty tag. */
static bool cache_entry_matches(Admin *a, const char *stem, const char *entry) {
        char pattern[NAME_MAX * 2 + 16];

        if (a->n_source_tags == 0) {
                snprintf(pattern, sizeof(pattern), "%s.*", stem);
                return glob_match(pattern, entry);
        }
        for (size_t i = 0; i < a->n_source_tags; i++) {
                if (!*a->source_tags[i])
                        continue;
                snprintf(pattern, sizeof(pattern), "%s.%s.py[co]", stem, a->source_tags[i]);
                if (glob_match(pattern, entry))
                        return true;
        }
        return false;
}

static int clean_source(Admin *a, const char *named) {
        _cleanup_free_ char *source = NULL, *dir = NULL, *stem = NULL, *sane = NULL, *cache = NULL;
        _cleanup_close_ int dir_fd = -1, cache_fd = -1, lock_fd = -1;
        const char *name, *slash;
        bool removed_cached = false;
        size_t len;
        int r;

        /* Canonical as a compile names it: the directory resolved, the
         * file itself not (a symlinked module's .pyc is beside the link). */
        r = rootpath_canonicalize_named(a->root, named, true, &source);
        if (r < 0)
                return 0; /* its directory is gone: nothing compiled there either */
        slash = strrchr(source, '/');
        name = slash + 1;
        len = strlen(name);
        if (len <= 3 || strcmp(name + len - 3, ".py") != 0)
                return 0; /* not a source: py3clean only ever sends *.py */
        dir = strndup(source, slash == source ? 1 : (size_t)(slash - source));
        stem = strndup(name, len - 3);
        if (!dir || !stem)
                return -ENOMEM;
        if (strchr(stem, '.') && !(sane = strndup(stem, strcspn(stem, "."))))
                return -ENOMEM;
        r = safepath_open_dir(dir, &dir_fd);
        if (r < 0)
                return 0; /* gone, or reached through a symlink swapped in since */

        r = lock_source(source, &lock_fd);
        if (r < 0) {
                MsgWriter w;
                a->n_failed++;
                if (admin_rec_begin(&w) < 0)
                        return -ENOMEM;
                admin_rec_path(a, &w, "path", source);
                admin_rec_str(&w, "error", "a writer keeps the source locked");
                return admin_rec_end(a, &w);
        }

        /* The legacy files beside the source: always, or with tag "". */
        if (a->n_source_tags == 0 || tag_wanted(a, "")) {
                char legacy[NAME_MAX + 2];

                for (const char *suffix = "co"; *suffix && r >= 0; suffix++) {
                        if (snprintf(legacy, sizeof(legacy), "%s%c", name, *suffix) >= (int)sizeof(legacy))
                                break;
                        r = remove_one(a, dir_fd, dir, legacy, source);
                }
        }
        if (r < 0)
                return r;

        /* __pycache__, never through a symlink (writer_open_cache_dir()
         * refuses one with -ELOOP/-ENOTDIR). */
        if (a->n_source_tags > 0) {
                bool cache_tags = false;

                for (size_t i = 0; i < a->n_source_tags; i++)
                        cache_tags = cache_tags || *a->source_tags[i];
                if (!cache_tags)
                        return 0; /* the legacy files only */
        }
        if (writer_open_cache_dir(dir_fd, false, &cache_fd) < 0)
                return 0;
        cache = path_join(dir, PYCACHE_DIR);
        if (!cache)
                return -ENOMEM;
        {
                _cleanup_close_ int list_fd = fcntl(cache_fd, F_DUPFD_CLOEXEC, 3);
                StrList names = {};
                struct dirent *de;
                DIR *d;

                if (list_fd < 0 || !(d = fdopendir(list_fd)))
                        return 0;
                list_fd = -1; /* consumed by the DIR */
                /* Collect first, remove after: a directory is not changed
                 * under its own readdir(). */
                while (r >= 0 && (de = readdir(d)))
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
                            (cache_entry_matches(a, stem, de->d_name) ||
                             (sane && cache_entry_matches(a, sane, de->d_name))))
                                r = admin_strlist_add(&names, de->d_name);
                closedir(d);
                for (size_t i = 0; i < names.n && r >= 0; i++) {
                        uint64_t before = a->n_removed;
                        r = remove_one(a, cache_fd, cache, names.v[i], source);
                        removed_cached = removed_cached || a->n_removed > before;
                }
                strlist_done(&names);
        }
        /* As py3clean: the cache directory goes when that left it empty
         * (AT_REMOVEDIR fails on a symlink and on anything not empty). */
        if (r >= 0 && removed_cached && unlinkat(dir_fd, PYCACHE_DIR, AT_REMOVEDIR) == 0)
                (void)writer_sync_dir(dir_fd);
        return r;
}

static void clean_sources_run(Admin *a) {
        int r = 0;

        for (size_t i = 0; i < a->n_paths && r >= 0; i++)
                r = clean_source(a, a->paths[i]);
        if (r < 0)
                a->error = r;
}

void admin_clean_cover_run(Admin *a) {
        int r = 0;

        /* A clean of a package's recorded files may touch anything. */
        if (a->package && !a->clean_sources)
                r = admin_strlist_add(&a->cover, "/");
        for (size_t i = 0; i < a->n_paths && r >= 0; i++) {
                _cleanup_free_ char *p = NULL, *src = NULL;
                unsigned opt;

                if (rootpath_canonicalize_named(a->root, a->paths[i], true, &p) < 0) {
                        /* Whatever it is, it is named so. */
                        r = admin_strlist_add(&a->cover, a->paths[i]);
                        continue;
                }
                r = admin_strlist_add(&a->cover, p);
                /* A .pyc named to a plain clean: its source is what compiles write. */
                if (r >= 0 && !a->clean_sources && admin_pyc_source(p, &src, NULL, &opt) == 0)
                        r = admin_strlist_add(&a->cover, src);
        }
        if (r < 0) {
                /* Out of memory: cover everything rather than too little. */
                strlist_done(&a->cover);
                (void)admin_strlist_add(&a->cover, "/");
        }
}

void admin_clean_run(Admin *a) {
        StrList files = {};
        int r = 0;

        if (a->clean_sources) {
                clean_sources_run(a);
                return;
        }

        r = admin_collect_selected(a, &files, NULL);
        if (r >= 0) {
                strlist_sort_unique(&files);
                for (size_t i = 0; i < files.n && r >= 0; i++)
                        r = clean_one(a, files.v[i]);
        }
        for (size_t i = 0; i < a->n_paths; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;
                if (admin_canonical(a, a->paths[i], &p) == 0 && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        remove_empty_cache_dirs(p, 0);
        }
        if (r < 0)
                a->error = r;
        strlist_done(&files);
}
