/* SPDX-License-Identifier: MIT */
/* clean, and removing .pyc files.
 *
 * clean removes the .pyc files under the selected paths (or of a package),
 * optionally only those of the interpreters named with --python, then the
 * __pycache__ directories left empty. A .pyc is removed with its source's
 * flock held, so no compile of that source writes at the same moment; repair
 * removes orphans the same way. Every removal is noted here and recorded in
 * the provenance database from the loop. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin-private.h"
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
        admin_rec_str(&w, "path", pyc);
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

void admin_clean_run(Admin *a) {
        StrList files = {};
        int r = 0;

        r = admin_collect_selected(a, &files, NULL);
        if (r >= 0) {
                strlist_sort_unique(&files);
                for (size_t i = 0; i < files.n && r >= 0; i++)
                        r = clean_one(a, files.v[i]);
        }
        for (size_t i = 0; i < a->n_paths; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;
                if (admin_canonical(a->paths[i], &p) == 0 && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        remove_empty_cache_dirs(p, 0);
        }
        if (r < 0)
                a->error = r;
        strlist_done(&files);
}
