/* SPDX-License-Identifier: MIT */
#pragma once

/* The replay driver shared by the fuzz targets.
 *
 * A target defines LLVMFuzzerTestOneInput() and, unless built with
 * -DFUZZ_LIBFUZZER, a main() that calls fuzz_main() with a FuzzTarget. The
 * driver then
 *
 *   1. runs every built-in seed, which the target must accept, or refuse
 *      when the seed says so (the target counts in fuzz_accepted and
 *      fuzz_rejected);
 *   2. replays the files and directories named on the command line, or else
 *      the target's seed corpus (tests/fuzz/corpus-NAME, found through
 *      $PYCQUEUE_SRCDIR, then $srcdir, then the current directory);
 *   3. runs N deterministic mutations of the seeds (xorshift64*, the same
 *      sequence on every machine): the generic ones below, plus the
 *      target's own when it has a mutate hook; each runs as an exact-size
 *      heap copy so that a sanitizer sees a read past its end;
 *   4. fails unless the mutations reached both the accepting and the
 *      rejecting side of the target, which otherwise tests nothing.
 *
 * `fuzz-NAME --write-corpus DIR` writes the seeds as the corpus. With
 * -DFUZZ_LIBFUZZER only fuzz_check() is defined and libFuzzer drives. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Incremented by the target for each input its parser accepted or rejected. */
static unsigned long fuzz_accepted, fuzz_rejected;
static const char *fuzz_name = "fuzz";

static inline void fuzz_check(bool condition, const char *what) {
        if (__builtin_expect(condition, 1))
                return;
        fprintf(stderr, "%s: check failed: %s\n", fuzz_name, what);
        abort();
}

#ifndef FUZZ_LIBFUZZER

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"

#define FUZZ_MAX_SEEDS 64
#define FUZZ_MAX_INPUT (64u * 1024u * 1024u)
#define FUZZ_MUTATION_ROOM 256

typedef struct FuzzSeed {
        const char *name;
        uint8_t *data; /* malloc()ed */
        size_t size;
        bool refused; /* the target must refuse it, not accept it */
} FuzzSeed;

typedef struct FuzzTarget {
        const char *name;        /* "fuzz-spec" */
        const char *corpus;      /* "tests/fuzz/corpus-spec", relative to the source tree */
        unsigned long mutations; /* default count */
        /* Fills @seeds with at most @max inputs; returns how many. */
        size_t (*build_seeds)(FuzzSeed *seeds, size_t max);
        /* Inputs are frames (a u32 length prefix, then the payload), or
         * streams of them: a mutation may rewrite the first length prefix
         * to match, to get past the header check. */
        bool frames;
        /* Words a mutation may insert (keys, operators), NULL-terminated. */
        const char *const *dictionary;
        /* Optional: a mutation only the target knows (a field, a bound),
         * drawn as one more case beside the generic ones. It may use
         * fuzz_rng_*() and must keep @*size within @capacity. */
        void (*mutate)(uint8_t *buf, size_t *size, size_t capacity);
        /* Optional: prints the target's own tallies after a run of
         * @mutations and returns false when they show a part of the parser
         * was never reached. */
        bool (*report)(unsigned long mutations);
} FuzzTarget;

static inline void fuzz_seed_add(FuzzSeed *seeds, size_t *n, size_t max, const char *name, const void *data,
                                 size_t size) {
        fuzz_check(*n < max, "too many seeds");
        seeds[*n].name = name;
        seeds[*n].data = malloc(size ? size : 1);
        fuzz_check(seeds[*n].data != NULL, "malloc");
        if (size > 0)
                memcpy(seeds[*n].data, data, size);
        seeds[*n].size = size;
        seeds[*n].refused = false;
        (*n)++;
}

/* A seed that reaches the rejecting side of the target. */
static inline void fuzz_seed_add_refused(FuzzSeed *seeds, size_t *n, size_t max, const char *name,
                                         const void *data, size_t size) {
        fuzz_seed_add(seeds, n, max, name, data, size);
        seeds[*n - 1].refused = true;
}

/* xorshift64*: small, fast and the same on every machine. */
static uint64_t fuzz_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t fuzz_rng_next(void) {
        fuzz_rng_state ^= fuzz_rng_state >> 12;
        fuzz_rng_state ^= fuzz_rng_state << 25;
        fuzz_rng_state ^= fuzz_rng_state >> 27;
        return fuzz_rng_state * 0x2545f4914f6cdd1dull;
}

