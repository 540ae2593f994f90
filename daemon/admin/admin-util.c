/* SPDX-License-Identifier: MIT */
/* Helpers the admin verbs share, all on the I/O thread side.
 *
 * Replies are MSG_RECORD frames streamed to the loop (admin-stream.c), at
 * most max_reply_rows of them. Paths are taken apart the way
 * the interpreter names its cache files ("DIR/__pycache__/STEM.TAG.pyc"),
 * and trees are walked without following symlinked directories. Interpreters are known
 * by magic number and cache tag, from the provenance database and from the
 * pools this daemon runs, so a .pyc can be loaded or recompiled by the
 * interpreter it belongs to. */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <nettle/sha2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "admin-private.h"
#include "pycheader.h"
#include "list.h"
#include "macro.h"
#include "protocol.h"
#include "provdb.h"
#include "pycpath.h"
#include "rootpath.h"
#include "safepath.h"
#include "util.h"

/* ---- building replies (thread side) ---------------------------------- */

int admin_rec_begin(MsgWriter *w) {
        return msg_writer_init(w, MSG_RECORD);
}

void admin_rec_str(MsgWriter *w, const char *key, const char *value) {
        if (value)
                msg_put_stat(w, key, 's', value);
}

void admin_rec_path(Admin *a, MsgWriter *w, const char *key, const char *path) {
        admin_rec_str(w, key, rootpath_inside(a->root, path));
}

void admin_rec_u64(MsgWriter *w, const char *key, uint64_t v) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
        msg_put_stat(w, key, 'n', buf);
}

void admin_rec_bool(MsgWriter *w, const char *key, bool v) {
        msg_put_stat(w, key, 'b', v ? "true" : "false");
}

void admin_rec_time(MsgWriter *w, const char *key, uint64_t usec) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%llu.%06llu", (unsigned long long)(usec / 1000000u),
                 (unsigned long long)(usec % 1000000u));
        msg_put_stat(w, key, 'n', buf);
}

void admin_hex(const uint8_t *b, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
}

int admin_rec_end(Admin *a, MsgWriter *w) {
        uint8_t *data;
        size_t size;
        int r;

        if (a->n_records >= a->reply_rows_max) {
                msg_writer_done(w);
                a->truncated = true;
                return -ENOSPC;
        }
        r = msg_writer_finish(w, &data, &size);
        if (r < 0)
                return r;
        r = admin_stream_push(&a->stream, data, size);
        if (r < 0)
                return r;
        a->n_records++;
        return 0;
}

void admin_rec_parents(MsgWriter *w, const char *parents) {
        char key[64];
        unsigned i = 0;

        for (const char *line = parents; line && *line && i < 64; i++) {
                const char *end = strchr(line, '\n'), *t1, *t2;
                size_t len = end ? (size_t)(end - line) : strlen(line);
                _cleanup_free_ char *copy = strndup(line, len);

                if (!copy)
                        return;
                t1 = strchr(copy, '\t');
                t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
                if (t1 && t2) {
                        *(char *)t1 = *(char *)t2 = '\0';
                        snprintf(key, sizeof(key), "parents.%u.pid", i);
                        msg_put_stat(w, key, 'n', copy);
                        snprintf(key, sizeof(key), "parents.%u.exe", i);
                        msg_put_stat(w, key, 's', t1 + 1);
                        snprintf(key, sizeof(key), "parents.%u.cmdline", i);
                        msg_put_stat(w, key, 's', t2 + 1);
                }
                line = end ? end + 1 : NULL;
        }
}

static const char *outcome_name(unsigned o) {
        if (o == PROV_OUTCOME_REMOVED)
                return "removed";
        return outcome_to_string((Outcome)o) ?: "unknown";
}

static bool admin_caller_may_read(Admin *a, const char *path);

/* One provenance row as a record (why, history). A caller who may not
 * change files sees who asked for another user's request (uid, time,
 * package, tool, outcome) but not how: that request's pid, gid, executable,
 * command line and parent chain are left out and the record says so. What
 * tells of a file's content (its sha256, its error message) is shown only
 * if the caller could read the file itself. */
