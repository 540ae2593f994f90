/* SPDX-License-Identifier: MIT */
/* Fuzz target for the client protocol codec (common/protocol.c).
 *
 * LLVMFuzzerTestOneInput() treats its input both as one frame and as a stream
 * of frames, the way a connection reads them, and runs every reader entry
 * point over it: frame_size() on each header prefix, msg_parse(), msg_next()
 * and every field_*() accessor. Each frame that parses is written again with
 * the MsgWriter and must come out byte for byte the same, so reader and writer
 * agree on every frame the reader accepts. Any disagreement, or a rejection
 * with an errno the API does not document, aborts.
 *
 * Two builds:
 *
 *  - The default (any compiler, as `make check` builds it) adds a main() that
 *    replays the files and directories named on its command line, or else the
 *    seed corpus tests/fuzz/corpus-protocol/ (found through
 *    $PYCQUEUE_SRCDIR, then $srcdir, then the current directory), and then
 *    20,000 deterministic mutations of valid frames it builds itself.
 *    `fuzz-protocol --write-corpus DIR` writes those frames as the seed corpus.
 *
 *  - With -DFUZZ_LIBFUZZER it is a plain libFuzzer target:
 *
 *        clang -g -O1 -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER \
 *              -D_GNU_SOURCE -Icommon tests/fuzz/fuzz-protocol.c \
 *              common/protocol.c common/util.c -o fuzz-protocol-libfuzzer
 *        cp -r tests/fuzz/corpus-protocol /tmp/corpus
 *        ./fuzz-protocol-libfuzzer -max_total_time=60 /tmp/corpus
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
#include "protocol.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long frames_valid, frames_rejected;

static void check(bool condition, const char *what) {
        if (_likely_(condition))
                return;
        fprintf(stderr, "fuzz-protocol: check failed: %s\n", what);
        abort();
}

/* A field re-encoded alone must equal the bytes it was read from. */
static void check_field_reencodes(const MsgField *f, int (*put)(MsgWriter *w, const MsgField *f)) {
        MsgWriter w;
        uint8_t *out = NULL;
        size_t out_size = 0;

        check(msg_writer_init(&w, 0) == 0, "msg_writer_init");
        check(put(&w, f) == 0, "re-encoding a field");
        check(msg_writer_finish(&w, &out, &out_size) == 0, "msg_writer_finish of one field");
        check(out_size == PROTOCOL_HEADER_SIZE + PROTOCOL_FIELD_HEADER_SIZE + f->size,
              "re-encoded field size");
        check(unaligned_read_le16(out + PROTOCOL_HEADER_SIZE) == f->tag, "re-encoded field tag");
        check(unaligned_read_le32(out + PROTOCOL_HEADER_SIZE + 2) == f->size, "re-encoded field length");
        check(f->size == 0 ||
                      memcmp(out + PROTOCOL_HEADER_SIZE + PROTOCOL_FIELD_HEADER_SIZE, f->data, f->size) == 0,
              "re-encoded field bytes");
        free(out);
}

static int put_as_u64(MsgWriter *w, const MsgField *f) {
        uint64_t v;

        check(field_u64(f, &v) == 0, "field_u64 of a size-8 field");
        return msg_put_u64(w, f->tag, v);
}

static int put_as_string(MsgWriter *w, const MsgField *f) {
        _cleanup_free_ char *s = NULL;

        check(field_strdup(f, &s) == 0, "field_strdup of a NUL-free field");
        return msg_put_string(w, f->tag, s);
}

static int put_as_stat(MsgWriter *w, const MsgField *f) {
        _cleanup_free_ char *value = NULL;
        const char *key;
        const uint8_t *v;
        size_t vsize;
        char kind;

        check(field_stat(f, &key, &kind, &v, &vsize) == 0, "field_stat of a valid stat");
        value = strndup((const char *)v, vsize);
        check(value != NULL, "strndup");
        return msg_put_stat(w, key, kind, value);
}