static inline size_t fuzz_rng_below(size_t n) {
        return n == 0 ? 0 : (size_t)(fuzz_rng_next() % n);
}

static inline void fuzz_insert(uint8_t *buf, size_t *size, size_t capacity, size_t pos, const void *data,
                               size_t len) {
        len = MIN(len, capacity - *size);
        memmove(buf + pos + len, buf + pos, *size - pos);
        memcpy(buf + pos, data, len);
        *size += len;
}

/* Applies one random mutation to @buf (@*size bytes used, @capacity bytes). */
static inline void fuzz_mutate_once(const FuzzTarget *t, uint8_t *buf, size_t *size, size_t capacity,
                                    const FuzzSeed *seeds, size_t n_seeds) {
        static const uint32_t interesting[] = {
                0,    1,    2,    3,     4,      5,      6,    7,    8,          9,          10,
                0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 4095, 4096, 0x7fffffff, 0xfffffffa, 0xffffffff,
        };
        size_t s = *size, pos, len;

        switch (fuzz_rng_below(t->mutate ? 12 : 11)) {
        case 0: /* flip a bit */
                if (s > 0)
                        buf[fuzz_rng_below(s)] ^= (uint8_t)(1u << fuzz_rng_below(8));
                break;
        case 1: /* set a random byte */
                if (s > 0)
                        buf[fuzz_rng_below(s)] = (uint8_t)fuzz_rng_next();
                break;
        case 2: /* an interesting 32-bit value, e.g. over a length field */
                if (s >= 4)
                        unaligned_write_le32(buf + fuzz_rng_below(s - 3),
                                             interesting[fuzz_rng_below(ELEMENTSOF(interesting))]);
                break;
        case 3: /* an interesting 16-bit value, e.g. over a tag */
                if (s >= 2)
                        unaligned_write_le16(buf + fuzz_rng_below(s - 1),
                                             (uint16_t)interesting[fuzz_rng_below(ELEMENTSOF(interesting))]);
                break;
        case 4: /* truncate */
                *size = fuzz_rng_below(s + 1);
                break;
        case 5: { /* insert a few random bytes */
                uint8_t bytes[16];

                len = fuzz_rng_below(sizeof(bytes)) + 1;
                for (size_t i = 0; i < len; i++)
                        bytes[i] = (uint8_t)fuzz_rng_next();
                fuzz_insert(buf, size, capacity, fuzz_rng_below(s + 1), bytes, len);
                break;
        }
        case 6: /* delete a run of bytes */
                if (s > 0) {
                        pos = fuzz_rng_below(s);
                        len = fuzz_rng_below(8) + 1;
                        len = MIN(len, s - pos);
                        memmove(buf + pos, buf + pos + len, s - pos - len);
                        *size = s - len;
                }
                break;
        case 7: { /* append another seed */
                const FuzzSeed *other = &seeds[fuzz_rng_below(n_seeds)];

                fuzz_insert(buf, size, capacity, s, other->data, other->size);
                break;
        }
        case 8: /* duplicate a run of bytes */
                if (s > 0) {
                        uint8_t run[64];

                        pos = fuzz_rng_below(s);
                        len = fuzz_rng_below(sizeof(run)) + 1;
                        len = MIN(len, s - pos);
                        memcpy(run, buf + pos, len);
                        fuzz_insert(buf, size, capacity, fuzz_rng_below(s + 1), run, len);
                }
                break;
        case 9: /* insert a dictionary word */
                if (t->dictionary) {
                        size_t n = 0;

                        while (t->dictionary[n])
                                n++;
                        if (n > 0) {
                                const char *word = t->dictionary[fuzz_rng_below(n)];

                                fuzz_insert(buf, size, capacity, fuzz_rng_below(s + 1), word, strlen(word));
                        }
                }
                break;
        case 10: /* rewrite the length prefix to match */
                if (t->frames && s >= 4)
                        unaligned_write_le32(buf, (uint32_t)(s - 4));
                break;
        case 11:
                t->mutate(buf, size, capacity);
                break;
        }
}

/* Whether @seed is a stream of several frames that ends where the seed
 * does: matching its first length prefix to the whole would swallow the
 * frames after it. */