void admin_rec_row(Admin *a, MsgWriter *w, const ProvRow *row) {
        const ProvJob *j = row->job;
        const ProvRequest *q = row->request;
        bool redact = !a->privileged && q->uid != a->uid;
        bool source_readable = !redact || admin_caller_may_read(a, j->source);
        bool pyc_readable = !redact || admin_caller_may_read(a, j->target);
        char buf[65];

        admin_rec_time(w, "time", j->end_usec ? j->end_usec : q->time_usec);
        admin_rec_str(w, "outcome", outcome_name(j->outcome));
        admin_rec_path(a, w, "target", j->target);
        admin_rec_path(a, w, "source", j->source);
        admin_rec_str(w, "root", q->root);
        admin_rec_u64(w, "uid", q->uid);
        if (redact)
                admin_rec_bool(w, "redacted", true);
        else {
                admin_rec_u64(w, "gid", q->gid);
                admin_rec_u64(w, "pid", (uint64_t)q->pid);
                admin_rec_str(w, "exe", q->exe);
                admin_rec_str(w, "cmdline", q->cmdline);
                admin_rec_parents(w, q->parents);
        }
        admin_rec_str(w, "package", q->package ? q->package : q->dpkg_package);
        admin_rec_str(w, "dpkg_package", q->dpkg_package);
        /* Like the package and the tool, and unlike the command line, shown
         * to every caller: it names one of a package's maintainer scripts,
         * which are world-readable, and holds nothing of a user's. */
        admin_rec_str(w, "dpkg_script", q->dpkg_script);
        admin_rec_str(w, "tool", q->tool);
        admin_rec_path(a, w, "interpreter", j->interpreter);
        admin_rec_str(w, "cache_tag", j->cache_tag);
        admin_rec_u64(w, "opt_level", j->opt_level);
        admin_rec_str(w, "invalidation_mode", invalidation_mode_to_string((InvalidationMode)j->mode));
        if (j->have_source_sha256 && source_readable) {
                admin_hex(j->source_sha256, 32, buf);
                admin_rec_str(w, "source_sha256", buf);
        }
        if (j->have_pyc_sha256 && pyc_readable) {
                admin_hex(j->pyc_sha256, 32, buf);
                admin_rec_str(w, "pyc_sha256", buf);
        }
        if (j->error_type) {
                admin_rec_str(w, "error_type", j->error_type);
                if (source_readable) {
                        admin_rec_u64(w, "error_line", j->error_line);
                        admin_rec_str(w, "error_message", j->error_message);
                }
        }
}

/* ---- file helpers (thread side) --------------------------------------- */

int admin_file_sha256(const char *path, uint64_t max, uint8_t out[32], bool *ret_exists) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct sha256_ctx ctx;
        uint8_t buf[65536];
        struct stat st;
        ssize_t n;

        *ret_exists = false;
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return -EBADFD;
        *ret_exists = true;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        sha256_init(&ctx);
        while ((n = loop_read(fd, buf, sizeof(buf))) > 0)
                sha256_update(&ctx, (size_t)n, buf);
        if (n < 0)
                return (int)n;
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
        return 0;
}

/* "DIR/__pycache__/STEM.TAG[.opt-N].pyc" → source "DIR/STEM.py", tag, opt. */
int admin_pyc_source(const char *pyc, char **ret_source, char **ret_tag, unsigned *ret_opt) {
        const char *slash = strrchr(pyc, '/'), *name, *end, *dot;
        size_t dirlen;
        unsigned opt = 0;

        if (!slash)
                return -EINVAL;
        name = slash + 1;
        if (!pycpath_is_cache_name(name))
                return -EINVAL;
        dirlen = (size_t)(slash - pyc);
        if (dirlen < strlen("/" PYCACHE_DIR) ||
            strncmp(slash - strlen(PYCACHE_DIR), PYCACHE_DIR, strlen(PYCACHE_DIR)) != 0 ||
            slash[-(int)strlen(PYCACHE_DIR) - 1] != '/')
                return -EINVAL;
        end = name + strlen(name) - 4;
        if (end - name > 6 && strncmp(end - 6, ".opt-", 5) == 0) {
                opt = (unsigned)(end[-1] - '0');
                end -= 6;
        }
        for (dot = end - 1; dot > name && *dot != '.'; dot--)
                ;
        if (ret_tag && !(*ret_tag = strndup(dot + 1, (size_t)(end - dot - 1))))
                return -ENOMEM;
        if (asprintf(ret_source, "%.*s%.*s.py", (int)(dirlen - strlen(PYCACHE_DIR)), pyc, (int)(dot - name),
                     name) < 0) {
                if (ret_tag)
                        free(*ret_tag);
                return -ENOMEM;
        }
        *ret_opt = opt;
        return 0;
}

