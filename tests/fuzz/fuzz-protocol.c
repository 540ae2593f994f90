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
 * Built by `make check` it replays tests/fuzz/corpus-protocol and 20,000
 * mutations of valid frames it builds itself (see driver.h); `fuzz-protocol
 * --write-corpus DIR` writes those frames as the seed corpus. As a libFuzzer
 * target:
 *
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER \
 *           -D_GNU_SOURCE -Icommon tests/fuzz/fuzz-protocol.c \
 *           common/protocol.c common/util.c -o fuzz-protocol-libfuzzer
 *     cp -r tests/fuzz/corpus-protocol /tmp/corpus
 *     ./fuzz-protocol-libfuzzer -max_total_time=60 /tmp/corpus
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "macro.h"
#include "protocol.h"
#include "util.h"

/* A field re-encoded alone must equal the bytes it was read from. */
static void check_field_reencodes(const MsgField *f, int (*put)(MsgWriter *w, const MsgField *f)) {
        MsgWriter w;
        uint8_t *out = NULL;
        size_t out_size = 0;

        fuzz_check(msg_writer_init(&w, 0) == 0, "msg_writer_init");
        fuzz_check(put(&w, f) == 0, "re-encoding a field");
        fuzz_check(msg_writer_finish(&w, &out, &out_size) == 0, "msg_writer_finish of one field");
        fuzz_check(out_size == PROTOCOL_HEADER_SIZE + PROTOCOL_FIELD_HEADER_SIZE + f->size,
                   "re-encoded field size");
        fuzz_check(unaligned_read_le16(out + PROTOCOL_HEADER_SIZE) == f->tag, "re-encoded field tag");
        fuzz_check(unaligned_read_le32(out + PROTOCOL_HEADER_SIZE + 2) == f->size,
                   "re-encoded field length");
        fuzz_check(f->size == 0 || memcmp(out + PROTOCOL_HEADER_SIZE + PROTOCOL_FIELD_HEADER_SIZE, f->data,
                                          f->size) == 0,
                   "re-encoded field bytes");
        free(out);
}

static int put_as_u64(MsgWriter *w, const MsgField *f) {
        uint64_t v;

        fuzz_check(field_u64(f, &v) == 0, "field_u64 of a size-8 field");
        return msg_put_u64(w, f->tag, v);
}

static int put_as_string(MsgWriter *w, const MsgField *f) {
        _cleanup_free_ char *s = NULL;

        fuzz_check(field_strdup(f, &s) == 0, "field_strdup of a NUL-free field");
        return msg_put_string(w, f->tag, s);
}

static int put_as_stat(MsgWriter *w, const MsgField *f) {
        _cleanup_free_ char *value = NULL;
        const char *key;
        const uint8_t *v;
        size_t vsize;
        char kind;

        fuzz_check(field_stat(f, &key, &kind, &v, &vsize) == 0, "field_stat of a valid stat");
        value = strndup((const char *)v, vsize);
        fuzz_check(value != NULL, "strndup");
        return msg_put_stat(w, key, kind, value);
}

