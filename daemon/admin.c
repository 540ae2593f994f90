/* SPDX-License-Identifier: MIT */
/* The administration verbs.
 *
 * Each request is parsed on the loop and served on an I/O thread, which
 * queries the provenance database on a read connection of its own and walks
 * the file system; the replies (MSG_RECORD frames and a closing MSG_DONE)
 * are built on the thread and sent from the loop. Nothing here blocks the
 * loop, and a reader never stalls the recorder (WAL).
 *
 * verify classifies every .pyc under the selected paths:
 *   corrupt  header invalid, file truncated, or marshal data that does not
 *            load (checked by the file's own interpreter, found by magic)
 *   stale    the header does not describe the current source
 *   foreign  not what pycqueue last wrote there, or never written by it
 *   orphan   no source beside it
 *   missing  pycqueue wrote it, its source is there, the .pyc is gone
 * A file whose sha256 equals our last write is trusted without loading it.
 * repair removes orphans and recompiles the rest through ordinary compile
 * requests (forced), so it is serialised with every other writer; clean
 * removes .pyc files with the source's flock held, and both record what
 * they did. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "connection.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "pool.h"
#include "provdb.h"
#include "pycheader.h"
#include "pycpath.h"
#include "recorder.h"
#include "request.h"
#include "safepath.h"
#include "util.h"

#define ADMIN_MAX_RECORDS 1000000
#define ADMIN_DEFAULT_LIMIT 1000
#define ADMIN_MAX_PYC (256u << 20)
#define ADMIN_MAX_FILES 2000000

typedef struct Frame {
        uint8_t *data;
        size_t size;
} Frame;

typedef struct Known {
        char *interpreter;
        char *cache_tag;
        uint8_t magic[4];
} Known;

typedef struct Item {
        char *pyc;            /* the .pyc path */
        char *source;
        const char *problem;  /* static string */
        char *detail;
        char *interpreter;    /* to recompile with, if known */
        unsigned opt_level;
        InvalidationMode mode;
        const char *action;   /* repair: what was done */
        bool ok;
        char *result_detail;
} Item;

struct Admin {
        Manager *manager;
        Connection *connection;
        uint16_t type;
        Admin *next, *prev;

        char **paths;
        size_t n_paths;
        char *package;
        uint64_t since_usec, limit;
        bool failed_only;
        Pool **pools;         /* clean --python */
        size_t n_pools;
        Known *known;         /* interpreters we can name by magic or tag */
        size_t n_known;
        char *db_path;
        ProvDb *db;           /* the recorder's, for audit look-ups; may be NULL */

        Frame *frames;
        size_t n_frames, allocated_frames;
        MsgWriter done;
        int error;
        char *error_message;

        Item *items;
        size_t n_items, allocated_items;
        size_t outstanding;
        ProvJob *removed;
        size_t n_removed, allocated_removed;
        uint64_t checked;

        IoWork io;
        bool started;
};

static void item_done(Item *i) {
        free(i->pyc);
        free(i->source);
        free(i->detail);
        free(i->interpreter);
        free(i->result_detail);
}

Admin *admin_free(Admin *a) {
        Manager *m;

        if (!a)
                return NULL;
        m = a->manager;
        if (a->prev)
                a->prev->next = a->next;
        else if (m->admins == a)
                m->admins = a->next;
        if (a->next)
                a->next->prev = a->prev;
        if (a->connection && a->connection->admin == a)
                a->connection->admin = NULL;
        for (size_t i = 0; i < a->n_paths; i++)
                free(a->paths[i]);
        free(a->paths);
        free(a->package);
        free(a->pools);
        for (size_t i = 0; i < a->n_known; i++) {
                free(a->known[i].interpreter);
                free(a->known[i].cache_tag);
        }
        free(a->known);
        free(a->db_path);
        for (size_t i = 0; i < a->n_frames; i++)
                free(a->frames[i].data);
        free(a->frames);
        msg_writer_done(&a->done);
        free(a->error_message);
        for (size_t i = 0; i < a->n_items; i++)
                item_done(&a->items[i]);
        free(a->items);
        for (size_t i = 0; i < a->n_removed; i++)
                prov_job_done(&a->removed[i]);
        free(a->removed);
        free(a);
        manager_check_idle(m);
        return NULL;
}

bool admin_handles(uint16_t type) {
        return type >= MSG_WHY && type <= MSG_AUDIT;
}

bool admin_mutates(uint16_t type) {
        return type == MSG_REPAIR || type == MSG_CLEAN;
}

/* ---- building replies (thread side) ---------------------------------- */

static int rec_begin(MsgWriter *w) {
        return msg_writer_init(w, MSG_RECORD);
}

static void rec_str(MsgWriter *w, const char *key, const char *value) {
        if (value)
                msg_put_stat(w, key, 's', value);
}

static void rec_u64(MsgWriter *w, const char *key, uint64_t v) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
        msg_put_stat(w, key, 'n', buf);
}

static void rec_bool(MsgWriter *w, const char *key, bool v) {
        msg_put_stat(w, key, 'b', v ? "true" : "false");
}

static void rec_time(MsgWriter *w, const char *key, uint64_t usec) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%llu.%06llu", (unsigned long long)(usec / 1000000u),
                 (unsigned long long)(usec % 1000000u));
        msg_put_stat(w, key, 'n', buf);
}

static void hex(const uint8_t *b, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
}

static int rec_end(Admin *a, MsgWriter *w) {
        uint8_t *data;
        size_t size;
        int r;

        if (a->n_frames >= ADMIN_MAX_RECORDS) {
                msg_writer_done(w);
                return -E2BIG;
        }
        r = msg_writer_finish(w, &data, &size);
        if (r < 0)
                return r;
        if (a->n_frames == a->allocated_frames) {
                size_t n = MAX(a->allocated_frames * 2, (size_t)64);
                Frame *nf = realloc(a->frames, n * sizeof(Frame));
                if (!nf) {
                        free(data);
                        return -ENOMEM;
                }
                a->frames = nf;
                a->allocated_frames = n;
        }
        a->frames[a->n_frames++] = (Frame){ data, size };
        return 0;
}

