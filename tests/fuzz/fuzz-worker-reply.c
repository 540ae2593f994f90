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
 * Built by `make check` it replays tests/fuzz/corpus-worker-reply and
 * 20,000 mutations of valid streams it builds itself (see driver.h);
 * `fuzz-worker-reply --write-corpus DIR` writes those streams as the corpus.
 * As a libFuzzer target:
 *
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER \
 *           -D_GNU_SOURCE -Icommon -Idaemon/compile \
 *           tests/fuzz/fuzz-worker-reply.c daemon/compile/worker-message.c \
 *           common/pycheader.c common/util.c -o fuzz-worker-reply-libfuzzer
 *     cp -r tests/fuzz/corpus-worker-reply /tmp/corpus
 *     ./fuzz-worker-reply-libfuzzer -max_total_time=60 /tmp/corpus
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "macro.h"
#include "util.h"
#include "worker-message.h"

#define FUZZ_MAX_PAYLOAD (1u << 20)
#define FUZZ_JOB_ID 0x0123456789abcdefull

/* Appends @n bytes at @*pos of @buf (capacity @cap). */
static void put(uint8_t *buf, size_t cap, size_t *pos, const void *p, size_t n) {
        fuzz_check(*pos + n <= cap, "re-encoding fits");
        if (n > 0)
                memcpy(buf + *pos, p, n);
        *pos += n;
}

static void check_hello(const uint8_t *p, size_t n, const WorkerMessage *m) {
        const WorkerInfo *i = &m->info;
        size_t cap = n + 16, pos = 0;
        uint8_t *out = malloc(cap);

        fuzz_check(out != NULL, "malloc");
        fuzz_check(i->cache_tag && i->version && i->implementation, "hello has every name");
        fuzz_check(i->cache_tag[0] != '\0', "cache tag not empty");
        fuzz_check(!strchr(i->cache_tag, '/'), "cache tag without a slash");
        fuzz_check(strlen(i->cache_tag) <= WORKER_MAX_NAME && strlen(i->version) <= WORKER_MAX_NAME &&
                           strlen(i->implementation) <= WORKER_MAX_NAME,
                   "names bounded");
        fuzz_check(i->magic[2] == '\r' && i->magic[3] == '\n', "magic ends in CR LF");

        put(out, cap, &pos, "H", 1);
        put(out, cap, &pos, i->magic, 4);
        put(out, cap, &pos, p + 5, 8); /* the probe hash is only interpreted */
        put(out, cap, &pos, i->cache_tag, strlen(i->cache_tag) + 1);
        put(out, cap, &pos, i->version, strlen(i->version) + 1);
        put(out, cap, &pos, i->implementation, strlen(i->implementation));
        fuzz_check(pos == n && memcmp(out, p, n) == 0, "hello re-encodes to its input");
        free(out);
}