static void fuzz_field(const uint8_t *frame, size_t size, const MsgField *f) {
        const uint8_t *key = NULL, *value = NULL;
        size_t value_size = 0;
        char *s = NULL, kind = 0;
        uint64_t u = 0;
        int r;

        fuzz_check(f->data >= frame + PROTOCOL_HEADER_SIZE + PROTOCOL_FIELD_HEADER_SIZE,
                   "field starts inside frame");
        fuzz_check(f->size <= size && f->data + f->size <= frame + size, "field ends inside frame");

        r = field_u64(f, &u);
        fuzz_check(r == (f->size == 8 ? 0 : -EBADMSG), "field_u64 accepts exactly size 8");
        if (r == 0)
                check_field_reencodes(f, put_as_u64);

        r = field_strdup(f, &s);
        fuzz_check(r == 0 || r == -EBADMSG, "field_strdup errno");
        fuzz_check((r == 0) == (f->size == 0 || !memchr(f->data, 0, f->size)),
                   "field_strdup rejects exactly NULs");
        if (r == 0) {
                fuzz_check(strlen(s) == f->size && memcmp(s, f->data, f->size) == 0, "field_strdup copy");
                free(s);
                check_field_reencodes(f, put_as_string);
        }

        r = field_stat(f, (const char **)&key, &kind, &value, &value_size);
        fuzz_check(r == 0 || r == -EBADMSG, "field_stat errno");
        if (r == 0) {
                size_t kl = strlen((const char *)key);

                fuzz_check(f->tag == TAG_STAT, "field_stat only on TAG_STAT");
                fuzz_check(key == f->data && kl > 0 && kl + 2 <= f->size, "field_stat key bounds");
                fuzz_check(kind == 'n' || kind == 's' || kind == 'b', "field_stat kind");
                fuzz_check(value == f->data + kl + 2 && value + value_size == f->data + f->size,
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
                fuzz_check(r == -EBADMSG || r == -EMSGSIZE || r == -EPROTONOSUPPORT, "msg_parse errno");
                fuzz_rejected++;
                return;
        }
        fuzz_accepted++;
        fuzz_check(frame_size(frame, size) == (int64_t)size, "frame_size agrees with msg_parse");
        fuzz_check(size >= PROTOCOL_HEADER_SIZE && size <= PROTOCOL_MAX_FRAME, "valid frame size");
        fuzz_check(reader.type == unaligned_read_le16(frame + 6), "message type");

        fuzz_check(msg_writer_init(&w, reader.type) == 0, "msg_writer_init");
        while ((r = msg_next(&reader, &field)) == 1) {
                fuzz_field(frame, size, &field);
                fuzz_check(msg_put_bytes(&w, field.tag, field.data, field.size) == 0, "msg_put_bytes");
                fields++;
                fuzz_check(fields <= size / PROTOCOL_FIELD_HEADER_SIZE, "field count bounded by frame size");
        }
        fuzz_check(r == 0, "msg_next ends with 0");
        fuzz_check(msg_next(&reader, &field) == 0, "msg_next stays at the end");

        fuzz_check(msg_writer_finish(&w, &out, &out_size) == 0, "msg_writer_finish");
        fuzz_check(out_size == size && memcmp(out, frame, size) == 0, "re-encoded frame equals the input");
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
                        fuzz_check(n == 0, "frame_size needs four bytes");
                else
                        fuzz_check(n == whole, "frame_size depends on the length only");
        }
        fuzz_check(whole == 0 || whole == -EBADMSG || whole == -EMSGSIZE ||
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
                fuzz_check(copy != NULL, "malloc");
                memcpy(copy, data + off, (size_t)n);
                fuzz_frame(copy, (size_t)n);
                free(copy);
                off += (size_t)n;
        }
        return 0;
}

#ifndef FUZZ_LIBFUZZER

/* Builds the valid frames that seed both the mutations and the corpus. */
static size_t build_seeds(FuzzSeed *seeds, size_t max) {
        static const uint8_t odd_path[] = "/tmp/odd\nname\xff\xfe/\xc3\x28.py";
        MsgWriter w;
        size_t n = 0;

#define SEED_BEGIN(nm, type)                                                                                \
        (fuzz_check(n < max, "too many seeds"), seeds[n] = (FuzzSeed){ .name = (nm) },                      \
         msg_writer_init(&w, (type)))
#define SEED_END() fuzz_check(msg_writer_finish(&w, &seeds[n].data, &seeds[n].size) == 0, "seed frame"), n++

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

        SEED_BEGIN("compile-explicit", MSG_COMPILE);
        msg_put_string(&w, TAG_CTX_TOOL, "pycqueue.py_compile");
        msg_put_string(&w, TAG_PATH, "/tmp/x.py");
        msg_put_bytes(&w, TAG_PATH_TARGET, odd_path, sizeof(odd_path) - 1);
        msg_put_string(&w, TAG_PATH_DISPLAY, "x.py");
        msg_put_u64(&w, TAG_FORCE, 1);
        SEED_END();

        SEED_BEGIN("result-detail", MSG_RESULT);
        msg_put_string(&w, TAG_RESULT_SOURCE, "/tmp/x.py");
        msg_put_u64(&w, TAG_RESULT_OUTCOME, OUTCOME_FAILED);
        msg_put_string(&w, TAG_ERROR_TYPE, "SyntaxError");
        msg_put_u64(&w, TAG_ERROR_LINE, 1);
        msg_put_string(&w, TAG_ERROR_MESSAGE, "invalid syntax");
        msg_put_string(&w, TAG_ERROR_DETAIL, "  File \"x.py\", line 1\n    x = = 1\n        ^\nSyntaxError: invalid syntax\n");
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

/* The generic mutations do not know the frame bound: a length at it. */
static void mutate(uint8_t *buf, size_t *size, size_t capacity) {
        static const uint32_t lengths[] = { PROTOCOL_MAX_FRAME - 4, PROTOCOL_MAX_FRAME - 3,
                                            PROTOCOL_MAX_FRAME };

        (void)capacity;
        if (*size >= 4)
                unaligned_write_le32(buf + fuzz_rng_below(*size - 3),
                                     lengths[fuzz_rng_below(ELEMENTSOF(lengths))]);
}

int main(int argc, char *argv[]) {
        static const FuzzTarget target = {
                .name = "fuzz-protocol",
                .corpus = "tests/fuzz/corpus-protocol",
                .mutations = 20000,
                .build_seeds = build_seeds,
                .frames = true,
                .mutate = mutate,
        };

        return fuzz_main(&target, argc, argv);
}

#endif /* FUZZ_LIBFUZZER */