/* Canonical form of a request path: directories fully, files by their
 * directory (see expand.c for why). */
InvalidationMode admin_pyc_mode(const char *pyc) {
        _cleanup_close_ int fd = open(pyc, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        uint8_t head[PYC_HEADER_SIZE];
        PycHeader h;

        if (fd < 0 || loop_read(fd, head, sizeof(head)) != (ssize_t)sizeof(head) ||
            pyc_header_parse(head, sizeof(head), &h) < 0)
                return INVALIDATION_TIMESTAMP;
        return pyc_header_mode(&h);
}

/* The kernel's overflow gid ("nogroup"): for a uid without a passwd entry,
 * no group's rights. */
#define ADMIN_OVERFLOW_GID ((gid_t)65534)

/* Completes the caller's identity from the user database (see
 * AdminCaller): its passwd entry's group, and the entry's supplementary
 * groups where its front end did not know them. No entry: no group. */
static void admin_resolve_fsid(Admin *a) {
        struct passwd pw, *found = NULL;
        char buf[16384];
        int n = FSID_MAX_GROUPS;

        if (getpwuid_r(a->fsid.uid, &pw, buf, sizeof(buf), &found) != 0)
                found = NULL;
        if (a->resolve_gid)
                a->fsid.gid = found ? pw.pw_gid : ADMIN_OVERFLOW_GID;
        if (a->resolve_groups) {
                a->fsid.n_groups = 0;
                /* With more groups than fit, none rather than some. */
                if (found && getgrouplist(pw.pw_name, pw.pw_gid, a->fsid.groups, &n) >= 0 && n >= 0 &&
                    n <= FSID_MAX_GROUPS)
                        a->fsid.n_groups = (size_t)n;
        }
        a->resolve_gid = a->resolve_groups = false;
}

int admin_enter_caller(Admin *a) {
        int r;

        if (!a->as_caller)
                return 0;
        assert(!a->entered);
        if (a->resolve_gid || a->resolve_groups)
                admin_resolve_fsid(a);
        r = fsid_enter(&a->fsid);
        if (r < 0)
                return r; /* never go on with our own rights instead */
        a->entered = true;
        return 0;
}

bool admin_past_deadline(Admin *a) {
        return a->stream.deadline_usec > 0 && now_usec(CLOCK_MONOTONIC) >= a->stream.deadline_usec;
}

void admin_leave_caller(Admin *a) {
        if (!a->entered)
                return;
        fsid_leave();
        a->entered = false;
}

/* Asks @probe about @path with the caller's rights (entering them unless
 * the thread has them already): true for the privileged, false for no path
 * or when the rights cannot be taken. */
static bool admin_ask_as_caller(Admin *a, const char *path, bool (*probe)(const char *path)) {
        bool was_entered = a->entered, answer;

        if (!a->as_caller)
                return true;
        if (!path || (!was_entered && admin_enter_caller(a) < 0))
                return false;
        answer = probe(path);
        if (!was_entered)
                admin_leave_caller(a);
        return answer;
}

/* Looking the path up succeeds, or says it is not there: the caller could
 * have learned as much. EACCES on the way (or anything else) hides it. */
static bool can_look_up(const char *path) {
        struct stat st;

        return lstat(path, &st) == 0 || errno == ENOENT || errno == ENOTDIR;
}

static bool can_read(const char *path) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

        safe_close(fd);
        return fd >= 0;
}