static void fuzz_field(const uint8_t *frame, size_t size, const MsgField *f) {
        const uint8_t *key = NULL, *value = NULL;
        size_t value_size = 0;
        char *s = NULL, kind = 0;
        uint64_t u = 0;
        int r;

        check(f->data >= frame + PROTOCOL_HEADER_SIZE + PROTOCOL_FIELD_HEADER_SIZE,
              "field starts inside frame");
        check(f->size <= size && f->data + f->size <= frame + size, "field ends inside frame");

        r = field_u64(f, &u);
        check(r == (f->size == 8 ? 0 : -EBADMSG), "field_u64 accepts exactly size 8");
        if (r == 0)
                check_field_reencodes(f, put_as_u64);

        r = field_strdup(f, &s);
        check(r == 0 || r == -EBADMSG, "field_strdup errno");
        check((r == 0) == (f->size == 0 || !memchr(f->data, 0, f->size)),
              "field_strdup rejects exactly NULs");
        if (r == 0) {
                check(strlen(s) == f->size && memcmp(s, f->data, f->size) == 0, "field_strdup copy");
                free(s);
                check_field_reencodes(f, put_as_string);
        }

        r = field_stat(f, (const char **)&key, &kind, &value, &value_size);
        check(r == 0 || r == -EBADMSG, "field_stat errno");
        if (r == 0) {
                size_t kl = strlen((const char *)key);

                check(f->tag == TAG_STAT, "field_stat only on TAG_STAT");
                check(key == f->data && kl > 0 && kl + 2 <= f->size, "field_stat key bounds");
                check(kind == 'n' || kind == 's' || kind == 'b', "field_stat kind");
                check(value == f->data + kl + 2 && value + value_size == f->data + f->size,
                      "field_stat value bounds");
                if (!memchr(value, 0, value_size))
                        check_field_reencodes(f, put_as_stat);
        }
}

/* One candidate frame, exactly @size bytes. */
static void fuzz_frame(const uint8_t *frame, size_t size) {
        MsgWriter w;
        MsgReader reader;
        MsgField field;
        uint8_t *out = NULL;
        size_t out_size = 0, fields = 0;
        int r;

        r = msg_parse(frame, size, &reader);
        if (r < 0) {
                check(r == -EBADMSG || r == -EMSGSIZE || r == -EPROTONOSUPPORT, "msg_parse errno");
                frames_rejected++;
                return;
        }
        frames_valid++;
        check(frame_size(frame, size) == (int64_t)size, "frame_size agrees with msg_parse");
        check(size >= PROTOCOL_HEADER_SIZE && size <= PROTOCOL_MAX_FRAME, "valid frame size");
        check(reader.type == unaligned_read_le16(frame + 6), "message type");

        check(msg_writer_init(&w, reader.type) == 0, "msg_writer_init");
        while ((r = msg_next(&reader, &field)) == 1) {
                fuzz_field(frame, size, &field);
                check(msg_put_bytes(&w, field.tag, field.data, field.size) == 0, "msg_put_bytes");
                fields++;
                check(fields <= size / PROTOCOL_FIELD_HEADER_SIZE, "field count bounded by frame size");
        }
        check(r == 0, "msg_next ends with 0");
        check(msg_next(&reader, &field) == 0, "msg_next stays at the end");

        check(msg_writer_finish(&w, &out, &out_size) == 0, "msg_writer_finish");
        check(out_size == size && memcmp(out, frame, size) == 0, "re-encoded frame equals the input");
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int64_t whole;
        size_t off;

        /* frame_size() on every prefix of the header. */
        whole = frame_size(data, size);
        for (size_t have = 0; have <= MIN(size, (size_t)PROTOCOL_HEADER_SIZE); have++) {
                int64_t n = frame_size(data, have);

                if (have < 4)
                        check(n == 0, "frame_size needs four bytes");
                else
                        check(n == whole, "frame_size depends on the length only");
        }
        check(whole == 0 || whole == -EBADMSG || whole == -EMSGSIZE ||
                      (whole >= PROTOCOL_HEADER_SIZE && whole <= PROTOCOL_MAX_FRAME),
              "frame_size result");

        /* The whole input as one frame. */
        fuzz_frame(data, size);

        /* The input as a stream, the way a connection splits it; each frame is
         * copied to a buffer of its exact size so that a sanitizer sees any
         * read past its end. */
        for (off = 0; off < size;) {
                int64_t n = frame_size(data + off, size - off);
                uint8_t *copy;

                if (n <= 0 || (uint64_t)n > size - off)
                        break;
                copy = malloc((size_t)n);
                check(copy != NULL, "malloc");
                memcpy(copy, data + off, (size_t)n);
                fuzz_frame(copy, (size_t)n);
                free(copy);
                off += (size_t)n;
        }
        return 0;
}

