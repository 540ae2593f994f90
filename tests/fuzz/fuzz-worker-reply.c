/* SPDX-License-Identifier: MIT */
/* Fuzz target for what the daemon reads from a worker
 * (daemon/compile/worker-message.c): the frame splitter and the parser of
 * the handshake and of compile replies.
 *
 * LLVMFuzzerTestOneInput() reads its input as the byte stream of a worker's
 * stdout, the way worker.c does: worker_frame_next() splits frames, the
 * first must be a hello, every later one a reply to the current job; the
 * walk stops where the daemon would kill the worker. Each frame is also
 * parsed in the other mode. A message that parses is written again the way
 * worker.py writes it and must come out byte for byte the same (for error
 * replies: when no text was cut), so the parser accepts nothing the worker
 * could not have meant. A result the API does not document aborts.
 *
 * Two builds, as tests/fuzz/fuzz-protocol.c:
 *
 *  - The default (`make check`) replays the files and directories named on
 *    its command line, or else tests/fuzz/corpus-worker-reply/ (found
 *    through $PYCQUEUE_SRCDIR, then $srcdir, then the current directory),
 *    then 20,000 deterministic mutations of valid streams it builds itself.
 *    `fuzz-worker-reply --write-corpus DIR` writes those as the corpus.
 *
 *  - With -DFUZZ_LIBFUZZER it is a plain libFuzzer target:
 *
 *        clang -g -O1 -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER \
 *              -D_GNU_SOURCE -Icommon -Idaemon/compile \
 *              tests/fuzz/fuzz-worker-reply.c daemon/compile/worker-message.c \
 *              common/pycheader.c common/util.c -o fuzz-worker-reply-libfuzzer
 *        cp -r tests/fuzz/corpus-worker-reply /tmp/corpus
 *        ./fuzz-worker-reply-libfuzzer -max_total_time=60 /tmp/corpus
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"
#include "worker-message.h"

#define FUZZ_MAX_PAYLOAD (1u << 20)
#define FUZZ_JOB_ID 0x0123456789abcdefull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long messages_valid, messages_rejected;

static void check(bool condition, const char *what) {
        if (_likely_(condition))
                return;
        fprintf(stderr, "fuzz-worker-reply: check failed: %s\n", what);
        abort();
}

/* Appends @n bytes at @*pos of @buf (capacity @cap). */
static void put(uint8_t *buf, size_t cap, size_t *pos, const void *p, size_t n) {
        check(*pos + n <= cap, "re-encoding fits");
        if (n > 0)
                memcpy(buf + *pos, p, n);
        *pos += n;
}

static void check_hello(const uint8_t *p, size_t n, const WorkerMessage *m) {
        const WorkerInfo *i = &m->info;
        size_t cap = n + 16, pos = 0;
        uint8_t *out = malloc(cap);

        check(out != NULL, "malloc");
        check(i->cache_tag && i->version && i->implementation, "hello has every name");
        check(i->cache_tag[0] != '\0', "cache tag not empty");
        check(!strchr(i->cache_tag, '/'), "cache tag without a slash");
        check(strlen(i->cache_tag) <= WORKER_MAX_NAME && strlen(i->version) <= WORKER_MAX_NAME &&
                      strlen(i->implementation) <= WORKER_MAX_NAME,
              "names bounded");
        check(i->magic[2] == '\r' && i->magic[3] == '\n', "magic ends in CR LF");

        put(out, cap, &pos, "H", 1);
        put(out, cap, &pos, i->magic, 4);
        put(out, cap, &pos, p + 5, 8); /* the probe hash is only interpreted */
        put(out, cap, &pos, i->cache_tag, strlen(i->cache_tag) + 1);
        put(out, cap, &pos, i->version, strlen(i->version) + 1);
        put(out, cap, &pos, i->implementation, strlen(i->implementation));
        check(pos == n && memcmp(out, p, n) == 0, "hello re-encodes to its input");
        free(out);
}