static void rec_parents(MsgWriter *w, const char *parents) {
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

/* One provenance row as a record (why, history). */
static void rec_row(MsgWriter *w, const ProvRow *row) {
        const ProvJob *j = row->job;
        const ProvRequest *q = row->request;
        char buf[65];

        rec_time(w, "time", j->end_usec ? j->end_usec : q->time_usec);
        rec_str(w, "outcome", outcome_name(j->outcome));
        rec_str(w, "target", j->target);
        rec_str(w, "source", j->source);
        rec_u64(w, "uid", q->uid);
        rec_u64(w, "gid", q->gid);
        rec_u64(w, "pid", (uint64_t)q->pid);
        rec_str(w, "exe", q->exe);
        rec_str(w, "cmdline", q->cmdline);
        rec_parents(w, q->parents);
        rec_str(w, "package", q->package ? q->package : q->dpkg_package);
        rec_str(w, "dpkg_package", q->dpkg_package);
        rec_str(w, "tool", q->tool);
        rec_str(w, "interpreter", j->interpreter);
        rec_str(w, "cache_tag", j->cache_tag);
        rec_u64(w, "opt_level", j->opt_level);
        rec_str(w, "invalidation_mode", invalidation_mode_to_string((InvalidationMode)j->mode));
        if (j->have_source_sha256) {
                hex(j->source_sha256, 32, buf);
                rec_str(w, "source_sha256", buf);
        }
        if (j->have_pyc_sha256) {
                hex(j->pyc_sha256, 32, buf);
                rec_str(w, "pyc_sha256", buf);
        }
        if (j->error_type) {
                rec_str(w, "error_type", j->error_type);
                rec_u64(w, "error_line", j->error_line);
                rec_str(w, "error_message", j->error_message);
        }
}

/* ---- file helpers (thread side) --------------------------------------- */

static int file_sha256(const char *path, uint8_t out[32], bool *ret_exists) {
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
        sha256_init(&ctx);
        while ((n = loop_read(fd, buf, sizeof(buf))) > 0)
                sha256_update(&ctx, (size_t)n, buf);
        if (n < 0)
                return (int)n;
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
        return 0;
}

/* "DIR/__pycache__/STEM.TAG[.opt-N].pyc" → source "DIR/STEM.py", tag, opt. */
static int pyc_source(const char *pyc, char **ret_source, char **ret_tag, unsigned *ret_opt) {
        const char *slash = strrchr(pyc, '/'), *name, *end, *dot;
        size_t dirlen;
        unsigned opt = 0;

        if (!slash)
                return -EINVAL;
        name = slash + 1;
        if (!pycpath_is_cache_name(name))
                return -EINVAL;
        dirlen = (size_t)(slash - pyc);
        if (dirlen < strlen("/" PYCACHE_DIR) || strncmp(slash - strlen(PYCACHE_DIR), PYCACHE_DIR, strlen(PYCACHE_DIR)) != 0 ||
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
        if (asprintf(ret_source, "%.*s%.*s.py", (int)(dirlen - strlen(PYCACHE_DIR)), pyc, (int)(dot - name), name) < 0) {
                if (ret_tag)
                        free(*ret_tag);
                return -ENOMEM;
        }
        *ret_opt = opt;
        return 0;
}

/* Canonical form of a request path: directories fully, files by their
 * directory (see expand.c for why). */
static int canonical(const char *path, char **ret) {
        _cleanup_free_ char *dir = NULL, *real = NULL;
        const char *slash = strrchr(path, '/');
        struct stat st;
        int r;

        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return safepath_canonicalize(path, ret);
        if (!slash || slash[1] == '\0')
                return safepath_canonicalize(path, ret);
        dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
        if (!dir)
                return -ENOMEM;
        r = safepath_canonicalize(dir, &real);
        if (r < 0)
                return r;
        *ret = path_join(real, slash + 1);
        return *ret ? 0 : -ENOMEM;
}

typedef struct StrList {
        char **v;
        size_t n, allocated;
} StrList;

static int strlist_add(StrList *l, const char *s) {
        if (l->n >= ADMIN_MAX_FILES)
                return -E2BIG;
        if (l->n == l->allocated) {
                size_t n = MAX(l->allocated * 2, (size_t)64);
                char **nv = realloc(l->v, n * sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                l->v = nv;
                l->allocated = n;
        }
        l->v[l->n] = strdup(s);
        if (!l->v[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

static void strlist_done(StrList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        *l = (StrList){};
}

static int strlist_add_cb(const char *s, void *userdata) {
        return strlist_add(userdata, s);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strlist_sort_unique(StrList *l) {
        size_t k = 0;

        qsort(l->v, l->n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < l->n; i++) {
                if (k > 0 && strcmp(l->v[k - 1], l->v[i]) == 0) {
                        free(l->v[i]);
                        continue;
                }
                l->v[k++] = l->v[i];
        }
        l->n = k;
}

/* Collects every .pyc inside __pycache__ directories under @dir. */
static int collect_pycs(const char *dir, StrList *out, unsigned depth) {
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
                                        r = p ? strlist_add(out, p) : -ENOMEM;
                                }
                        closedir(pd);
                } else
                        r = collect_pycs(full, out, depth + 1);
        }
        closedir(d);
        return r;
}

/* The .pyc files of source @py: its __pycache__/STEM.*.pyc. */
static int collect_pycs_of_source(const char *py, StrList *out) {
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
                if (pyc_source(full, &tmp_source, NULL, &opt) == 0) {
                        if (strcmp(tmp_source, py) == 0)
                                r = strlist_add(out, full);
                        free(tmp_source);
                }
        }
        closedir(d);
        return r;
}

static const Known *known_by_magic(Admin *a, const uint8_t magic[4]) {
        for (size_t i = 0; i < a->n_known; i++)
                if (memcmp(a->known[i].magic, magic, 4) == 0)
                        return &a->known[i];
        return NULL;
}

static const Known *known_by_tag(Admin *a, const char *tag) {
        for (size_t i = 0; i < a->n_known; i++)
                if (strcmp(a->known[i].cache_tag, tag) == 0)
                        return &a->known[i];
        return NULL;
}

static int add_known(const char *interpreter, const char *cache_tag, const char *magic, void *userdata) {
        Admin *a = userdata;
        Known *nk, k = {};
        unsigned b[4];

        if (!interpreter || !cache_tag || !magic || sscanf(magic, "%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3]) != 4)
                return 0;
        for (int i = 0; i < 4; i++)
                k.magic[i] = (uint8_t)b[i];
        if (known_by_magic(a, k.magic) && known_by_tag(a, cache_tag))
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

/* Loads every .pyc in @files with @interpreter's marshal; @ret_bad[i] gets
 * an error text (malloc'd) for those that do not load. The checker gets the
 * bytes, not the paths, and runs as the worker user with the workers'
 * limits: the files are untrusted input, and any user may ask to verify. */
static int unmarshal_check(Admin *a, const char *interpreter, char **files, size_t n, char **ret_bad) {
        static const char code[] =
                "import sys, marshal\n"
                "data = sys.stdin.buffer.read()\n"
                "out = []\n"
                "i = 0\n"
                "while i + 4 <= len(data):\n"
                "    n = int.from_bytes(data[i:i + 4], 'little')\n"
                "    b = data[i + 4:i + 4 + n]\n"
                "    i += 4 + n\n"
                "    try:\n"
                "        marshal.loads(b[16:])\n"
                "        out.append('ok')\n"
                "    except Exception as e:\n"
                "        out.append(('bad ' + type(e).__name__ + ': ' + str(e)).replace('\\n', ' '))\n"
                "sys.stdout.write('\\n'.join(out) + '\\n')\n";
        char *argv[] = { (char *)interpreter, (char *)"-I", (char *)"-S", (char *)"-c", (char *)code, NULL };
        char *envp[] = { (char *)"LC_ALL=C.UTF-8", NULL };
        uid_t uid = a->manager->worker_uid;
        gid_t gid = a->manager->worker_gid;
        uint64_t limit = a->manager->config->worker_memory_limit;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;
        int in[2], out[2], status;
        pid_t pid;
        int r;

        if (pipe2(in, O_CLOEXEC) < 0)
                return negative_errno();
        if (pipe2(out, O_CLOEXEC) < 0) {
                r = negative_errno();
                safe_close(in[0]);
                safe_close(in[1]);
                return r;
        }
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                safe_close(in[0]);
                safe_close(in[1]);
                safe_close(out[0]);
                safe_close(out[1]);
                return r;
        }
        if (pid == 0) {
                /* async-signal-safe calls only until exec */
                struct rlimit rl = { 0, 0 };
                sigset_t none;

                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
                        _exit(126);
                for (int fd = 3; fd < 1024; fd++)
                        (void)close(fd);
                (void)setrlimit(RLIMIT_CORE, &rl);
                (void)setrlimit(RLIMIT_FSIZE, &rl);
                if (limit > 0) {
                        rl = (struct rlimit){ limit, limit };
                        (void)setrlimit(RLIMIT_AS, &rl);
                }
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if (uid != (uid_t)-1 &&
                    (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0))
                        _exit(126);
                sigemptyset(&none);
                (void)sigprocmask(SIG_SETMASK, &none, NULL);
                execve(interpreter, argv, envp);
                _exit(127);
        }
        safe_close(in[0]);
        safe_close(out[1]);

        /* The checker reads all of its input before writing anything. */
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = open(files[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                _cleanup_free_ uint8_t *data = NULL;
                size_t dsize = 0;
                uint8_t len[4];

                if (fd < 0 || read_full_fd(fd, ADMIN_MAX_PYC, &data, &dsize) < 0)
                        dsize = 0;
                unaligned_write_le32(len, (uint32_t)dsize);
                if (loop_write(in[1], len, 4) < 0 || (dsize > 0 && loop_write(in[1], data, dsize) < 0))
                        break;
        }
        safe_close(in[1]);
        for (;;) {
                ssize_t k;
                if (size + 4096 > allocated) {
                        char *nb = realloc(buf, allocated + 65536);
                        if (!nb)
                                break;
                        buf = nb;
                        allocated += 65536;
                }
                k = read(out[0], buf + size, allocated - size - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                size += (size_t)k;
        }
        safe_close(out[0]);
        (void)waitpid(pid, &status, 0);
        if (!buf || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        buf[size] = '\0';

        {
                char *line = buf;
                for (size_t i = 0; i < n && line && *line; i++) {
                        char *nl = strchr(line, '\n');
                        if (nl)
                                *nl = '\0';
                        ret_bad[i] = strncmp(line, "bad ", 4) == 0 ? strdup(line + 4) : NULL;
                        line = nl ? nl + 1 : NULL;
                }
        }
        return 0;
}

static int add_item(Admin *a, const char *pyc, const char *source, const char *problem, const char *detail) {
        Item *it;

        if (a->n_items >= ADMIN_MAX_FILES)
                return -E2BIG;
        if (a->n_items == a->allocated_items) {
                size_t n = MAX(a->allocated_items * 2, (size_t)32);
                Item *ni = realloc(a->items, n * sizeof(Item));
                if (!ni)
                        return -ENOMEM;
                a->items = ni;
                a->allocated_items = n;
        }
        it = &a->items[a->n_items++];
        *it = (Item){ .problem = problem, .mode = INVALIDATION_TIMESTAMP };
        it->pyc = strdup(pyc);
        it->source = source ? strdup(source) : NULL;
        it->detail = strdup(detail);
        return it->pyc && it->detail ? 0 : -ENOMEM;
}

static void fmt_time(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t)(usec / 1000000u);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Classifies one .pyc; appends an item when there is a problem. Untrusted
 * files with a valid header go to @to_load for the marshal check. */
static int classify(Admin *a, ProvLookup *lookup, const char *pyc, StrList *to_load) {
        _cleanup_free_ char *source = NULL, *tag = NULL, *data = NULL;
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
        r = pyc_source(pyc, &source, &tag, &opt);
        if (r < 0)
                return 0; /* not a cache file name: not ours to judge */

        if (lookup)
                (void)provdb_lookup_last_write(lookup, pyc, &lw);

        fd = open(pyc, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                if (errno == ENOENT && lw.found && stat(source, &sst) == 0) {
                        fmt_time(lw.time_usec, when, sizeof(when));
                        snprintf(detail, sizeof(detail), "pycqueue wrote it at %s; it is gone", when);
                        r = add_item(a, pyc, source, "missing", detail);
                        if (r >= 0 && lw.interpreter[0])
                                a->items[a->n_items - 1].interpreter = strdup(lw.interpreter);
                        if (r >= 0)
                                a->items[a->n_items - 1].opt_level = opt;
                        return r;
                }
                if (fd >= 0 || errno != ENOENT)
                        return add_item(a, pyc, source, "corrupt", "not a regular file");
                return 0;
        }

        if (stat(source, &sst) < 0 || !S_ISREG(sst.st_mode))
                return add_item(a, pyc, NULL, "orphan", "no source file beside it");

        n = loop_read(fd, head, sizeof(head));
        if (n < (ssize_t)sizeof(head) || pyc_header_parse(head, sizeof(head), &h) < 0) {
                snprintf(detail, sizeof(detail), n < (ssize_t)sizeof(head) ? "truncated: %zd bytes" : "invalid header",
                         n);
                r = add_item(a, pyc, source, "corrupt", detail);
                goto with_hint;
        }
        if (st.st_size == (off_t)PYC_HEADER_SIZE) {
                r = add_item(a, pyc, source, "corrupt", "header only: no code after it");
                goto with_hint;
        }

        /* stale: does the header describe the current source? */
        if (pyc_header_mode(&h) == INVALIDATION_TIMESTAMP) {
                if (h.mtime != pyc_mtime_field(sst.st_mtim.tv_sec, sst.st_mtim.tv_nsec) ||
                    h.size != (uint32_t)((uint64_t)sst.st_size & 0xffffffffu)) {
                        snprintf(detail, sizeof(detail), "the source changed since (mtime/size in the header differ)");
                        r = add_item(a, pyc, source, "stale", detail);
                        goto with_hint;
                }
        } else {
                _cleanup_close_ int sfd = open(source, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                uint8_t *sdata = NULL;
                size_t ssize = 0;
                bool current = false;

                if (sfd >= 0 && read_full_fd(sfd, 64u << 20, &sdata, &ssize) == 0) {
                        current = pyc_source_hash(PYC_HASH_SIPHASH13, h.magic, sdata, ssize) == h.hash ||
                                  pyc_source_hash(PYC_HASH_SIPHASH24, h.magic, sdata, ssize) == h.hash;
                        free(sdata);
                }
                if (!current) {
                        r = add_item(a, pyc, source, "stale", "the source's hash differs from the one in the header");
                        goto with_hint;
                }
        }

        r = file_sha256(pyc, sha, &exists);
        if (r < 0)
                return add_item(a, pyc, source, "corrupt", "cannot read it");
        if (a->db) {
                uint64_t when_usec;
                pid_t pid;
                char exe[512];

                /* Even identical bytes are foreign when the audit saw
                 * another process write them after us. */
                if (provdb_audit_latest(a->db, pyc, &when_usec, &pid, exe, sizeof(exe)) > 0 &&
                    (!lw.found || when_usec > lw.time_usec)) {
                        fmt_time(when_usec, when, sizeof(when));
                        snprintf(detail, sizeof(detail), "written by pid %d (%s) at %s, not by pycqueue (audit)",
                                 (int)pid, exe, when);
                        r = add_item(a, pyc, source, "foreign", detail);
                        goto with_hint;
                }
        }
        if (lw.found && lw.have_pyc_sha256 && memcmp(sha, lw.pyc_sha256, 32) == 0)
                return 0; /* exactly what we wrote: trusted */

        /* Not ours: look inside before calling it merely foreign. */
        r = strlist_add(to_load, pyc);
        return r;

with_hint:
        if (r >= 0) {
                Item *it = &a->items[a->n_items - 1];
                it->opt_level = opt;
                if (pyc_header_parse(head, sizeof(head), &h) == 0)
                        it->mode = pyc_header_mode(&h);
                if (lw.found && lw.interpreter[0])
                        it->interpreter = strdup(lw.interpreter);
                else if (tag && known_by_tag(a, tag))
                        it->interpreter = strdup(known_by_tag(a, tag)->interpreter);
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
                size_t *index = calloc(files->n, sizeof(size_t));
                char **gbad;

                if (!index)
                        return -ENOMEM;
                for (size_t k = 0; k < files->n; k++) {
                        uint8_t head[4];
                        _cleanup_close_ int fd = open(files->v[k], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                        if (fd < 0 || loop_read(fd, head, 4) != 4 || memcmp(head, a->known[i].magic, 4) != 0)
                                continue;
                        index[group.n] = k;
                        if (strlist_add(&group, files->v[k]) < 0)
                                break;
                }
                gbad = calloc(MAX(group.n, (size_t)1), sizeof(char *));
                if (gbad && group.n > 0 && unmarshal_check(a, a->known[i].interpreter, group.v, group.n, gbad) == 0)
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

                (void)pyc_source(files->v[k], &source, &tag, &opt);
                if (lookup)
                        (void)provdb_lookup_last_write(lookup, files->v[k], &lw);
                if (bad[k]) {
                        snprintf(detail, sizeof(detail), "marshal data does not load: %s", bad[k]);
                        r = add_item(a, files->v[k], source, "corrupt", detail);
                } else if (lw.found) {
                        fmt_time(lw.time_usec, when, sizeof(when));
                        snprintf(detail, sizeof(detail),
                                 "content differs from what pycqueue wrote at %s; another process replaced it", when);
                        r = add_item(a, files->v[k], source, "foreign", detail);
                } else
                        r = add_item(a, files->v[k], source, "foreign", "not written by pycqueue");
                if (r < 0)
                        break;
                it = &a->items[a->n_items - 1];
                it->opt_level = opt;
                {
                        _cleanup_close_ int fd = open(files->v[k], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                        if (fd >= 0 && loop_read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
                            pyc_header_parse(head, sizeof(head), &h) == 0)
                                it->mode = pyc_header_mode(&h);
                }
                if (lw.found && lw.interpreter[0])
                        it->interpreter = strdup(lw.interpreter);
                else if (tag && known_by_tag(a, tag))
                        it->interpreter = strdup(known_by_tag(a, tag)->interpreter);
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
        return strlist_add(l, target);
}

static void verify_run(Admin *a) {
        ProvLookup *lookup = NULL;
        StrList files = {}, untrusted = {};
        int r = 0;

        (void)provdb_interpreters(a->db_path, add_known, a);
        (void)provdb_lookup_open(a->db_path, &lookup);

        for (size_t i = 0; i < a->n_paths && r >= 0; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                r = canonical(a->paths[i], &p);
                if (r < 0) {
                        if (asprintf(&a->error_message, "%s: %s", a->paths[i], strerror(-r)) < 0)
                                a->error_message = NULL;
                        break;
                }
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
                        r = collect_pycs(p, &files, 0);
                        if (r >= 0)
                                r = provdb_targets(a->db_path, NULL, p, collect_missing, &files);
                } else if (pycpath_is_source_name(p))
                        r = collect_pycs_of_source(p, &files);
                else
                        r = strlist_add(&files, p);
        }
        if (r >= 0 && a->package)
                r = provdb_targets(a->db_path, a->package, NULL, strlist_add_cb, &files);
        if (r >= 0) {
                strlist_sort_unique(&files);
                for (size_t i = 0; i < files.n && r >= 0; i++)
                        r = classify(a, lookup, files.v[i], &untrusted);
        }
        if (r >= 0)
                r = judge_untrusted(a, lookup, &untrusted);
        if (r < 0)
                a->error = r;
        provdb_lookup_close(lookup);
        strlist_done(&files);
        strlist_done(&untrusted);
}

/* Records a removal for provenance (thread side; sent to the recorder on
 * the loop). */
static void note_removed(Admin *a, const char *pyc, const char *source) {
        ProvJob *j;

        if (a->n_removed == a->allocated_removed) {
                size_t n = MAX(a->allocated_removed * 2, (size_t)16);
                ProvJob *nr = realloc(a->removed, n * sizeof(ProvJob));
                if (!nr)
                        return;
                a->removed = nr;
                a->allocated_removed = n;
        }
        j = &a->removed[a->n_removed++];
        *j = (ProvJob){ .outcome = PROV_OUTCOME_REMOVED };
        j->target = strdup(pyc);
        j->source = source ? strdup(source) : NULL;
        j->start_usec = j->end_usec = now_usec(CLOCK_REALTIME);
}

/* Removes @pyc holding its source's lock (if the source exists), so no
 * compile of that source writes at the same moment. */
static int remove_pyc(const char *pyc, const char *source) {
        _cleanup_close_ int sfd = -1;
        _cleanup_close_ int dfd = -1;
        const char *name;
        int r;

        if (source) {
                sfd = open(source, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                for (int i = 0; sfd >= 0 && i < 100 && flock(sfd, LOCK_EX | LOCK_NB) < 0; i++)
                        usleep(20000);
        }
        r = safepath_open_parent(pyc, &dfd, &name);
        if (r < 0)
                return r;
        if (unlinkat(dfd, name, 0) < 0)
                return negative_errno();
        (void)fsync(dfd);
        return 0;
}

static void repair_run(Admin *a) {
        verify_run(a);
        if (a->error < 0)
                return;
        for (size_t i = 0; i < a->n_items; i++) {
                Item *it = &a->items[i];
                int r;

                if (strcmp(it->problem, "orphan") != 0)
                        continue;
                r = remove_pyc(it->pyc, NULL);
                it->action = "removed";
                it->ok = r >= 0;
                if (r < 0)
                        it->result_detail = strdup(strerror(-r));
                else
                        note_removed(a, it->pyc, NULL);
        }
}

static bool tag_selected(Admin *a, const char *tag) {
        if (a->n_pools == 0)
                return true;
        for (size_t i = 0; i < a->n_pools; i++)
                if (a->pools[i]->info.cache_tag && strcmp(a->pools[i]->info.cache_tag, tag) == 0)
                        return true;
        return false;
}

static int clean_one(Admin *a, const char *pyc) {
        _cleanup_free_ char *source = NULL, *tag = NULL;
        struct stat st;
        unsigned opt;
        MsgWriter w;
        int r;

        if (pyc_source(pyc, &source, &tag, &opt) < 0 || !tag_selected(a, tag))
                return 0;
        if (lstat(pyc, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        r = remove_pyc(pyc, stat(source, &st) == 0 ? source : NULL);
        if (r < 0)
                return 0;
        note_removed(a, pyc, source);
        if (rec_begin(&w) < 0)
                return -ENOMEM;
        rec_str(&w, "path", pyc);
        return rec_end(a, &w);
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

static void clean_run(Admin *a) {
        StrList files = {};
        int r = 0;

        for (size_t i = 0; i < a->n_paths && r >= 0; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                r = canonical(a->paths[i], &p);
                if (r < 0) {
                        if (asprintf(&a->error_message, "%s: %s", a->paths[i], strerror(-r)) < 0)
                                a->error_message = NULL;
                        break;
                }
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        r = collect_pycs(p, &files, 0);
                else if (pycpath_is_source_name(p))
                        r = collect_pycs_of_source(p, &files);
                else
                        r = strlist_add(&files, p);
        }
        if (r >= 0 && a->package)
                r = provdb_targets(a->db_path, a->package, NULL, strlist_add_cb, &files);
        if (r >= 0) {
                strlist_sort_unique(&files);
                for (size_t i = 0; i < files.n && r >= 0; i++)
                        r = clean_one(a, files.v[i]);
        }
        for (size_t i = 0; i < a->n_paths; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;
                if (canonical(a->paths[i], &p) == 0 && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        remove_empty_cache_dirs(p, 0);
        }
        if (r < 0)
                a->error = r;
        strlist_done(&files);
}

/* Targets a .py or .pyc names: a .pyc itself; for a .py its cache file for
 * every interpreter ever recorded and every optimization level. */
static int targets_of(Admin *a, const char *path, StrList *out) {
        _cleanup_free_ char *p = NULL;
        size_t n = strlen(path);
        int r;

        r = canonical(path, &p);
        if (r < 0)
                return r;
        if (n > 4 && strcmp(path + n - 4, ".pyc") == 0)
                return strlist_add(out, p);
        if (!pycpath_is_source_name(p))
                return -EINVAL;
        (void)provdb_interpreters(a->db_path, add_known, a);
        for (size_t i = 0; i < a->n_known; i++)
                for (unsigned opt = 0; opt <= 2; opt++) {
                        _cleanup_free_ char *t = NULL;
                        if (pycpath_cache_path(p, a->known[i].cache_tag, opt, &t) < 0)
                                return -ENOMEM;
                        r = strlist_add(out, t);
                        if (r < 0)
                                return r;
                }
        strlist_sort_unique(out);
        return 0;
}

typedef struct WhyState {
        Admin *a;
        StrList seen;        /* targets whose newest write was compared */
        const char *first_target;
        char on_disk[32];
        char on_disk_sha[65];
        int error;
} WhyState;

static int why_row(const ProvRow *row, void *userdata) {
        WhyState *ws = userdata;
        MsgWriter w;
        bool newest = true, matches = false;

        for (size_t i = 0; i < ws->seen.n; i++)
                if (strcmp(ws->seen.v[i], row->job->target) == 0)
                        newest = false;
        if (newest) {
                uint8_t sha[32];
                bool exists;
                char hexs[65];

                (void)strlist_add(&ws->seen, row->job->target);
                if (file_sha256(row->job->target, sha, &exists) == 0)
                        matches = row->job->have_pyc_sha256 && memcmp(sha, row->job->pyc_sha256, 32) == 0;
                if (ws->seen.n == 1) {
                        snprintf(ws->on_disk, sizeof(ws->on_disk), "%s",
                                 !exists ? "missing" : matches ? "matches" : "differs");
                        if (exists) {
                                hex(sha, 32, hexs);
                                snprintf(ws->on_disk_sha, sizeof(ws->on_disk_sha), "%s", hexs);
                        }
                }
        }
        if (rec_begin(&w) < 0)
                return -ENOMEM;
        rec_row(&w, row);
        rec_bool(&w, "matches_disk", matches);
        return rec_end(ws->a, &w);
}

static void why_run(Admin *a) {
        WhyState ws = { .a = a };
        StrList targets = {};
        ProvQuery q = { .writes_only = true, .limit = a->limit ? a->limit : 100 };
        int r;

        snprintf(ws.on_disk, sizeof(ws.on_disk), "never-written");
        r = targets_of(a, a->paths[0], &targets);
        if (r < 0) {
                a->error = r;
                if (r == -EINVAL && asprintf(&a->error_message, "%s: not a .py or .pyc file", a->paths[0]) < 0)
                        a->error_message = NULL;
                return;
        }
        if (targets.n == 0) {
                msg_put_stat(&a->done, "target", 's', a->paths[0]);
                msg_put_stat(&a->done, "on_disk", 's', "never-written");
                return;
        }
        q.targets = (const char *const *)targets.v;
        q.n_targets = targets.n;
        r = provdb_query(a->db_path, &q, why_row, &ws);
        if (r < 0 && r != -ENOENT)
                a->error = r;
        if (ws.seen.n > 0)
                msg_put_stat(&a->done, "target", 's', ws.seen.v[0]);
        else {
                /* Never written: name the plain (unoptimized) target. */
                const char *t = targets.v[0];
                for (size_t i = 0; i < targets.n; i++)
                        if (!strstr(targets.v[i], ".opt-")) {
                                t = targets.v[i];
                                break;
                        }
                msg_put_stat(&a->done, "target", 's', t);
        }
        msg_put_stat(&a->done, "on_disk", 's', ws.on_disk);
        if (ws.on_disk_sha[0])
                msg_put_stat(&a->done, "on_disk_sha256", 's', ws.on_disk_sha);
        strlist_done(&ws.seen);
        strlist_done(&targets);
}

static int history_row(const ProvRow *row, void *userdata) {
        Admin *a = userdata;
        MsgWriter w;

        if (rec_begin(&w) < 0)
                return -ENOMEM;
        rec_row(&w, row);
        return rec_end(a, &w);
}

static void history_run(Admin *a) {
        StrList targets = {};
        _cleanup_free_ char *prefix = NULL;
        ProvQuery q = {
                .package = a->package,
                .since_usec = a->since_usec,
                .failed_only = a->failed_only,
                .limit = a->limit ? a->limit : ADMIN_DEFAULT_LIMIT,
        };
        int r = 0;

        if (a->n_paths > 0) {
                struct stat st;
                if (stat(a->paths[0], &st) == 0 && S_ISDIR(st.st_mode))
                        r = canonical(a->paths[0], &prefix);
                else
                        r = targets_of(a, a->paths[0], &targets);
                if (r < 0) {
                        a->error = r;
                        if (asprintf(&a->error_message, "%s: %s", a->paths[0],
                                     r == -EINVAL ? "not a .py or .pyc file or a directory" : strerror(-r)) < 0)
                                a->error_message = NULL;
                        return;
                }
                if (!prefix && targets.n == 0)
                        return;
                q.targets = (const char *const *)targets.v;
                q.n_targets = targets.n;
                q.prefix = prefix;
        }
        r = provdb_query(a->db_path, &q, history_row, a);
        if (r < 0 && r != -ENOENT)
                a->error = r;
        strlist_done(&targets);
}

static int audit_row(uint64_t time_usec, const char *path, pid_t pid, const char *exe, const char *cmdline,
                     const char *parents, void *userdata) {
        Admin *a = userdata;
        MsgWriter w;

        if (rec_begin(&w) < 0)
                return -ENOMEM;
        rec_time(&w, "time", time_usec);
        rec_str(&w, "path", path);
        rec_u64(&w, "pid", (uint64_t)pid);
        rec_str(&w, "exe", exe);
        rec_str(&w, "cmdline", cmdline);
        rec_parents(&w, parents);
        return rec_end(a, &w);
}

static void audit_run(Admin *a) {
        int r;

        if (!a->db) {
                a->error = -EIO;
                if (asprintf(&a->error_message, "the provenance database is not available") < 0)
                        a->error_message = NULL;
                return;
        }
        r = provdb_audit_query(a->db, a->since_usec, a->limit ? a->limit : ADMIN_DEFAULT_LIMIT, audit_row, a);
        if (r < 0)
                a->error = r;
}

static void items_to_records(Admin *a, bool repair) {
        uint64_t repaired = 0, failed = 0;

        for (size_t i = 0; i < a->n_items; i++) {
                Item *it = &a->items[i];
                MsgWriter w;

                if (rec_begin(&w) < 0)
                        return;
                rec_str(&w, "path", it->pyc);
                rec_str(&w, "problem", it->problem);
                rec_str(&w, "detail", it->detail);
                if (repair) {
                        rec_str(&w, "action", it->action ? it->action : "none");
                        rec_str(&w, "result", it->ok ? "ok" : "failed");
                        if (it->result_detail)
                                rec_str(&w, "result_detail", it->result_detail);
                        if (it->ok)
                                repaired++;
                        else
                                failed++;
                }
                if (rec_end(a, &w) < 0)
                        return;
        }
        if (repair) {
                rec_u64(&a->done, "repaired", repaired);
                rec_u64(&a->done, "failed", failed);
        } else {
                rec_u64(&a->done, "checked", a->checked);
                rec_u64(&a->done, "problems", a->n_items);
        }
}

static void admin_run(IoWork *w) {
        Admin *a = (Admin *)((char *)w - offsetof(Admin, io));

        switch (a->type) {
        case MSG_WHY:
                why_run(a);
                break;
        case MSG_HISTORY:
                history_run(a);
                break;
        case MSG_VERIFY:
                verify_run(a);
                if (a->error >= 0)
                        items_to_records(a, false);
                break;
        case MSG_REPAIR:
                repair_run(a);
                break;
        case MSG_CLEAN:
                clean_run(a);
                rec_u64(&a->done, "removed", a->n_removed);
                break;
        case MSG_AUDIT:
                audit_run(a);
                break;
        }
}

/* ---- the loop side ------------------------------------------------------ */

static void admin_reply(Admin *a) {
        Manager *m = a->manager;

        for (size_t i = 0; i < a->n_removed; i++)
                recorder_add_job(m->recorder, &a->removed[i]);
        a->n_removed = 0;

        if (a->connection) {
                if (a->error < 0)
                        connection_send_error(a->connection, a->error,
                                              a->error_message ? a->error_message : strerror(-a->error));
                else {
                        uint8_t *data;
                        size_t size;

                        for (size_t i = 0; i < a->n_frames; i++) {
                                connection_send(a->connection, a->frames[i].data, a->frames[i].size, false);
                                a->frames[i].data = NULL;
                        }
                        if (msg_writer_finish(&a->done, &data, &size) >= 0)
                                connection_send(a->connection, data, size, false);
                }
        }
        admin_free(a);
}

static Item *item_by_target(Admin *a, const char *target) {
        for (size_t i = 0; i < a->n_items; i++)
                if (strcmp(a->items[i].pyc, target) == 0)
                        return &a->items[i];
        return NULL;
}

static void repair_on_file(Request *r, const char *source, const char *target, Outcome outcome,
                           const char *error_type, const char *error_message, void *userdata) {
        Admin *a = userdata;
        Item *it = target ? item_by_target(a, target) : NULL;

        if (!it)
                return;
        it->action = "recompiled";
        it->ok = outcome == OUTCOME_COMPILED || outcome == OUTCOME_COALESCED;
        if (!it->ok) {
                free(it->result_detail);
                if (asprintf(&it->result_detail, "%s: %s", error_type ? error_type : "error",
                             error_message ? error_message : "failed") < 0)
                        it->result_detail = NULL;
        }
}

static void repair_on_finish(Request *r, int error, const char *message, void *userdata) {
        Admin *a = userdata;

        if (--a->outstanding > 0)
                return;
        items_to_records(a, true);
        admin_reply(a);
}

static const RequestHooks repair_hooks = {
        .on_file = repair_on_file,
        .on_finish = repair_on_finish,
};

/* Starts one forced compile request per (interpreter, level, mode) group. */
static void repair_compile(Admin *a) {
        Manager *m = a->manager;
        bool *done = calloc(MAX(a->n_items, (size_t)1), sizeof(bool));

        if (!done) {
                a->error = -ENOMEM;
                admin_reply(a);
                return;
        }
        a->outstanding = 1; /* held until every request is started */
        for (size_t i = 0; i < a->n_items; i++) {
                Item *it = &a->items[i];
                StrList sources = {};
                Request *r;
                Pool *p;

                if (done[i] || strcmp(it->problem, "orphan") == 0 || !it->source)
                        continue;
                if (!it->interpreter) {
                        it->action = "none";
                        it->ok = false;
                        it->result_detail = strdup("no known interpreter writes this cache tag");
                        continue;
                }
                for (size_t k = i; k < a->n_items; k++) {
                        Item *o = &a->items[k];
                        if (!done[k] && o->source && o->interpreter && strcmp(o->problem, "orphan") != 0 &&
                            strcmp(o->interpreter, it->interpreter) == 0 && o->opt_level == it->opt_level &&
                            o->mode == it->mode) {
                                done[k] = true;
                                (void)strlist_add(&sources, o->source);
                        }
                }
                strlist_sort_unique(&sources);
                if (manager_get_pool(m, it->interpreter, &p) >= 0 &&
                    request_new_internal(m, sources.v, sources.n, p, it->opt_level, it->mode, &repair_hooks, a, &r) >=
                            0) {
                        a->outstanding++;
                        request_start(r);
                } else {
                        it->action = "none";
                        it->result_detail = strdup("cannot start the interpreter");
                }
                strlist_done(&sources);
        }
        free(done);
        repair_on_finish(NULL, 0, NULL, a);
}

static void admin_done(IoWork *w) {
        Admin *a = (Admin *)((char *)w - offsetof(Admin, io));

        if (a->type == MSG_REPAIR && a->error >= 0) {
                repair_compile(a);
                return;
        }
        admin_reply(a);
}

static void admin_submit_now(void *userdata) {
        Admin *a = userdata;

        a->io = (IoWork){ .run = admin_run, .done = admin_done };
        iopool_submit(a->manager->iopool, &a->io);
}

static void admin_submit(Admin *a) {
        a->started = true;
        /* Queries must see every write recorded so far. */
        recorder_sync(a->manager->recorder, admin_submit_now, a);
}

void admin_pools_changed(Manager *m, Pool *p) {
        for (Admin *a = m->admins, *next; a; a = next) {
                bool ready = true;

                next = a->next;
                if (a->started)
                        continue;
                for (size_t i = 0; i < a->n_pools; i++) {
                        if (a->pools[i]->state == POOL_FAILED) {
                                a->error = -ENOEXEC;
                                a->error_message = strdup(a->pools[i]->error ? a->pools[i]->error
                                                                             : "the interpreter cannot be started");
                                admin_reply(a);
                                ready = false;
                                break;
                        }
                        if (a->pools[i]->state != POOL_READY)
                                ready = false;
                }
                if (ready)
                        admin_submit(a);
        }
}

void admin_detach(Admin *a) {
        a->connection = NULL;
}

static int take_str(const MsgField *f, char **field) {
        char *s;
        int k = field_strdup(f, &s);
        if (k < 0)
                return k;
        free(*field);
        *field = s;
        return 0;
}

int admin_start(Manager *m, Connection *c, const MsgReader *msg, char **ret_message) {
        MsgReader rd = *msg;
        MsgField f;
        Admin *a;
        uint64_t v;
        int k;

        *ret_message = NULL;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->manager = m;
        a->connection = c;
        a->type = msg->type;
        a->next = m->admins;
        if (m->admins)
                m->admins->prev = a;
        m->admins = a;
        k = msg_writer_init(&a->done, MSG_DONE);

        while (k >= 0 && (k = msg_next(&rd, &f)) > 0) {
                switch (f.tag) {
                case TAG_PATH: {
                        char *s, **np;
                        if (a->n_paths >= m->config->max_paths_per_request) {
                                k = -E2BIG;
                                break;
                        }
                        k = field_strdup(&f, &s);
                        if (k < 0)
                                break;
                        if (!path_is_absolute(s)) {
                                free(s);
                                k = -EINVAL;
                                break;
                        }
                        np = realloc(a->paths, (a->n_paths + 1) * sizeof(char *));
                        if (!np) {
                                free(s);
                                k = -ENOMEM;
                                break;
                        }
                        a->paths = np;
                        a->paths[a->n_paths++] = s;
                        break;
                }
                case TAG_PYTHON: {
                        _cleanup_free_ char *s = NULL, *real = NULL;
                        Pool *p, **np;
                        k = field_strdup(&f, &s);
                        if (k >= 0)
                                k = safepath_canonicalize(s, &real);
                        if (k >= 0)
                                k = manager_get_pool(m, real, &p);
                        if (k < 0) {
                                if (s && asprintf(ret_message, "interpreter %s: %s", s, strerror(-k)) < 0)
                                        *ret_message = NULL;
                                break;
                        }
                        np = realloc(a->pools, (a->n_pools + 1) * sizeof(Pool *));
                        if (!np) {
                                k = -ENOMEM;
                                break;
                        }
                        a->pools = np;
                        a->pools[a->n_pools++] = p;
                        break;
                }
                case TAG_PACKAGE:
                        k = take_str(&f, &a->package);
                        break;
                case TAG_SINCE:
                        k = field_u64(&f, &v);
                        a->since_usec = v * 1000000u;
                        break;
                case TAG_LIMIT:
                        k = field_u64(&f, &a->limit);
                        break;
                case TAG_FAILED_ONLY:
                        k = field_u64(&f, &v);
                        a->failed_only = v != 0;
                        break;
                default:
                        k = 0;
                }
        }
        if (k >= 0 && a->type == MSG_WHY && a->n_paths != 1) {
                k = -EINVAL;
                if (asprintf(ret_message, "why takes exactly one path") < 0)
                        *ret_message = NULL;
        }
        if (k >= 0 && (a->type == MSG_VERIFY || a->type == MSG_REPAIR || a->type == MSG_CLEAN) && a->n_paths == 0 &&
            !a->package) {
                k = -EINVAL;
                if (asprintf(ret_message, "name paths or a package") < 0)
                        *ret_message = NULL;
        }
        if (k >= 0 && a->type == MSG_AUDIT && !m->audit) {
                k = -EOPNOTSUPP;
                if (asprintf(ret_message, "auditing is not enabled: start pycqueued with --audit=DIR or set "
                                          "AuditRoots= in its configuration") < 0)
                        *ret_message = NULL;
        }
        if (k >= 0 && !m->recorder) {
                k = -EIO;
                if (asprintf(ret_message, "the provenance database is not available") < 0)
                        *ret_message = NULL;
        }
        if (k < 0) {
                admin_free(a);
                return k;
        }
        a->db_path = strdup(recorder_path(m->recorder));
        a->db = recorder_db(m->recorder);
        if (!a->db_path) {
                admin_free(a);
                return -ENOMEM;
        }
        /* Interpreters this daemon runs are known too. */
        for (size_t i = 0; i < m->n_pools; i++)
                if (m->pools[i]->state == POOL_READY) {
                        char magic[9];
                        snprintf(magic, sizeof(magic), "%02x%02x%02x%02x", m->pools[i]->info.magic[0],
                                 m->pools[i]->info.magic[1], m->pools[i]->info.magic[2], m->pools[i]->info.magic[3]);
                        (void)add_known(m->pools[i]->interpreter, m->pools[i]->info.cache_tag, magic, a);
                }
        if (c)
                c->admin = a;
        admin_pools_changed(m, NULL);
        return 0;
}