#ifndef FUZZ_LIBFUZZER

#define MUTATIONS_DEFAULT 20000
#define SEED 0x9e3779b97f4a7c15ull

typedef struct Seed {
        const char *name;
        uint8_t *data;
        size_t size;
} Seed;

/* Builds the valid frames that seed both the mutations and the corpus. */
static size_t build_seeds(Seed *seeds, size_t max) {
        static const uint8_t odd_path[] = "/tmp/odd\nname\xff\xfe/\xc3\x28.py";
        MsgWriter w;
        size_t n = 0;

#define SEED_BEGIN(nm, type)                                                                                \
        (check(n < max, "too many seeds"), seeds[n].name = (nm), msg_writer_init(&w, (type)))
#define SEED_END() check(msg_writer_finish(&w, &seeds[n].data, &seeds[n].size) == 0, "seed frame"), n++

        SEED_BEGIN("compile", MSG_COMPILE);
        msg_put_string(&w, TAG_CTX_TOOL, "pycqueue");
        msg_put_string(&w, TAG_CTX_DPKG_PACKAGE, "python3-foo");
        msg_put_string(&w, TAG_CTX_ARGV, "pycqueue");
        msg_put_string(&w, TAG_CTX_ARGV, "compile");
        msg_put_string(&w, TAG_PATH, "/usr/lib/python3/dist-packages/foo");
        msg_put_bytes(&w, TAG_PATH, odd_path, sizeof(odd_path) - 1);
        msg_put_string(&w, TAG_EXCLUDE, "/tests?/");
        msg_put_string(&w, TAG_PYTHON, "/usr/bin/python3.11");
        msg_put_string(&w, TAG_PYTHON, "/usr/bin/pypy3");
        msg_put_u64(&w, TAG_OPT_LEVEL, 0);
        msg_put_u64(&w, TAG_OPT_LEVEL, 2);
        msg_put_u64(&w, TAG_INVALIDATION, INVALIDATION_CHECKED_HASH);
        msg_put_u64(&w, TAG_FORCE, 1);
        msg_put_string(&w, TAG_PACKAGE, "python3-foo");
        msg_put_u64(&w, TAG_REPORT_ALL, 1);
        SEED_END();

        SEED_BEGIN("status", MSG_STATUS);
        SEED_END();

        SEED_BEGIN("wait", MSG_WAIT);
        msg_put_string(&w, TAG_PACKAGE, "python3-foo");
        SEED_END();

        SEED_BEGIN("accepted", MSG_ACCEPTED);
        msg_put_u64(&w, TAG_COUNT_TOTAL, 1234);
        SEED_END();

        SEED_BEGIN("progress", MSG_PROGRESS);
        msg_put_u64(&w, TAG_COUNT_DONE, 17);
        msg_put_u64(&w, TAG_COUNT_TOTAL, 1234);
        SEED_END();

        SEED_BEGIN("result", MSG_RESULT);
        msg_put_bytes(&w, TAG_RESULT_SOURCE, odd_path, sizeof(odd_path) - 1);
        msg_put_string(&w, TAG_RESULT_TARGET, "/tmp/__pycache__/x.cpython-311.pyc");
        msg_put_u64(&w, TAG_RESULT_OUTCOME, OUTCOME_FAILED);
        msg_put_string(&w, TAG_ERROR_TYPE, "SyntaxError");
        msg_put_u64(&w, TAG_ERROR_LINE, 3);
        msg_put_string(&w, TAG_ERROR_MESSAGE, "invalid syntax");
        SEED_END();

        SEED_BEGIN("done", MSG_DONE);
        msg_put_u64(&w, TAG_COUNT_COMPILED, 1000);
        msg_put_u64(&w, TAG_COUNT_UP_TO_DATE, 200);
        msg_put_u64(&w, TAG_COUNT_COALESCED, 33);
        msg_put_u64(&w, TAG_COUNT_FAILED, 1);
        SEED_END();

        SEED_BEGIN("error", MSG_ERROR);
        msg_put_u64(&w, TAG_ERRNO, EPERM);
        msg_put_string(&w, TAG_ERROR_MESSAGE, "compile requests are accepted from root only");
        SEED_END();

        SEED_BEGIN("status-reply", MSG_STATUS_REPLY);
        msg_put_stat(&w, "pid", 'n', "4242");
        msg_put_stat(&w, "version", 's', "0.1.0");
        msg_put_stat(&w, "state", 's', "running");
        msg_put_stat(&w, "workers.0.interpreter", 's', "/usr/bin/python3.11");
        msg_put_stat(&w, "workers.0.magic", 's', "a70d0d0a");
        msg_put_stat(&w, "workers.0.count", 'n', "2");
        msg_put_stat(&w, "throughput_files_per_second", 'n', "812.5");
        msg_put_stat(&w, "recent_errors.0.message", 's', "line\nbreak");
        msg_put_stat(&w, "ok", 'b', "true");
        SEED_END();

        SEED_BEGIN("unknown-tags", 0x7fff);
        msg_put_bytes(&w, 0, "", 0);
        msg_put_bytes(&w, 0xffff, "\0\0\0", 3);
        msg_put_bytes(&w, TAG_STAT, "key\0x", 5);
        SEED_END();

#undef SEED_BEGIN
#undef SEED_END
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

#define MUTATION_ROOM 256

/* Applies one random mutation to @buf (@*size bytes used, @capacity bytes). */
static void mutate_once(uint8_t *buf, size_t *size, size_t capacity, const Seed *seeds, size_t n_seeds) {
        static const uint32_t interesting[] = { 0,
                                                1,
                                                3,
                                                4,
                                                5,
                                                6,
                                                7,
                                                8,
                                                0x7f,
                                                0x80,
                                                0xff,
                                                0x7fff,
                                                0xffff,
                                                PROTOCOL_MAX_FRAME - 4,
                                                PROTOCOL_MAX_FRAME - 3,
                                                PROTOCOL_MAX_FRAME,
                                                0x7fffffff,
                                                0xfffffffa,
                                                0xffffffff };
        size_t s = *size, pos, len;

        switch (rng_below(10)) {
        case 0: /* flip a bit */
                if (s > 0)
                        buf[rng_below(s)] ^= (uint8_t)(1u << rng_below(8));
                break;
        case 1: /* set a random byte */
                if (s > 0)
                        buf[rng_below(s)] = (uint8_t)rng_next();
                break;
        case 2: /* an interesting 32-bit value, e.g. over a length field */
                if (s >= 4) {
                        pos = rng_below(s - 3);
                        unaligned_write_le32(buf + pos, interesting[rng_below(ELEMENTSOF(interesting))]);
                }
                break;
        case 3: /* an interesting 16-bit value, e.g. over a tag or the version */
                if (s >= 2) {
                        pos = rng_below(s - 1);
                        unaligned_write_le16(buf + pos,
                                             (uint16_t)interesting[rng_below(ELEMENTSOF(interesting))]);
                }
                break;
        case 4: /* truncate */
                *size = rng_below(s + 1);
                break;
        case 5:                          /* append random bytes */
                len = rng_below(16) + 1; /* not inside MIN(): it evaluates twice */
                len = MIN(len, capacity - s);
                for (size_t i = 0; i < len; i++)
                        buf[s + i] = (uint8_t)rng_next();
                *size = s + len;
                break;
        case 6: /* insert a byte */
                if (s < capacity) {
                        pos = rng_below(s + 1);
                        memmove(buf + pos + 1, buf + pos, s - pos);
                        buf[pos] = (uint8_t)rng_next();
                        *size = s + 1;
                }
                break;
        case 7: /* delete a run of bytes */
                if (s > 0) {
                        pos = rng_below(s);
                        len = rng_below(8) + 1;
                        len = MIN(len, s - pos);
                        memmove(buf + pos, buf + pos + len, s - pos - len);
                        *size = s - len;
                }
                break;
        case 8: { /* append another seed frame: a stream of two frames */
                const Seed *other = &seeds[rng_below(n_seeds)];

                len = MIN(other->size, capacity - s);
                memcpy(buf + s, other->data, len);
                *size = s + len;
                break;
        }
        case 9: /* rewrite the length prefix to match, to get past the header check */
                if (s >= 4)
                        unaligned_write_le32(buf, (uint32_t)(s - 4));
                break;
        }
}

static void run_exact(const uint8_t *data, size_t size) {
        /* An exact-size heap copy, so that ASan catches any overread. */
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
                size_t size = seed->size, rounds = rng_below(4) + 1;

                memcpy(buf, seed->data, size);
                for (size_t j = 0; j < rounds; j++)
                        mutate_once(buf, &size, capacity, seeds, n_seeds);
                /* Half the time, keep the header consistent so the field walk is hit. */
                if (size >= 4 && rng_below(2) == 0)
                        unaligned_write_le32(buf, (uint32_t)(size - 4));
                run_exact(buf, size);
        }
        free(buf);
}