static void check_reply(const uint8_t *p, size_t n, const WorkerMessage *m) {
        const WorkerReply *r = &m->reply;
        size_t cap = n + 32, pos = 0, tl, ml, dl = 0;
        uint8_t *out, head[9];

        fuzz_check(r->job_id == FUZZ_JOB_ID, "reply to the job asked");
        if (r->ok) {
                fuzz_check(r->pyc == p + 10 && r->pyc_size == n - 10, "pyc is the rest of the payload");
                fuzz_check(!r->error_type && !r->error_message, "no error on success");
                return;
        }
        fuzz_check(r->error_type && r->error_message, "error texts present");
        tl = strlen(r->error_type);
        ml = strlen(r->error_message);
        if (r->error_detail)
                dl = strlen(r->error_detail);
        fuzz_check(tl <= WORKER_MAX_ERROR_TYPE && ml <= WORKER_MAX_ERROR_MESSAGE &&
                           dl <= WORKER_MAX_ERROR_DETAIL,
                   "error texts bounded");
        fuzz_check((const char *)r->error_type == m->error_type_buf &&
                           r->error_message == m->error_message_buf &&
                           r->error_detail == m->error_detail_buf,
                   "error texts owned by the message");
        /* A detail exactly when a NUL follows the message. */
        fuzz_check((r->error_detail != NULL) == (memchr(p + 14 + tl + 1, 0, n - 15 - tl) != NULL),
                   "detail iff a second NUL");
        if (tl == WORKER_MAX_ERROR_TYPE || ml == WORKER_MAX_ERROR_MESSAGE || dl == WORKER_MAX_ERROR_DETAIL ||
            (r->error_detail && 14 + tl + 1 + ml + 1 + dl != n))
                return; /* cut, or a NUL inside the detail: not the same bytes */

        out = malloc(cap);
        fuzz_check(out != NULL, "malloc");
        head[0] = 'R';
        unaligned_write_le64(head + 1, r->job_id);
        put(out, cap, &pos, head, 9);
        put(out, cap, &pos, "\1", 1);
        unaligned_write_le32(head, r->error_line);
        put(out, cap, &pos, head, 4);
        put(out, cap, &pos, r->error_type, tl + 1);
        put(out, cap, &pos, r->error_message, ml);
        if (r->error_detail) {
                put(out, cap, &pos, "", 1);
                put(out, cap, &pos, r->error_detail, dl);
        }
        fuzz_check(pos == n && memcmp(out, p, n) == 0, "error reply re-encodes to its input");
        free(out);
}

/* Parses one payload (an exact-size heap copy, for ASan) in one mode. */
static int fuzz_message(const uint8_t *p, size_t n, bool expect_hello) {
        WorkerMessage m = {};
        int r;

        r = worker_parse_message(p, n, expect_hello, FUZZ_JOB_ID, &m);
        fuzz_check(r == 0 || r == -EBADMSG || r == -ENOMEM, "worker_parse_message errno");
        if (r < 0) {
                WorkerMessage zero = {};
                fuzz_check(memcmp(&m, &zero, sizeof(m)) == 0, "output untouched on failure");
                fuzz_rejected++;
                return r;
        }
        fuzz_accepted++;
        fuzz_check(m.hello == expect_hello, "message kind follows the state");
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
                fuzz_check(worker_frame_next(data, have, FUZZ_MAX_PAYLOAD, &len) == 0,
                           "a short header waits");
        }

        while (off < size) {
                size_t len = 0;
                uint8_t *copy;
                bool mode;
                int r;

                r = worker_frame_next(data + off, size - off, FUZZ_MAX_PAYLOAD, &len);
                fuzz_check(r == 0 || r == 1 || r == -EBADMSG, "worker_frame_next result");
                if (r <= 0)
                        break;
                fuzz_check(len > 0 && len <= FUZZ_MAX_PAYLOAD && len <= size - off - WORKER_FRAME_HEADER,
                           "frame inside the input");
                copy = malloc(len);
                fuzz_check(copy != NULL, "malloc");
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

#define SEED_MAX 4096

static void seed_frame(FuzzSeed *s, const void *payload, size_t n) {
        uint8_t *nb = realloc(s->data, s->size + WORKER_FRAME_HEADER + n);

        fuzz_check(nb != NULL, "realloc");
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

static size_t build_seeds(FuzzSeed *seeds, size_t max) {
        static const uint8_t pyc[] = "\xa7\x0d\x0d\x0a\0\0\0\0\x10\x20\x30\x40\x05\0\0\0\xe3\0\0\0\0";
        uint8_t b[SEED_MAX];
        size_t n = 0;

        fuzz_check(max >= 7, "seed room");
        seeds[n] = (FuzzSeed){ .name = "hello-cpython" };
        seed_frame(&seeds[n++], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));

        seeds[n] = (FuzzSeed){ .name = "hello-pypy" };
        seed_frame(&seeds[n++], b, hello(b, "\x50\x0d\x0d\x0a", "pypy39", "3.9.16", "pypy"));

        seeds[n] = (FuzzSeed){ .name = "compiled" };
        seed_frame(&seeds[n], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));
        seed_frame(&seeds[n++], b, reply_ok(b, pyc, sizeof(pyc) - 1));

        seeds[n] = (FuzzSeed){ .name = "syntax-error" };
        seed_frame(&seeds[n], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));
        seed_frame(&seeds[n++], b, reply_error(b, 3, "SyntaxError", "invalid syntax"));

        seeds[n] = (FuzzSeed){ .name = "several" };
        seed_frame(&seeds[n], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));
        seed_frame(&seeds[n], b,
                   reply_error(b, 0, "ValueError", "source code string cannot contain null bytes"));
        seed_frame(&seeds[n], b, reply_ok(b, pyc, sizeof(pyc) - 1));
        seed_frame(&seeds[n++], b, reply_error(b, 0xffffffffu, "UnicodeDecodeError", "line\nbreak \xff"));

        /* An error with py_compile's text after a second NUL (TAG_ERROR_DETAIL). */
        seeds[n] = (FuzzSeed){ .name = "reply-error-detail" };
        seed_frame(&seeds[n], b, hello(b, "\xa7\x0d\x0d\x0a", "cpython-311", "3.11.2", "cpython"));
        {
                size_t k = reply_error(b, 1, "SyntaxError", "invalid syntax");
                b[k++] = 0;
                k += (size_t)sprintf((char *)b + k, "  File \"x.py\", line 1\n    x = = 1\n        ^\n"
                                                    "SyntaxError: invalid syntax\n");
                seed_frame(&seeds[n++], b, k);
        }

        seeds[n] = (FuzzSeed){ .name = "reply-before-hello" };
        seed_frame(&seeds[n++], b, reply_ok(b, pyc, sizeof(pyc) - 1));
        return n;
}