static void check_reply(const uint8_t *p, size_t n, const WorkerMessage *m) {
        const WorkerReply *r = &m->reply;
        size_t cap = n + 32, pos = 0, tl, ml;
        uint8_t *out, head[9];

        check(r->job_id == FUZZ_JOB_ID, "reply to the job asked");
        if (r->ok) {
                check(r->pyc == p + 10 && r->pyc_size == n - 10, "pyc is the rest of the payload");
                check(!r->error_type && !r->error_message, "no error on success");
                return;
        }
        check(r->error_type && r->error_message, "error texts present");
        tl = strlen(r->error_type);
        ml = strlen(r->error_message);
        check(tl <= WORKER_MAX_ERROR_TYPE && ml <= WORKER_MAX_ERROR_MESSAGE, "error texts bounded");
        check((const char *)r->error_type == m->error_type_buf && r->error_message == m->error_message_buf,
              "error texts owned by the message");
        if (tl == WORKER_MAX_ERROR_TYPE || ml == WORKER_MAX_ERROR_MESSAGE ||
            memchr(p + 14 + tl + 1, 0, n - 15 - tl))
                return; /* cut, or a NUL inside the message: not the same bytes */

        out = malloc(cap);
        check(out != NULL, "malloc");
        head[0] = 'R';
        unaligned_write_le64(head + 1, r->job_id);
        put(out, cap, &pos, head, 9);
        put(out, cap, &pos, "\1", 1);
        unaligned_write_le32(head, r->error_line);
        put(out, cap, &pos, head, 4);
        put(out, cap, &pos, r->error_type, tl + 1);
        put(out, cap, &pos, r->error_message, ml);
        check(pos == n && memcmp(out, p, n) == 0, "error reply re-encodes to its input");
        free(out);
}

/* Parses one payload (an exact-size heap copy, for ASan) in one mode. */
static int fuzz_message(const uint8_t *p, size_t n, bool expect_hello) {
        WorkerMessage m = {};
        int r;

        r = worker_parse_message(p, n, expect_hello, FUZZ_JOB_ID, &m);
        check(r == 0 || r == -EBADMSG || r == -ENOMEM, "worker_parse_message errno");
        if (r < 0) {
                WorkerMessage zero = {};
                check(memcmp(&m, &zero, sizeof(m)) == 0, "output untouched on failure");
                messages_rejected++;
                return r;
        }
        messages_valid++;
        check(m.hello == expect_hello, "message kind follows the state");
        if (m.hello)
                check_hello(p, n, &m);
        else
                check_reply(p, n, &m);
        worker_message_done(&m);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        bool expect_hello = true, alive = true;
        size_t off = 0;

        /* The splitter on every prefix of the first header. */
        for (size_t have = 0; have < MIN(size, (size_t)WORKER_FRAME_HEADER); have++) {
                size_t len = 0;
                check(worker_frame_next(data, have, FUZZ_MAX_PAYLOAD, &len) == 0, "a short header waits");
        }

        while (off < size) {
                size_t len = 0;
                uint8_t *copy;
                bool mode;
                int r;

                r = worker_frame_next(data + off, size - off, FUZZ_MAX_PAYLOAD, &len);
                check(r == 0 || r == 1 || r == -EBADMSG, "worker_frame_next result");
                if (r <= 0)
                        break;
                check(len > 0 && len <= FUZZ_MAX_PAYLOAD && len <= size - off - WORKER_FRAME_HEADER,
                      "frame inside the input");
                copy = malloc(len);
                check(copy != NULL, "malloc");
                memcpy(copy, data + off + WORKER_FRAME_HEADER, len);
                mode = expect_hello;
                if (alive) {
                        r = fuzz_message(copy, len, mode);
                        if (r < 0)
                                alive = false; /* the daemon kills it here */
                        else
                                expect_hello = false;
                }
                (void)fuzz_message(copy, len, !mode);
                free(copy);
                off += WORKER_FRAME_HEADER + len;
        }
        return 0;
}

#ifndef FUZZ_LIBFUZZER

#define MUTATIONS_DEFAULT 20000
#define SEED 0x9e3779b97f4a7c15ull
#define SEED_MAX 4096

typedef struct Seed {
        const char *name;
        uint8_t *data;
        size_t size;
} Seed;

static void seed_frame(Seed *s, const void *payload, size_t n) {
        uint8_t *nb = realloc(s->data, s->size + WORKER_FRAME_HEADER + n);

        check(nb != NULL, "realloc");
        s->data = nb;
        unaligned_write_le32(s->data + s->size, (uint32_t)n);
        memcpy(s->data + s->size + WORKER_FRAME_HEADER, payload, n);
        s->size += WORKER_FRAME_HEADER + n;
}