static int replay_file(const char *path, unsigned long *count) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "fuzz-protocol: cannot open %s: %m\n", path);
                return -errno;
        }
        r = read_full_fd(fd, 4 * (size_t)PROTOCOL_MAX_FRAME, &data, &size);
        if (r < 0) {
                fprintf(stderr, "fuzz-protocol: cannot read %s: %s\n", path, strerror(-r));
                return r;
        }
        run_exact(data, size);
        (*count)++;
        return 0;
}

/* Replays a file, or every regular file of a directory in name order. */
static int replay_path(const char *path, unsigned long *count) {
        struct dirent **entries = NULL;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "fuzz-protocol: %s: %m\n", path);
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path, count);

        n = scandir(path, &entries, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "fuzz-protocol: cannot list %s: %m\n", path);
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
                p = path_join(dir, "tests/fuzz/corpus-protocol");
                check(p != NULL, "path_join");
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        return p;
                free(p);
        }
        if (stat("tests/fuzz/corpus-protocol", &st) == 0 && S_ISDIR(st.st_mode))
                return strdup("tests/fuzz/corpus-protocol");
        return NULL;
}

static int write_corpus(const char *dir, const Seed *seeds, size_t n_seeds) {
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "fuzz-protocol: cannot create %s: %m\n", dir);
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
                        fprintf(stderr, "fuzz-protocol: cannot write %s: %m\n", p);
                        return 1;
                }
                printf("%s (%zu bytes)\n", p, seeds[i].size);
        }
        return 0;
}