bool admin_caller_may_see(Admin *a, const char *path) {
        return admin_ask_as_caller(a, path, can_look_up);
}

/* True when the caller could read @path itself (always, for the
 * privileged). */
static bool admin_caller_may_read(Admin *a, const char *path) {
        return admin_ask_as_caller(a, path, can_read);
}

int admin_canonical(Admin *a, const char *path, char **ret) {
        return rootpath_canonicalize_named(a->root, path, true, ret);
}

int admin_collect_selected(Admin *a, StrList *files, int (*missing_fn)(const char *target, void *userdata)) {
        int r = 0;

        for (size_t i = 0; i < a->n_paths && r >= 0; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;
                bool dir;

                /* The walk with the caller's rights; the database (which
                 * only the daemon may open) with ours. */
                r = admin_enter_caller(a);
                if (r < 0)
                        return r;
                r = admin_canonical(a, a->paths[i], &p);
                if (r < 0) {
                        admin_leave_caller(a);
                        if (asprintf(&a->error_message, "%s: %s", a->paths[i], strerror(-r)) < 0)
                                a->error_message = NULL;
                        return r;
                }
                if (stat(p, &st) == 0)
                        dir = S_ISDIR(st.st_mode);
                else if (errno == ENOENT || errno == ENOTDIR)
                        dir = false;
                else {
                        /* Out of this caller's reach (EACCES on the way):
                         * say so, the same whether or not it exists. */
                        r = negative_errno();
                        admin_leave_caller(a);
                        if (asprintf(&a->error_message, "%s: %s", a->paths[i], strerror(-r)) < 0)
                                a->error_message = NULL;
                        return r;
                }
                if (dir) {
                        r = admin_collect_pycs(a, p, files, 0);
                        if (r == -ETIMEDOUT && !a->error_message &&
                            asprintf(&a->error_message, "%s: the walk ran out of time (request_time_limit)",
                                     a->paths[i]) < 0)
                                a->error_message = NULL;
                } else if (pycpath_is_source_name(p))
                        r = admin_collect_pycs_of_source(p, files);
                else
                        r = admin_strlist_add(files, p);
                admin_leave_caller(a);
                if (r >= 0 && dir && missing_fn && a->have_db) {
                        /* Targets recorded under the directory: read as us,
                         * judged with the caller's rights. */
                        StrList recorded = {};

                        r = provdb_targets(a->db_path, NULL, p, admin_strlist_add_cb, &recorded);
                        if (r >= 0)
                                r = admin_enter_caller(a);
                        for (size_t k = 0; r >= 0 && k < recorded.n; k++)
                                r = missing_fn(recorded.v[k], files);
                        admin_leave_caller(a);
                        strlist_done(&recorded);
                }
        }
        if (r >= 0 && a->package && a->have_db)
                r = provdb_targets(a->db_path, a->package, NULL, admin_strlist_add_cb, files);
        return r;
}

int admin_strlist_add(StrList *l, const char *s) {
        return strlist_add(l, s, ADMIN_MAX_FILES);
}

int admin_strlist_add_cb(const char *s, void *userdata) {
        return admin_strlist_add(userdata, s);
}