static size_t hello(uint8_t *b, const char *magic, const char *tag, const char *version, const char *impl) {
        size_t n = 0;

        b[n++] = 'H';
        memcpy(b + n, magic, 4);
        n += 4;
        memcpy(b + n, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
        n += 8;
        n += (size_t)sprintf((char *)b + n, "%s", tag) + 1;
        n += (size_t)sprintf((char *)b + n, "%s", version) + 1;
        n += (size_t)sprintf((char *)b + n, "%s", impl);
        return n;
}

static size_t reply_ok(uint8_t *b, const void *pyc, size_t pyc_size) {
        b[0] = 'R';
        unaligned_write_le64(b + 1, FUZZ_JOB_ID);
        b[9] = 0;
        memcpy(b + 10, pyc, pyc_size);
        return 10 + pyc_size;
}

static size_t reply_error(uint8_t *b, uint32_t line, const char *type, const char *message) {
        size_t n = 14;

        b[0] = 'R';
        unaligned_write_le64(b + 1, FUZZ_JOB_ID);
        b[9] = 1;
        unaligned_write_le32(b + 10, line);
        n += (size_t)sprintf((char *)b + n, "%s", type) + 1;
        n += (size_t)sprintf((char *)b + n, "%s", message);
        return n;
}

static size_t build_seeds(Seed *seeds, size_t max) {
        static const uint8_t pyc[] = "\xa7\x0d\x0d\x0a\0\0\0\0\x10\x20\x30\x40\x05\0\0\0\xe3\0\0\0\0";
        uint8_t b[SEED_MAX];
        size_t n = 0;

        check(max >= 6, "seed room");
        seeds[n] = (Seed){ .name = "hello-cpython" };
        seed_frame(&seeds[n++], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));

        seeds[n] = (Seed){ .name = "hello-pypy" };
        seed_frame(&seeds[n++], b, hello(b, "\x50\x0d\x0d\x0a", "pypy39", "3.9.16", "pypy"));

        seeds[n] = (Seed){ .name = "compiled" };
        seed_frame(&seeds[n], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));
        seed_frame(&seeds[n++], b, reply_ok(b, pyc, sizeof(pyc) - 1));

        seeds[n] = (Seed){ .name = "syntax-error" };
        seed_frame(&seeds[n], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));
        seed_frame(&seeds[n++], b, reply_error(b, 3, "SyntaxError", "invalid syntax"));

        seeds[n] = (Seed){ .name = "several" };
        seed_frame(&seeds[n], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));
        seed_frame(&seeds[n], b,
                   reply_error(b, 0, "ValueError", "source code string cannot contain null bytes"));
        seed_frame(&seeds[n], b, reply_ok(b, pyc, sizeof(pyc) - 1));
        seed_frame(&seeds[n++], b, reply_error(b, 0xffffffffu, "UnicodeDecodeError", "line\nbreak \xff"));

        seeds[n] = (Seed){ .name = "reply-before-hello" };
        seed_frame(&seeds[n++], b, reply_ok(b, pyc, sizeof(pyc) - 1));
        return n;
}

/* xorshift64*: small, fast and the same on every machine. */
static uint64_t rng_state = SEED;