static void usage(FILE *f) {
        fputs("usage: fuzz-protocol [--mutations=N] [FILE|DIR...]\n"
              "       fuzz-protocol --write-corpus DIR\n"
              "Replays FILEs and DIRs (default: tests/fuzz/corpus-protocol under $PYCQUEUE_SRCDIR),\n"
              "then N (default 20000) deterministic mutations of built-in valid frames.\n",
              f);
}

int main(int argc, char *argv[]) {
        unsigned long mutations = MUTATIONS_DEFAULT, replayed = 0;
        Seed seeds[16];
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

        /* Every seed must be a valid frame that survives its own round trip. */
        for (size_t i = 0; i < n_seeds; i++) {
                unsigned long before = frames_valid;

                run_exact(seeds[i].data, seeds[i].size);
                check(frames_valid > before, "a seed frame parses");
        }

        if (first < argc) {
                for (int i = first; i < argc; i++)
                        if (replay_path(argv[i], &replayed) < 0)
                                failed = 1;
        } else {
                _cleanup_free_ char *corpus = find_corpus();

                if (!corpus) {
                        fprintf(stderr, "fuzz-protocol: tests/fuzz/corpus-protocol not found "
                                        "(set PYCQUEUE_SRCDIR to the source tree)\n");
                        failed = 1;
                } else if (replay_path(corpus, &replayed) < 0)
                        failed = 1;
                else if (replayed == 0) {
                        fprintf(stderr, "fuzz-protocol: %s holds no input\n", corpus);
                        failed = 1;
                }
        }

        run_mutations(seeds, n_seeds, mutations);
        for (size_t i = 0; i < n_seeds; i++)
                free(seeds[i].data);

        printf("fuzz-protocol: %lu file(s) replayed, %lu mutation(s), %lu frame(s) valid and re-encoded, "
               "%lu rejected\n",
               replayed, mutations, frames_valid, frames_rejected);
        /* The mutations must reach both sides of the parser, or they test nothing. */
        if (mutations >= 1000 && (frames_valid < mutations / 100 || frames_rejected < mutations / 100)) {
                fprintf(stderr, "fuzz-protocol: mutations did not exercise both accept and reject paths\n");
                failed = 1;
        }
        return failed ? 1 : 0;
}

#endif /* FUZZ_LIBFUZZER */
