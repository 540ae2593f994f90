/* SPDX-License-Identifier: MIT */
/* verify and repair: classifying .pyc files.
 *
 * verify classifies every .pyc under the selected paths:
 *   corrupt  header invalid, file truncated, or marshal data that does not
 *            load (checked by the file's own interpreter, found by magic)
 *   stale    the header does not describe the current source
 *   foreign  not what pycqueue last wrote there, or never written by it
 *   orphan   no source beside it
 *   missing  pycqueue wrote it, its source is there, the .pyc is gone
 * A file whose sha256 equals our last write is trusted without loading it.
 * repair runs verify and removes the orphans here, on the I/O thread; the
 * rest is recompiled from the loop (see repair_compile() in admin.c). */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin-private.h"
#include "rootpath.h"
#include "safepath.h"
#include "spawn.h"
#include "macro.h"
#include "manager.h"
#include "provdb.h"
#include "pycheader.h"
#include "pycpath.h"
#include "util.h"
#include "checker-code.h"

/* One checker run covers at most this many files or bytes: each run has
 * its own deadline, so a long verify of honest files never meets it, while
 * a hostile file costs at most one deadline. */
#define CHECKER_MAX_FILES 4096
#define CHECKER_MAX_BYTES (256ull << 20)
#define CHECKER_MAX_REPLY 4096

typedef struct Check {
        char **files;
        size_t n;
        char **bad;         /* the caller's ret_bad */
        size_t run_start;   /* the first file of this checker run */
        size_t next_feed;   /* next file to send */
        size_t next_answer; /* next file an answer is due for */
        size_t chunk_end;   /* this run sends no file at or past this */
        uint64_t chunk_bytes;
        uint64_t max_pyc;   /* the most read of one file */
        bool fed_all;
} Check;

/* Has this run been sent every file it gets? At least one per run, so
 * that every run gets somewhere. */
static bool check_fed_all(const Check *c) {
        return c->fed_all || c->next_feed >= c->chunk_end ||
               (c->next_feed > c->run_start && c->chunk_bytes >= CHECKER_MAX_BYTES);
}

static int check_feed(void *userdata, uint8_t **ret_frame, size_t *ret_size) {
        Check *c = userdata;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *data = NULL;
        size_t dsize = 0;
        uint8_t *frame;

        if (check_fed_all(c)) {
                c->chunk_end = c->next_feed;
                c->fed_all = true;
                return 0;
        }
        fd = open(c->files[c->next_feed], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || read_full_fd(fd, c->max_pyc, &data, &dsize) < 0)
                dsize = 0; /* sent empty: it does not load */
        frame = malloc(SPAWN_FRAME_HEADER + dsize);
        if (!frame)
                return -ENOMEM;
        unaligned_write_le32(frame, (uint32_t)dsize);
        if (dsize > 0)
                memcpy(frame + SPAWN_FRAME_HEADER, data, dsize);
        c->next_feed++;
        c->chunk_bytes += dsize;
        *ret_frame = frame;
        *ret_size = SPAWN_FRAME_HEADER + dsize;
        return 1;
}

static int check_on_frame(void *userdata, const uint8_t *p, size_t size) {
        Check *c = userdata;

        if (c->next_answer >= c->next_feed || size < 1 || p[0] > 1 || (p[0] == 0 && size != 1))
                return -EBADMSG; /* an answer to nothing asked, or garbage */
        if (p[0] == 1) {
                c->bad[c->next_answer] =
                        strndup(size > 1 ? (const char *)p + 1 : "error", size > 1 ? size - 1 : 5);
                if (!c->bad[c->next_answer])
                        return -ENOMEM;
        }
        c->next_answer++;
        if (c->next_answer < c->next_feed || !check_fed_all(c))
                return 0;
        c->chunk_end = c->next_feed;
        return 1;
}

static int check_set_bad(Check *c, size_t i, const char *text) {
        free(c->bad[i]);
        c->bad[i] = strdup(text);
        return c->bad[i] ? 0 : -ENOMEM;
}