static uint64_t rng_next(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t rng_below(size_t n) {
        return n == 0 ? 0 : (size_t)(rng_next() % n);
}

#define MUTATION_ROOM 512

static void mutate_once(uint8_t *buf, size_t *size, size_t capacity) {
        static const uint32_t interesting[] = { 0,
                                                1,
                                                4,
                                                9,
                                                10,
                                                13,
                                                14,
                                                0x7f,
                                                0xff,
                                                0x100,
                                                0x101,
                                                0x1000,
                                                FUZZ_MAX_PAYLOAD,
                                                FUZZ_MAX_PAYLOAD + 1,
                                                0x7fffffff,
                                                0xffffffff };
        static const uint8_t bytes[] = { 0, '/', '\r', '\n', 'H', 'R', 1, 2, 0x7f, 0x80, 0xff };
        size_t s = *size, pos, len;

        switch (rng_below(8)) {
        case 0: /* flip a bit */
                if (s > 0)
                        buf[rng_below(s)] ^= (uint8_t)(1u << rng_below(8));
                break;
        case 1: /* an interesting byte: a separator, a type, a status */
                if (s > 0)
                        buf[rng_below(s)] = bytes[rng_below(ELEMENTSOF(bytes))];
                break;
        case 2: /* an interesting 32-bit value, e.g. over a length or the line */
                if (s >= 4) {
                        pos = rng_below(s - 3);
                        unaligned_write_le32(buf + pos, interesting[rng_below(ELEMENTSOF(interesting))]);
                }
                break;
        case 3: /* truncate */
                *size = rng_below(s + 1);
                break;
        case 4: /* insert a run of one byte, e.g. to grow a name past its bound */
                len = rng_below(300) + 1;
                len = MIN(len, capacity - s);
                pos = rng_below(s + 1);
                memmove(buf + pos + len, buf + pos, s - pos);
                memset(buf + pos, rng_below(2) ? 'x' : (int)rng_next(), len);
                *size = s + len;
                break;
        case 5: /* delete a run */
                if (s > 0) {
                        pos = rng_below(s);
                        len = rng_below(8) + 1;
                        len = MIN(len, s - pos);
                        memmove(buf + pos, buf + pos + len, s - pos - len);
                        *size = s - len;
                }
                break;
        case 6: /* change the job id */
                if (s >= 13 && buf[4] == 'R')
                        unaligned_write_le64(buf + 5, rng_next());
                break;
        case 7: /* append random bytes */
                len = rng_below(16) + 1;
                len = MIN(len, capacity - s);
                for (size_t i = 0; i < len; i++)
                        buf[s + i] = (uint8_t)rng_next();
                *size = s + len;
                break;
        }
}

/* Rewrites the length prefix of a one-frame stream to match, so that the
 * parser, not just the splitter, sees the mutation. */
static void fix_single_length(uint8_t *buf, size_t size) {
        if (size > WORKER_FRAME_HEADER)
                unaligned_write_le32(buf, (uint32_t)(size - WORKER_FRAME_HEADER));
}

static void run_exact(const uint8_t *data, size_t size) {
        uint8_t *copy = malloc(size ? size : 1);

        check(copy != NULL, "malloc");
        if (size > 0)
                memcpy(copy, data, size);
        LLVMFuzzerTestOneInput(copy, size);
        free(copy);
}

static void run_mutations(const Seed *seeds, size_t n_seeds, unsigned long count) {
        size_t capacity = 0;
        uint8_t *buf;

        for (size_t i = 0; i < n_seeds; i++)
                capacity = MAX(capacity, seeds[i].size);
        capacity = 2 * capacity + MUTATION_ROOM;
        buf = malloc(capacity);
        check(buf != NULL, "malloc");

        for (unsigned long i = 0; i < count; i++) {
                const Seed *seed = &seeds[rng_below(n_seeds)];
                size_t size = seed->size, rounds = rng_below(3) + 1;
                bool single = unaligned_read_le32(seed->data) + WORKER_FRAME_HEADER == seed->size;

                memcpy(buf, seed->data, size);
                for (size_t j = 0; j < rounds; j++)
                        mutate_once(buf, &size, capacity);
                if (single && rng_below(4) != 0)
                        fix_single_length(buf, size);
                run_exact(buf, size);
        }
        free(buf);
}

static int replay_file(const char *path, unsigned long *count) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        if (fd < 0) {
                fprintf(stderr, "fuzz-worker-reply: cannot open %s: %m\n", path);
                return -errno;
        }
        r = read_full_fd(fd, 4 * (size_t)FUZZ_MAX_PAYLOAD, &data, &size);
        if (r < 0) {
                fprintf(stderr, "fuzz-worker-reply: cannot read %s: %s\n", path, strerror(-r));
                return r;
        }
        run_exact(data, size);
        (*count)++;
        return 0;
}

static int replay_path(const char *path, unsigned long *count) {
        struct dirent **entries = NULL;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "fuzz-worker-reply: %s: %m\n", path);
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path, count);
        n = scandir(path, &entries, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "fuzz-worker-reply: cannot list %s: %m\n", path);
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;

                if (entries[i]->d_name[0] != '.') {
                        p = path_join(path, entries[i]->d_name);
                        check(p != NULL, "path_join");
                        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && replay_file(p, count) < 0)
                                r = -EIO;
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

static char *find_corpus(void) {
        static const char *const vars[] = { "PYCQUEUE_SRCDIR", "srcdir" };
        struct stat st;

        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                const char *dir = getenv(vars[i]);
                char *p;

                if (!dir || !*dir)
                        continue;
                p = path_join(dir, "tests/fuzz/corpus-worker-reply");
                check(p != NULL, "path_join");
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        return p;
                free(p);
        }
        if (stat("tests/fuzz/corpus-worker-reply", &st) == 0 && S_ISDIR(st.st_mode))
                return strdup("tests/fuzz/corpus-worker-reply");
        return NULL;
}