static inline bool fuzz_seed_is_stream(const FuzzSeed *seed) {
        size_t off = 0, n = 0;

        while (seed->size - off >= 4) {
                size_t len = unaligned_read_le32(seed->data + off);

                if (len > seed->size - off - 4)
                        return false;
                off += 4 + len;
                n++;
        }
        return off == seed->size && n > 1;
}

static inline void fuzz_run_exact(const uint8_t *data, size_t size) {
        uint8_t *copy = malloc(size ? size : 1);

        fuzz_check(copy != NULL, "malloc");
        if (size > 0)
                memcpy(copy, data, size);
        LLVMFuzzerTestOneInput(copy, size);
        free(copy);
}

static inline void fuzz_run_mutations(const FuzzTarget *t, const FuzzSeed *seeds, size_t n_seeds,
                                      unsigned long count) {
        size_t capacity = 0;
        uint8_t *buf;

        for (size_t i = 0; i < n_seeds; i++)
                capacity = MAX(capacity, seeds[i].size);
        capacity = 2 * capacity + FUZZ_MUTATION_ROOM;
        buf = malloc(capacity);
        fuzz_check(buf != NULL, "malloc");

        for (unsigned long i = 0; i < count; i++) {
                const FuzzSeed *seed = &seeds[fuzz_rng_below(n_seeds)];
                size_t size = seed->size, rounds = fuzz_rng_below(4) + 1;
                bool fix = t->frames && !fuzz_seed_is_stream(seed);

                memcpy(buf, seed->data, size);
                for (size_t j = 0; j < rounds; j++)
                        fuzz_mutate_once(t, buf, &size, capacity, seeds, n_seeds);
                /* For one frame, half the time keep the header consistent so
                 * that the fields are reached. */
                if (fix && size >= 4 && fuzz_rng_below(2) == 0)
                        unaligned_write_le32(buf, (uint32_t)(size - 4));
                fuzz_run_exact(buf, size);
        }
        free(buf);
}

static inline int fuzz_replay_file(const char *path, unsigned long *count) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "%s: cannot open %s: %m\n", fuzz_name, path);
                return -errno;
        }
        r = read_full_fd(fd, FUZZ_MAX_INPUT, &data, &size);
        if (r < 0) {
                fprintf(stderr, "%s: cannot read %s: %s\n", fuzz_name, path, strerror(-r));
                return r;
        }
        fuzz_run_exact(data, size);
        (*count)++;
        return 0;
}

/* Replays a file, or every regular file of a directory in name order. */
static inline int fuzz_replay_path(const char *path, unsigned long *count) {
        struct dirent **entries = NULL;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s: %m\n", fuzz_name, path);
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return fuzz_replay_file(path, count);

        n = scandir(path, &entries, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: cannot list %s: %m\n", fuzz_name, path);
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;

                if (entries[i]->d_name[0] != '.') {
                        p = path_join(path, entries[i]->d_name);
                        fuzz_check(p != NULL, "path_join");
                        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && fuzz_replay_file(p, count) < 0)
                                r = -EIO;
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

static inline char *fuzz_find_corpus(const FuzzTarget *t) {
        static const char *const vars[] = { "PYCQUEUE_SRCDIR", "srcdir" };
        struct stat st;

        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                const char *dir = getenv(vars[i]);
                char *p;

                if (!dir || !*dir)
                        continue;
                p = path_join(dir, t->corpus);
                fuzz_check(p != NULL, "path_join");
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        return p;
                free(p);
        }
        if (stat(t->corpus, &st) == 0 && S_ISDIR(st.st_mode))
                return strdup(t->corpus);
        return NULL;
}

static inline int fuzz_write_corpus(const char *dir, const FuzzSeed *seeds, size_t n_seeds) {
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "%s: cannot create %s: %m\n", fuzz_name, dir);
                return 1;
        }
        for (size_t i = 0; i < n_seeds; i++) {
                _cleanup_free_ char *p = NULL;
                _cleanup_close_ int fd = -1;
                char name[64];

                snprintf(name, sizeof(name), "%02zu-%s", i + 1, seeds[i].name);
                p = path_join(dir, name);
                fuzz_check(p != NULL, "path_join");
                fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || loop_write(fd, seeds[i].data, seeds[i].size) < 0) {
                        fprintf(stderr, "%s: cannot write %s: %m\n", fuzz_name, p);
                        return 1;
                }
                printf("%s (%zu bytes)\n", p, seeds[i].size);
        }
        return 0;
}