/* Loads every .pyc in @files with @interpreter's marshal; @ret_bad[i] gets
 * an error text (malloc'd) for those that do not load, or whose check did
 * not finish in time. The checker (checker.py) gets the bytes, not the
 * paths, and runs in the workers' sandbox: the files are untrusted input,
 * and any user may ask to verify. This runs on an I/O thread and blocks it,
 * but each run of the checker only until its deadline (checker_timeout):
 * then the checker is killed, the file it was loading is reported as timed
 * out, and so is every file after it, unloaded — one hostile file must not
 * buy its owner a deadline per file. A checker that dies on a file (out of
 * memory, say) has that file reported, and the rest go to a new one under
 * the same deadline. Returns 0 once @ret_bad is filled in, or a negative
 * errno with @ret_bad untouched. */
static int unmarshal_check(Admin *a, const char *interpreter, char **files, size_t n, char **ret_bad) {
        /* A root's interpreter runs inside it, as its workers do. */
        const char *exe = rootpath_inside(a->root, interpreter);
        char *argv[] = { (char *)exe, (char *)"-I", (char *)"-S", (char *)"-c", (char *)checker_code, NULL };
        _cleanup_close_ int root_fd = -1;
        char *envp[] = { (char *)"LC_ALL=C.UTF-8", NULL };
        const Config *config = a->manager->config;
        SandboxOptions so = {
                .uid = a->manager->worker_uid,
                .gid = a->manager->worker_gid,
                .memory_limit = config->worker_memory_limit,
                /* A backstop only: the deadline below comes first. */
                .cpu_limit = (config->checker_timeout_usec + 999999) / 1000000 + 1,
        };
        Check c = { .files = files, .n = n, .bad = ret_bad, .max_pyc = admin_max_pyc(a) };
        char text[128];
        int r = 0;

        for (size_t i = 0; i < n; i++)
                ret_bad[i] = NULL;
        if (exe != interpreter) {
                r = safepath_open_dir(a->root, &root_fd);
                if (r < 0)
                        return r;
                so.chroot = true;
                so.root_fd = root_fd;
        }

        while (c.next_answer < n && r >= 0) {
                uint64_t deadline = now_usec(CLOCK_MONOTONIC) + config->checker_timeout_usec;

                c.chunk_end = MIN(n, c.next_answer + CHECKER_MAX_FILES);
                c.chunk_bytes = 0;
                while (c.next_answer < c.chunk_end && r >= 0) {
                        SandboxChild child = SANDBOX_CHILD_NULL;

                        c.run_start = c.next_feed = c.next_answer;
                        c.fed_all = false;
                        r = sandbox_spawn(&so, exe, argv, envp, &child);
                        if (r < 0)
                                break;
                        r = sandbox_exchange(&child, check_feed, check_on_frame, &c, CHECKER_MAX_REPLY,
                                             deadline);
                        sandbox_child_done(&child);
                        if (r == 0)
                                break; /* every file of the run answered */
                        if (r == -ENOMEM)
                                break;
                        if (r == -ETIMEDOUT) {
                                snprintf(text, sizeof(text), "marshal check timed out (over %.1f s)",
                                         (double)config->checker_timeout_usec / 1e6);
                                r = check_set_bad(&c, c.next_answer, text);
                                for (size_t i = c.next_answer + 1; i < n && r >= 0; i++)
                                        r = check_set_bad(&c, i,
                                                          "marshal check timed out on an earlier file; "
                                                          "not loaded");
                                if (r >= 0)
                                        return 0;
                                break;
                        }
                        /* It died or spoke garbage on the file it was loading. */
                        snprintf(text, sizeof(text), "the checker died loading it (%s)", strerror(-r));
                        r = check_set_bad(&c, c.next_answer, text);
                        c.next_answer++;
                }
        }
        if (r < 0)
                for (size_t i = 0; i < n; i++)
                        free(ret_bad[i]), ret_bad[i] = NULL;
        return r < 0 ? r : 0;
}

/* Classifies one .pyc; appends an item when there is a problem. Untrusted
 * files with a valid header go to @to_load for the marshal check. */