static int write_corpus(const char *dir, const Seed *seeds, size_t n_seeds) {
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "fuzz-worker-reply: cannot create %s: %m\n", dir);
                return 1;
        }
        for (size_t i = 0; i < n_seeds; i++) {
                _cleanup_free_ char *p = NULL;
                _cleanup_close_ int fd = -1;
                char name[64];

                snprintf(name, sizeof(name), "%02zu-%s", i + 1, seeds[i].name);
                p = path_join(dir, name);
                check(p != NULL, "path_join");
                fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || loop_write(fd, seeds[i].data, seeds[i].size) < 0) {
                        fprintf(stderr, "fuzz-worker-reply: cannot write %s: %m\n", p);
                        return 1;
                }
                printf("%s (%zu bytes)\n", p, seeds[i].size);
        }
        return 0;
}

static void usage(FILE *f) {
        fputs("usage: fuzz-worker-reply [--mutations=N] [FILE|DIR...]\n"
              "       fuzz-worker-reply --write-corpus DIR\n"
              "Replays FILEs and DIRs (default: tests/fuzz/corpus-worker-reply under $PYCQUEUE_SRCDIR),\n"
              "then N (default 20000) deterministic mutations of built-in valid worker streams.\n",
              f);
}

int main(int argc, char *argv[]) {
        unsigned long mutations = MUTATIONS_DEFAULT, replayed = 0;
        Seed seeds[8] = {};
        size_t n_seeds;
        int first = 1, failed = 0;

        n_seeds = build_seeds(seeds, ELEMENTSOF(seeds));

        for (; first < argc && argv[first][0] == '-'; first++) {
                const char *a = argv[first];

                if (strcmp(a, "--") == 0) {
                        first++;
                        break;
                } else if (strcmp(a, "--help") == 0) {
                        usage(stdout);
                        return 0;
                } else if (strcmp(a, "--write-corpus") == 0 && first + 1 < argc) {
                        failed = write_corpus(argv[first + 1], seeds, n_seeds);
                        for (size_t i = 0; i < n_seeds; i++)
                                free(seeds[i].data);
                        return failed;
                } else if (strncmp(a, "--mutations=", 12) == 0) {
                        uint64_t v;

                        if (safe_atou64(a + 12, &v) < 0) {
                                usage(stderr);
                                return 2;
                        }
                        mutations = (unsigned long)v;
                } else {
                        usage(stderr);
                        return 2;
                }
        }

        /* Every seed holds a message that parses (the last one only as a
         * reply, since it comes before the hello). */
        for (size_t i = 0; i < n_seeds; i++) {
                unsigned long before = messages_valid;

                run_exact(seeds[i].data, seeds[i].size);
                check(messages_valid > before, "a seed parses");
        }

        if (first < argc) {
                for (int i = first; i < argc; i++)
                        if (replay_path(argv[i], &replayed) < 0)
                                failed = 1;
        } else {
                _cleanup_free_ char *corpus = find_corpus();

                if (!corpus) {
                        fprintf(stderr, "fuzz-worker-reply: tests/fuzz/corpus-worker-reply not found "
                                        "(set PYCQUEUE_SRCDIR to the source tree)\n");
                        failed = 1;
                } else if (replay_path(corpus, &replayed) < 0)
                        failed = 1;
                else if (replayed == 0) {
                        fprintf(stderr, "fuzz-worker-reply: %s holds no input\n", corpus);
                        failed = 1;
                }
        }

        run_mutations(seeds, n_seeds, mutations);
        for (size_t i = 0; i < n_seeds; i++)
                free(seeds[i].data);

        printf("fuzz-worker-reply: %lu file(s) replayed, %lu mutation(s), %lu message(s) valid and "
               "re-encoded, "
               "%lu rejected\n",
               replayed, mutations, messages_valid, messages_rejected);
        if (mutations >= 1000 && (messages_valid < mutations / 100 || messages_rejected < mutations / 100)) {
                fprintf(stderr,
                        "fuzz-worker-reply: mutations did not exercise both accept and reject paths\n");
                failed = 1;
        }
        return failed ? 1 : 0;
}

#endif /* FUZZ_LIBFUZZER */