static inline void fuzz_usage(const FuzzTarget *t, FILE *f) {
        fprintf(f,
                "usage: %1$s [--mutations=N] [FILE|DIR...]\n"
                "       %1$s --write-corpus DIR\n"
                "Replays FILEs and DIRs (default: %2$s under $PYCQUEUE_SRCDIR),\n"
                "then N (default %3$lu) deterministic mutations of built-in seeds.\n",
                t->name, t->corpus, t->mutations);
}

static inline int fuzz_main(const FuzzTarget *t, int argc, char *argv[]) {
        unsigned long mutations = t->mutations, replayed = 0;
        FuzzSeed seeds[FUZZ_MAX_SEEDS];
        size_t n_seeds;
        int first = 1, failed = 0;

        fuzz_name = t->name;
        n_seeds = t->build_seeds(seeds, ELEMENTSOF(seeds));
        fuzz_check(n_seeds > 0, "at least one seed");

        for (; first < argc && argv[first][0] == '-'; first++) {
                const char *a = argv[first];

                if (strcmp(a, "--") == 0) {
                        first++;
                        break;
                } else if (strcmp(a, "--help") == 0) {
                        fuzz_usage(t, stdout);
                        failed = -1;
                        break;
                } else if (strcmp(a, "--write-corpus") == 0 && first + 1 < argc) {
                        failed = fuzz_write_corpus(argv[first + 1], seeds, n_seeds) ? 1 : -1;
                        break;
                } else if (strncmp(a, "--mutations=", 12) == 0) {
                        uint64_t v;

                        if (safe_atou64(a + 12, &v) < 0) {
                                fuzz_usage(t, stderr);
                                failed = 2;
                                break;
                        }
                        mutations = (unsigned long)v;
                } else {
                        fuzz_usage(t, stderr);
                        failed = 2;
                        break;
                }
        }
        if (failed != 0) {
                for (size_t i = 0; i < n_seeds; i++)
                        free(seeds[i].data);
                return failed < 0 ? 0 : failed;
        }

        /* Every seed must land on its side, or the mutations start from
         * something else than their author thought. */
        for (size_t i = 0; i < n_seeds; i++) {
                unsigned long before = seeds[i].refused ? fuzz_rejected : fuzz_accepted;

                fuzz_run_exact(seeds[i].data, seeds[i].size);
                if ((seeds[i].refused ? fuzz_rejected : fuzz_accepted) == before) {
                        fprintf(stderr, "%s: seed %s is not %s\n", t->name, seeds[i].name,
                                seeds[i].refused ? "refused" : "accepted");
                        failed = 1;
                }
        }

        if (first < argc) {
                for (int i = first; i < argc; i++)
                        if (fuzz_replay_path(argv[i], &replayed) < 0)
                                failed = 1;
        } else {
                _cleanup_free_ char *corpus = fuzz_find_corpus(t);

                if (!corpus) {
                        fprintf(stderr, "%s: %s not found (set PYCQUEUE_SRCDIR to the source tree)\n",
                                t->name, t->corpus);
                        failed = 1;
                } else if (fuzz_replay_path(corpus, &replayed) < 0)
                        failed = 1;
                else if (replayed == 0) {
                        fprintf(stderr, "%s: %s holds no input\n", t->name, corpus);
                        failed = 1;
                }
        }

        fuzz_run_mutations(t, seeds, n_seeds, mutations);
        for (size_t i = 0; i < n_seeds; i++)
                free(seeds[i].data);

        printf("%s: %lu file(s) replayed, %lu mutation(s), %lu input(s) accepted, %lu rejected\n", t->name,
               replayed, mutations, fuzz_accepted, fuzz_rejected);
        if (mutations >= 1000 && (fuzz_accepted < mutations / 100 || fuzz_rejected < mutations / 100)) {
                fprintf(stderr, "%s: mutations did not exercise both accept and reject paths\n", t->name);
                failed = 1;
        }
        if (t->report && !t->report(mutations))
                failed = 1;
        return failed;
}

#endif /* FUZZ_LIBFUZZER */