static int classify(Admin *a, ProvLookup *lookup, const char *pyc, StrList *to_load) {
        _cleanup_free_ char *source = NULL, *tag = NULL, *data = NULL, *source_in_root = NULL;
        const char *src;
        _cleanup_close_ int fd = -1;
        uint8_t sha[32], head[PYC_HEADER_SIZE];
        ProvLastWrite lw = {};
        char detail[1024], when[64];
        struct stat st, sst;
        PycHeader h;
        unsigned opt;
        bool exists;
        ssize_t n;
        int r;

        a->checked++;
        r = admin_pyc_source(pyc, &source, &tag, &opt);
        if (r < 0)
                return 0; /* not a cache file name: not ours to judge */
        if (a->root) {
                /* A symlinked source of a root leads where it leads inside
                 * the root; one that leads nowhere there (or out of it,
                 * "" below) is no source. */
                r = rootpath_canonicalize(a->root, rootpath_inside(a->root, source), &source_in_root);
                src = r >= 0 ? source_in_root : "";
        } else
                src = source;

        /* A name from the database (a package's targets, the recorded
         * targets under a directory) the caller could not look up itself is
         * none of its business: not even that it exists. */
        if (!admin_caller_may_see(a, pyc))
                return 0;
        if (lookup)
                (void)provdb_lookup_last_write(lookup, pyc, &lw);

        fd = open(pyc, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 && errno == EACCES)
                return 0; /* the caller may not read it: nothing to say */
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                if (errno == ENOENT && lw.found && stat(src, &sst) == 0) {
                        admin_fmt_time(lw.time_usec, when, sizeof(when));
                        snprintf(detail, sizeof(detail), "pycqueue wrote it at %s; it is gone", when);
                        r = admin_add_item(a, pyc, source, "missing", detail);
                        if (r >= 0 && lw.interpreter[0])
                                a->items[a->n_items - 1].interpreter = strdup(lw.interpreter);
                        if (r >= 0)
                                a->items[a->n_items - 1].opt_level = opt;
                        return r;
                }
                if (fd >= 0 || errno != ENOENT)
                        return admin_add_item(a, pyc, source, "corrupt", "not a regular file");
                return 0;
        }

        if (stat(src, &sst) < 0) {
                if (errno != ENOENT && errno != ENOTDIR)
                        return 0; /* out of the caller's reach */
                return admin_add_item(a, pyc, NULL, "orphan", "no source file beside it");
        }
        if (!S_ISREG(sst.st_mode))
                return admin_add_item(a, pyc, NULL, "orphan", "no source file beside it");

        n = loop_read(fd, head, sizeof(head));
        if (n < (ssize_t)sizeof(head) || pyc_header_parse(head, sizeof(head), &h) < 0) {
                snprintf(detail, sizeof(detail),
                         n < (ssize_t)sizeof(head) ? "truncated: %zd bytes" : "invalid header", n);
                r = admin_add_item(a, pyc, source, "corrupt", detail);
                goto with_hint;
        }
        if (st.st_size == (off_t)PYC_HEADER_SIZE) {
                r = admin_add_item(a, pyc, source, "corrupt", "header only: no code after it");
                goto with_hint;
        }

        /* The name says which interpreter wrote it; a magic number that is
         * not that interpreter's means the header is damaged. */
        if (tag && admin_known_by_tag(a, tag) &&
            memcmp(admin_known_by_tag(a, tag)->magic, h.magic, 4) != 0) {
                snprintf(detail, sizeof(detail), "bad magic number %02x%02x%02x%02x for %s", h.magic[0],
                         h.magic[1], h.magic[2], h.magic[3], tag);
                r = admin_add_item(a, pyc, source, "corrupt", detail);
                goto with_hint;
        }

        /* stale: does the header describe the current source? */
        if (pyc_header_mode(&h) == INVALIDATION_TIMESTAMP) {
                if (h.mtime != pyc_mtime_field(sst.st_mtim.tv_sec, sst.st_mtim.tv_nsec) ||
                    h.size != (uint32_t)((uint64_t)sst.st_size & 0xffffffffu)) {
                        snprintf(detail, sizeof(detail),
                                 "the source changed since (mtime/size in the header differ)");
                        r = admin_add_item(a, pyc, source, "stale", detail);
                        goto with_hint;
                }
        } else {
                _cleanup_close_ int sfd = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                uint8_t *sdata = NULL;
                size_t ssize = 0;
                bool current = false;

                if (sfd >= 0 && read_full_fd(sfd, 64u << 20, &sdata, &ssize) == 0) {
                        current = pyc_source_hash(PYC_HASH_SIPHASH13, h.magic, sdata, ssize) == h.hash ||
                                  pyc_source_hash(PYC_HASH_SIPHASH24, h.magic, sdata, ssize) == h.hash;
                        free(sdata);
                }
                if (!current) {
                        r = admin_add_item(a, pyc, source, "stale",
                                           "the source's hash differs from the one in the header");
                        goto with_hint;
                }
        }

        r = admin_file_sha256(pyc, admin_max_pyc(a), sha, &exists);
        if (r < 0)
                return admin_add_item(a, pyc, source, "corrupt", "cannot read it");
        {
                uint64_t when_usec;
                pid_t pid;
                char exe[512];

                /* Even identical bytes are foreign when the audit saw
                 * another process write them after us. */
                if (lookup && provdb_lookup_audit(lookup, pyc, &when_usec, &pid, exe, sizeof(exe)) > 0 &&
                    (!lw.found || when_usec > lw.time_usec)) {
                        admin_fmt_time(when_usec, when, sizeof(when));
                        snprintf(detail, sizeof(detail),
                                 "written by pid %d (%s) at %s, not by pycqueue (audit)", (int)pid, exe,
                                 when);
                        r = admin_add_item(a, pyc, source, "foreign", detail);
                        goto with_hint;
                }
        }
        if (lw.found && lw.have_pyc_sha256 && memcmp(sha, lw.pyc_sha256, 32) == 0)
                return 0; /* exactly what we wrote: trusted */

        /* Not ours: look inside before calling it merely foreign. */
        r = admin_strlist_add(to_load, pyc);
        return r;