/* What the generic mutations do not know: the bytes that separate, tag and
 * flag, names grown past their bound, the job id, and lengths at the
 * parser's bounds. */
static void mutate(uint8_t *buf, size_t *size, size_t capacity) {
        static const uint8_t bytes[] = { 0, '/', '\r', '\n', 'H', 'R', 1, 2, 0x7f, 0x80, 0xff };
        static const uint32_t bounds[] = { 13, 14, 0x101, FUZZ_MAX_PAYLOAD, FUZZ_MAX_PAYLOAD + 1 };
        size_t s = *size, pos, len;

        switch (fuzz_rng_below(4)) {
        case 0: /* an interesting byte: a separator, a type, a status */
                if (s > 0)
                        buf[fuzz_rng_below(s)] = bytes[fuzz_rng_below(ELEMENTSOF(bytes))];
                break;
        case 1: /* insert a run of one byte, e.g. to grow a name past its bound */
                len = fuzz_rng_below(300) + 1;
                len = MIN(len, capacity - s);
                pos = fuzz_rng_below(s + 1);
                memmove(buf + pos + len, buf + pos, s - pos);
                memset(buf + pos, fuzz_rng_below(2) ? 'x' : (int)fuzz_rng_next(), len);
                *size = s + len;
                break;
        case 2: /* change the job id of a first frame that is a reply */
                if (s >= 13 && buf[4] == 'R')
                        unaligned_write_le64(buf + 5, fuzz_rng_next());
                break;
        case 3: /* a length or a line at a bound */
                if (s >= 4)
                        unaligned_write_le32(buf + fuzz_rng_below(s - 3),
                                             bounds[fuzz_rng_below(ELEMENTSOF(bounds))]);
                break;
        }
}

int main(int argc, char *argv[]) {
        static const FuzzTarget target = {
                .name = "fuzz-worker-reply",
                .corpus = "tests/fuzz/corpus-worker-reply",
                .mutations = 20000,
                .build_seeds = build_seeds,
                .frames = true,
                .mutate = mutate,
        };

        return fuzz_main(&target, argc, argv);
}

#endif /* FUZZ_LIBFUZZER */