/* Collects every .pyc inside __pycache__ directories under @dir. */
int admin_collect_pycs(Admin *a, const char *dir, StrList *out, unsigned depth) {
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (depth > 256)
                return 0;
        d = opendir(dir);
        if (!d)
                return 0;
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_free_ char *full = NULL;
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                /* A walk of a huge tree (`verify /`) is bounded in time like
                 * the rest of an unprivileged request: one clock read per
                 * entry, next to an lstat. */
                if (admin_past_deadline(a)) {
                        r = -ETIMEDOUT;
                        break;
                }
                full = path_join(dir, de->d_name);
                if (!full) {
                        r = -ENOMEM;
                        break;
                }
                if (lstat(full, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (strcmp(de->d_name, PYCACHE_DIR) == 0) {
                        DIR *pd = opendir(full);
                        struct dirent *pe;

                        if (!pd)
                                continue;
                        while (r >= 0 && (pe = readdir(pd)))
                                if (pycpath_is_cache_name(pe->d_name)) {
                                        _cleanup_free_ char *p = path_join(full, pe->d_name);
                                        r = p ? admin_strlist_add(out, p) : -ENOMEM;
                                }
                        closedir(pd);
                } else
                        r = admin_collect_pycs(a, full, out, depth + 1);
        }
        closedir(d);
        return r;
}

/* The .pyc files of source @py: its __pycache__/STEM.*.pyc. */
int admin_collect_pycs_of_source(const char *py, StrList *out) {
        const char *slash = strrchr(py, '/');
        _cleanup_free_ char *cache = NULL, *stem = NULL;
        size_t stemlen;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (!slash || !pycpath_is_source_name(slash + 1))
                return -EINVAL;
        stemlen = strlen(slash + 1) - 3;
        if (asprintf(&cache, "%.*s/" PYCACHE_DIR, (int)(slash - py), py) < 0)
                return -ENOMEM;
        stem = strndup(slash + 1, stemlen);
        if (!stem)
                return -ENOMEM;
        d = opendir(cache);
        if (!d)
                return 0;
        while (r >= 0 && (de = readdir(d))) {
                char *tmp_source = NULL;
                unsigned opt;
                _cleanup_free_ char *full = path_join(cache, de->d_name);

                if (!full)
                        break;
                if (!pycpath_is_cache_name(de->d_name) || strncmp(de->d_name, stem, stemlen) != 0 ||
                    de->d_name[stemlen] != '.')
                        continue;
                if (admin_pyc_source(full, &tmp_source, NULL, &opt) == 0) {
                        if (strcmp(tmp_source, py) == 0)
                                r = admin_strlist_add(out, full);
                        free(tmp_source);
                }
        }
        closedir(d);
        return r;
}

const Known *admin_known_by_magic(Admin *a, const uint8_t magic[4]) {
        for (size_t i = 0; i < a->n_known; i++)
                if (memcmp(a->known[i].magic, magic, 4) == 0)
                        return &a->known[i];
        return NULL;
}

const Known *admin_known_by_tag(Admin *a, const char *tag) {
        for (size_t i = 0; i < a->n_known; i++)
                if (strcmp(a->known[i].cache_tag, tag) == 0)
                        return &a->known[i];
        return NULL;
}

int admin_add_known(const char *interpreter, const char *cache_tag, const char *magic, void *userdata) {
        Admin *a = userdata;
        Known *nk, k = {};
        unsigned b[4];

        if (!interpreter || !cache_tag || !magic ||
            sscanf(magic, "%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3]) != 4)
                return 0;
        for (int i = 0; i < 4; i++)
                k.magic[i] = (uint8_t)b[i];
        if (admin_known_by_magic(a, k.magic) && admin_known_by_tag(a, cache_tag))
                return 0;
        nk = realloc(a->known, (a->n_known + 1) * sizeof(Known));
        if (!nk)
                return -ENOMEM;
        a->known = nk;
        k.interpreter = strdup(interpreter);
        k.cache_tag = strdup(cache_tag);
        a->known[a->n_known++] = k;
        return 0;
}

int admin_add_item(Admin *a, const char *pyc, const char *source, const char *problem, const char *detail) {
        Item *it;

        if (a->n_items >= ADMIN_MAX_FILES)
                return -E2BIG;
        /* An unprivileged caller's findings are held at most as many as
         * its reply may carry. */
        if (!a->privileged && a->n_items >= a->reply_rows_max) {
                a->truncated = true;
                return -ENOSPC;
        }
        if (GREEDY_REALLOC(a->items, a->allocated_items, a->n_items + 1) < 0)
                return -ENOMEM;
        it = &a->items[a->n_items++];
        *it = (Item){ .problem = problem, .mode = INVALIDATION_TIMESTAMP };
        it->pyc = strdup(pyc);
        it->source = source ? strdup(source) : NULL;
        it->detail = strdup(detail);
        return it->pyc && it->detail ? 0 : -ENOMEM;
}

void admin_fmt_time(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t)(usec / 1000000u);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