with_hint:
        if (r >= 0) {
                Item *it = &a->items[a->n_items - 1];
                it->opt_level = opt;
                if (pyc_header_parse(head, sizeof(head), &h) == 0)
                        it->mode = pyc_header_mode(&h);
                if (lw.found && lw.interpreter[0])
                        it->interpreter = strdup(lw.interpreter);
                else if (tag && admin_known_by_tag(a, tag))
                        it->interpreter = strdup(admin_known_by_tag(a, tag)->interpreter);
        }
        return r;
}

/* Runs the marshal check on the untrusted files, grouped by magic, and
 * classifies them corrupt or foreign. */
static int judge_untrusted(Admin *a, ProvLookup *lookup, StrList *files) {
        _cleanup_free_ char **bad = NULL;
        int r = 0;

        if (files->n == 0)
                return 0;
        bad = calloc(files->n, sizeof(char *));
        if (!bad)
                return -ENOMEM;

        /* Group by magic: one checker process per interpreter. */
        for (size_t i = 0; i < a->n_known; i++) {
                StrList group = {};
                size_t *index;
                char **gbad;

                if (!a->known[i].runnable)
                        continue;
                if (admin_past_deadline(a)) {
                        r = -ETIMEDOUT; /* below: frees what was found, says nothing */
                        break;
                }
                index = calloc(files->n, sizeof(size_t));
                if (!index)
                        return -ENOMEM;
                for (size_t k = 0; k < files->n; k++) {
                        uint8_t head[4];
                        _cleanup_close_ int fd =
                                open(files->v[k], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                        if (fd < 0 || loop_read(fd, head, 4) != 4 || memcmp(head, a->known[i].magic, 4) != 0)
                                continue;
                        index[group.n] = k;
                        if (admin_strlist_add(&group, files->v[k]) < 0)
                                break;
                }
                gbad = calloc(MAX(group.n, (size_t)1), sizeof(char *));
                if (gbad && group.n > 0 &&
                    unmarshal_check(a, a->known[i].interpreter, group.v, group.n, gbad) == 0)
                        for (size_t k = 0; k < group.n; k++)
                                bad[index[k]] = gbad[k];
                free(gbad);
                free(index);
                strlist_done(&group);
        }

        for (size_t k = 0; k < files->n && r >= 0; k++) {
                _cleanup_free_ char *source = NULL, *tag = NULL;
                ProvLastWrite lw = {};
                char detail[1024], when[64];
                unsigned opt = 0;
                uint8_t head[PYC_HEADER_SIZE];
                PycHeader h;
                Item *it;

                (void)admin_pyc_source(files->v[k], &source, &tag, &opt);
                if (lookup)
                        (void)provdb_lookup_last_write(lookup, files->v[k], &lw);
                if (bad[k]) {
                        snprintf(detail, sizeof(detail), "marshal data does not load: %s", bad[k]);
                        r = admin_add_item(a, files->v[k], source, "corrupt", detail);
                } else if (lw.found) {
                        admin_fmt_time(lw.time_usec, when, sizeof(when));
                        snprintf(detail, sizeof(detail),
                                 "content differs from what pycqueue wrote at %s; another process replaced "
                                 "it",
                                 when);
                        r = admin_add_item(a, files->v[k], source, "foreign", detail);
                } else if (lookup)
                        r = admin_add_item(a, files->v[k], source, "foreign", "not written by pycqueue");
                else
                        continue; /* no record to compare with: only loading says anything */
                if (r < 0)
                        break;
                it = &a->items[a->n_items - 1];
                it->opt_level = opt;
                {
                        _cleanup_close_ int fd =
                                open(files->v[k], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                        if (fd >= 0 && loop_read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
                            pyc_header_parse(head, sizeof(head), &h) == 0)
                                it->mode = pyc_header_mode(&h);
                }
                if (lw.found && lw.interpreter[0])
                        it->interpreter = strdup(lw.interpreter);
                else if (tag && admin_known_by_tag(a, tag))
                        it->interpreter = strdup(admin_known_by_tag(a, tag)->interpreter);
        }
        for (size_t k = 0; k < files->n; k++)
                free(bad[k]);
        return r;
}

static int collect_missing(const char *target, void *userdata) {
        StrList *l = userdata;
        struct stat st;

        if (lstat(target, &st) == 0)
                return 0; /* present: classified with the others */
        if (errno != ENOENT && errno != ENOTDIR)
                return 0; /* out of the caller's reach: not for it to hear of */
        return admin_strlist_add(l, target);
}

void admin_verify_run(Admin *a) {
        ProvLookup *lookup = NULL;
        StrList files = {}, untrusted = {};
        int r = 0;

        if (a->have_db) {
                (void)provdb_interpreters(a->db_path, admin_add_known, a);
                (void)provdb_lookup_open(a->db_path, &lookup);
        }

        r = admin_collect_selected(a, &files, collect_missing);
        /* From here on only files are touched (and the look-ups, on a
         * connection opened above): with the caller's rights. */
        if (r >= 0)
                r = admin_enter_caller(a);
        if (r >= 0) {
                strlist_sort_unique(&files);
                for (size_t i = 0; i < files.n && r >= 0; i++)
                        r = admin_past_deadline(a) ? -ETIMEDOUT
                                                   : classify(a, lookup, files.v[i], &untrusted);
        }
        if (r >= 0 || r == -ENOSPC) {
                int k = judge_untrusted(a, lookup, &untrusted);
                if (r >= 0)
                        r = k;
        }
        admin_leave_caller(a);
        if (r == -ENOSPC)
                r = 0; /* as many findings as the reply may carry; it says truncated */
        if (r == -ETIMEDOUT && !a->error_message)
                a->error_message = strdup("the request ran out of time (request_time_limit)");
        if (r < 0)
                a->error = r;
        provdb_lookup_close(lookup);
        strlist_done(&files);
        strlist_done(&untrusted);
}

void admin_repair_run(Admin *a) {
        admin_verify_run(a);
        if (a->error < 0)
                return;
        for (size_t i = 0; i < a->n_items; i++) {
                Item *it = &a->items[i];
                int r;

                if (strcmp(it->problem, "orphan") != 0)
                        continue;
                r = admin_remove_pyc(it->pyc, NULL);
                it->action = "removed";
                it->ok = r >= 0;
                if (r < 0)
                        it->result_detail = strdup(strerror(-r));
                else
                        admin_note_removed(a, it->pyc, NULL, it->mode);
        }
}

void admin_items_to_records(Admin *a, bool repair) {
        uint64_t repaired = 0, failed = 0;

        for (size_t i = 0; i < a->n_items; i++) {
                Item *it = &a->items[i];
                MsgWriter w;

                if (admin_rec_begin(&w) < 0)
                        return;
                admin_rec_path(a, &w, "path", it->pyc);
                admin_rec_str(&w, "problem", it->problem);
                admin_rec_str(&w, "detail", it->detail);
                if (repair) {
                        admin_rec_str(&w, "action", it->action ? it->action : "none");
                        admin_rec_str(&w, "result", it->ok ? "ok" : "failed");
                        if (it->result_detail)
                                admin_rec_str(&w, "result_detail", it->result_detail);
                        if (it->ok)
                                repaired++;
                        else
                                failed++;
                }
                if (admin_rec_end(a, &w) < 0)
                        return;
        }
        if (repair) {
                admin_rec_u64(&a->done, "repaired", repaired);
                admin_rec_u64(&a->done, "failed", failed);
        } else {
                admin_rec_u64(&a->done, "checked", a->checked);
                admin_rec_u64(&a->done, "problems", a->n_items);
        }
}
