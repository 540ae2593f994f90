/* SPDX-License-Identifier: MIT */
/* Unit tests of the client protocol codec (common/protocol.c).
 *
 * Every field kind is written and read back; then the reader is attacked with
 * every truncation of a valid frame, every bad length, a wrong version and
 * fields that overrun their frame, and the writer with frames over
 * PROTOCOL_MAX_FRAME. The codec must reject each with a negative errno and
 * never read outside the buffer (run under ASan to check the latter). */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "protocol.h"
#include "util.h"

typedef struct Frame {
        uint8_t *data;
        size_t size;
} Frame;

static void frame_freep(Frame *f) {
        free(f->data);
        f->data = NULL;
}
#define _cleanup_frame_ _cleanup_(frame_freep)

static const uint8_t odd_bytes[] = { 'a', '\0', 'b', '\n', 0xff, 0xfe, 0x80, 0xc3, 0x28, '\0' };

/* A frame with one field of every kind, used by the attacks below. */
static Frame build_sample(void) {
        MsgWriter w;
        Frame f = { 0 };

        assert_int_equal(msg_writer_init(&w, MSG_COMPILE), 0);
        assert_int_equal(msg_put_string(&w, TAG_CTX_TOOL, "pycqueue"), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_PATH, odd_bytes, sizeof(odd_bytes)), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_PATH, "", 0), 0);
        assert_int_equal(msg_put_u64(&w, TAG_OPT_LEVEL, 2), 0);
        assert_int_equal(msg_put_stat(&w, "workers.0.count", 'n', "4"), 0);
        assert_int_equal(msg_writer_finish(&w, &f.data, &f.size), 0);
        return f;
}

/* Offsets at which a field of build_sample() starts, plus the end. */
static size_t sample_boundaries(const Frame *f, size_t *ret, size_t max) {
        size_t n = 0, pos = PROTOCOL_HEADER_SIZE;

        while (pos < f->size) {
                assert_true(n < max);
                ret[n++] = pos;
                pos += PROTOCOL_FIELD_HEADER_SIZE + unaligned_read_le32(f->data + pos + 2);
        }
        assert_int_equal(pos, f->size);
        assert_true(n < max);
        ret[n++] = pos;
        return n;
}

static void expect_field(MsgReader *r, uint16_t tag, const void *data, size_t size) {
        MsgField field;

        assert_int_equal(msg_next(r, &field), 1);
        assert_int_equal(field.tag, tag);
        assert_int_equal(field.size, size);
        if (size > 0)
                assert_memory_equal(field.data, data, size);
}

static void test_header_layout(void **state) {
        _cleanup_frame_ Frame f = { 0 };
        MsgWriter w;
        MsgReader r;
        MsgField field;
        static const uint8_t expected[] = { 4, 0, 0, 0, PROTOCOL_VERSION, 0, MSG_STATUS, 0 };

        assert_int_equal(msg_writer_init(&w, MSG_STATUS), 0);
        assert_int_equal(msg_writer_finish(&w, &f.data, &f.size), 0);
        assert_null(w.buf);
        assert_int_equal(f.size, PROTOCOL_HEADER_SIZE);
        assert_memory_equal(f.data, expected, sizeof(expected));

        assert_int_equal(frame_size(f.data, f.size), PROTOCOL_HEADER_SIZE);
        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
        assert_int_equal(r.type, MSG_STATUS);
        assert_int_equal(msg_next(&r, &field), 0);
        assert_int_equal(msg_next(&r, &field), 0);
}

static void test_roundtrip_bytes(void **state) {
        _cleanup_frame_ Frame f = { 0 };
        MsgWriter w;
        MsgReader r;
        MsgField field;
        uint8_t every_byte[256];

        for (size_t i = 0; i < sizeof(every_byte); i++)
                every_byte[i] = (uint8_t)i;

        assert_int_equal(msg_writer_init(&w, MSG_RESULT), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_RESULT_SOURCE, odd_bytes, sizeof(odd_bytes)), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_RESULT_TARGET, "", 0), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_PATH, every_byte, sizeof(every_byte)), 0);
        assert_int_equal(msg_put_bytes(&w, 0xffff, "\n", 1), 0);
        assert_int_equal(msg_writer_finish(&w, &f.data, &f.size), 0);
        assert_int_equal(f.size, PROTOCOL_HEADER_SIZE + 4 * PROTOCOL_FIELD_HEADER_SIZE + sizeof(odd_bytes) +
                                         sizeof(every_byte) + 1);

        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
        assert_int_equal(r.type, MSG_RESULT);
        expect_field(&r, TAG_RESULT_SOURCE, odd_bytes, sizeof(odd_bytes));
        expect_field(&r, TAG_RESULT_TARGET, NULL, 0);
        expect_field(&r, TAG_PATH, every_byte, sizeof(every_byte));
        expect_field(&r, 0xffff, "\n", 1); /* unknown tags are carried, not rejected */
        assert_int_equal(msg_next(&r, &field), 0);
}

static void test_roundtrip_u64(void **state) {
        static const uint64_t values[] = {
                0,         1,         255, 256, UINT32_MAX, (uint64_t)UINT32_MAX + 1, 0x0102030405060708ull,
                INT64_MAX, UINT64_MAX
        };
        static const uint8_t le[8] = { 8, 7, 6, 5, 4, 3, 2, 1 };
        _cleanup_frame_ Frame f = { 0 };
        MsgWriter w;
        MsgReader r;
        MsgField field;

        assert_int_equal(msg_writer_init(&w, MSG_DONE), 0);
        for (size_t i = 0; i < ELEMENTSOF(values); i++)
                assert_int_equal(msg_put_u64(&w, TAG_COUNT_TOTAL, values[i]), 0);
        assert_int_equal(msg_writer_finish(&w, &f.data, &f.size), 0);

        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                uint64_t v = 12345;

                assert_int_equal(msg_next(&r, &field), 1);
                assert_int_equal(field.tag, TAG_COUNT_TOTAL);
                assert_int_equal(field.size, 8);
                assert_int_equal(field_u64(&field, &v), 0);
                assert_true(v == values[i]);
                if (values[i] == 0x0102030405060708ull)
                        assert_memory_equal(field.data, le, 8); /* little endian on the wire */
        }
        assert_int_equal(msg_next(&r, &field), 0);
}

static void test_roundtrip_string(void **state) {
        static const char *const strings[] = { "",
                                               "pycqueue",
                                               "line\nbreak",
                                               "caf\xc3\xa9",
                                               "\xff\xfe not UTF-8",
                                               "/usr/lib/python3/dist-packages" };
        _cleanup_frame_ Frame f = { 0 };
        MsgWriter w;
        MsgReader r;
        MsgField field;

        assert_int_equal(msg_writer_init(&w, MSG_COMPILE), 0);
        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                assert_int_equal(msg_put_string(&w, TAG_CTX_ARGV, strings[i]), 0);
        assert_int_equal(msg_writer_finish(&w, &f.data, &f.size), 0);

        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                _cleanup_free_ char *s = NULL;

                assert_int_equal(msg_next(&r, &field), 1);
                assert_int_equal(field.tag, TAG_CTX_ARGV);
                assert_int_equal(field.size, strlen(strings[i])); /* no NUL on the wire */
                assert_int_equal(field_strdup(&field, &s), 0);
                assert_string_equal(s, strings[i]);
        }
        assert_int_equal(msg_next(&r, &field), 0);
}

static void test_roundtrip_stat(void **state) {
        static const struct {
                const char *key;
                char kind;
                const char *value;
        } stats[] = {
                { "pid", 'n', "1234" },
                { "version", 's', "0.1.0" },
                { "workers.0.interpreter", 's', "/usr/bin/python3.11" },
                { "workers.0.magic", 's', "a70d0d0a" },
                { "database.path", 's', "" },
                { "recent_errors.3.message", 's', "bad\nline \xff" },
                { "running", 'b', "true" },
        };
        _cleanup_frame_ Frame f = { 0 };
        MsgWriter w;
        MsgReader r;
        MsgField field;

        assert_int_equal(msg_writer_init(&w, MSG_STATUS_REPLY), 0);
        for (size_t i = 0; i < ELEMENTSOF(stats); i++)
                assert_int_equal(msg_put_stat(&w, stats[i].key, stats[i].kind, stats[i].value), 0);
        assert_int_equal(msg_writer_finish(&w, &f.data, &f.size), 0);

        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
        assert_int_equal(r.type, MSG_STATUS_REPLY);
        for (size_t i = 0; i < ELEMENTSOF(stats); i++) {
                const char *key;
                char kind;
                const uint8_t *value;
                size_t value_size;

                assert_int_equal(msg_next(&r, &field), 1);
                assert_int_equal(field.tag, TAG_STAT);
                assert_int_equal(field_stat(&field, &key, &kind, &value, &value_size), 0);
                assert_string_equal(key, stats[i].key);
                assert_int_equal(kind, stats[i].kind);
                assert_int_equal(value_size, strlen(stats[i].value));
                if (value_size > 0)
                        assert_memory_equal(value, stats[i].value, value_size);
        }
        assert_int_equal(msg_next(&r, &field), 0);
}

static void test_enum_names(void **state) {
        for (int m = 0; m < _INVALIDATION_MAX; m++)
                assert_int_equal(invalidation_mode_from_string(invalidation_mode_to_string(m)), m);
        assert_string_equal(invalidation_mode_to_string(INVALIDATION_CHECKED_HASH), "checked-hash");
        assert_null(invalidation_mode_to_string(_INVALIDATION_MAX));
        assert_int_equal(invalidation_mode_from_string("hash"), -EINVAL);
        assert_int_equal(invalidation_mode_from_string(""), -EINVAL);

        assert_string_equal(outcome_to_string(OUTCOME_UP_TO_DATE), "up to date");
        assert_string_equal(outcome_to_string(OUTCOME_FAILED), "failed");
        assert_null(outcome_to_string(_OUTCOME_MAX));
}

static void test_frame_size_partial_header(void **state) {
        _cleanup_frame_ Frame f = build_sample();

        assert_int_equal(frame_size(NULL, 0), 0);
        for (size_t have = 0; have < 4; have++)
                assert_int_equal(frame_size(f.data, have), 0);
        /* From four bytes on, the size is known however much of the rest is there. */
        for (size_t have = 4; have <= f.size; have++)
                assert_int_equal(frame_size(f.data, have), (int64_t)f.size);
}

/* A prefix of a valid frame, length field untouched: the frame is incomplete. */
static void test_parse_rejects_every_truncation(void **state) {
        _cleanup_frame_ Frame f = build_sample();
        MsgReader r;

        for (size_t len = 0; len < f.size; len++) {
                _cleanup_free_ uint8_t *copy = malloc(len ? len : 1);

                assert_non_null(copy);
                memcpy(copy, f.data, len); /* an exact-size copy, so ASan sees overreads */
                assert_true(msg_parse(copy, len, &r) < 0);
        }
        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
}

/* A prefix whose length field was rewritten to match: the header is consistent,
 * so the cut must be caught by the field walk unless it falls on a field
 * boundary, where the frame is valid with fewer fields. */
static void test_parse_rejects_truncated_fields(void **state) {
        _cleanup_frame_ Frame f = build_sample();
        size_t boundaries[16], n;

        n = sample_boundaries(&f, boundaries, ELEMENTSOF(boundaries));
        for (size_t len = PROTOCOL_HEADER_SIZE; len <= f.size; len++) {
                _cleanup_free_ uint8_t *copy = malloc(len);
                bool at_boundary = false;
                size_t fields = 0;
                MsgReader r;
                MsgField field;

                assert_non_null(copy);
                memcpy(copy, f.data, len);
                unaligned_write_le32(copy, (uint32_t)(len - 4));
                for (size_t i = 0; i < n; i++)
                        if (boundaries[i] == len) {
                                at_boundary = true;
                                fields = i;
                        }
                if (!at_boundary) {
                        assert_int_equal(msg_parse(copy, len, &r), -EBADMSG);
                        continue;
                }
                assert_int_equal(msg_parse(copy, len, &r), 0);
                for (size_t i = 0; i < fields; i++)
                        assert_int_equal(msg_next(&r, &field), 1);
                assert_int_equal(msg_next(&r, &field), 0);
        }
}

static void test_parse_rejects_trailing_bytes(void **state) {
        _cleanup_frame_ Frame f = build_sample();
        _cleanup_free_ uint8_t *longer = malloc(f.size + 7);
        MsgReader r;

        assert_non_null(longer);
        memcpy(longer, f.data, f.size);
        memset(longer + f.size, 0, 7);
        /* The declared length is what counts: extra bytes belong to the next frame. */
        for (size_t extra = 1; extra <= 7; extra++)
                assert_int_equal(msg_parse(longer, f.size + extra, &r), -EBADMSG);
        assert_int_equal(frame_size(longer, f.size + 7), (int64_t)f.size);
}

static void test_parse_rejects_bad_lengths(void **state) {
        uint8_t frame[64] = { 0 };
        MsgReader r;

        unaligned_write_le16(frame + 4, PROTOCOL_VERSION);
        unaligned_write_le16(frame + 6, MSG_STATUS);

        /* Undersized: less than version + type after the length. */
        for (uint32_t len = 0; len < PROTOCOL_HEADER_SIZE - 4; len++) {
                unaligned_write_le32(frame, len);
                assert_int_equal(frame_size(frame, sizeof(frame)), -EBADMSG);
                assert_int_equal(msg_parse(frame, len + 4, &r), -EBADMSG);
                assert_int_equal(msg_parse(frame, PROTOCOL_HEADER_SIZE, &r), -EBADMSG);
        }

        /* Oversized: anything that makes the frame exceed PROTOCOL_MAX_FRAME. */
        static const uint32_t big[] = { PROTOCOL_MAX_FRAME - 3, PROTOCOL_MAX_FRAME,
                                        PROTOCOL_MAX_FRAME + 1, INT32_MAX,
                                        UINT32_MAX - 4,         UINT32_MAX };
        for (size_t i = 0; i < ELEMENTSOF(big); i++) {
                unaligned_write_le32(frame, big[i]);
                assert_int_equal(frame_size(frame, 4), -EMSGSIZE);
                assert_int_equal(frame_size(frame, sizeof(frame)), -EMSGSIZE);
                assert_int_equal(msg_parse(frame, sizeof(frame), &r), -EMSGSIZE);
        }

        /* The largest allowed length is accepted by frame_size(). */
        unaligned_write_le32(frame, PROTOCOL_MAX_FRAME - 4);
        assert_int_equal(frame_size(frame, 4), (int64_t)PROTOCOL_MAX_FRAME);

        /* A length that disagrees with the buffer either way. */
        unaligned_write_le32(frame, 10);
        assert_int_equal(msg_parse(frame, 13, &r), -EBADMSG);
        assert_int_equal(msg_parse(frame, 15, &r), -EBADMSG);
}

static void test_parse_rejects_wrong_version(void **state) {
        static const uint16_t versions[] = { 0, PROTOCOL_VERSION + 1, 0x0100, 0xffff };
        _cleanup_frame_ Frame f = build_sample();
        MsgReader r;

        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                unaligned_write_le16(f.data + 4, versions[i]);
                assert_int_equal(msg_parse(f.data, f.size, &r), -EPROTONOSUPPORT);
        }
        unaligned_write_le16(f.data + 4, PROTOCOL_VERSION);
        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
}

static void test_parse_rejects_field_overrun(void **state) {
        _cleanup_frame_ Frame f = build_sample();
        size_t boundaries[16], n;
        MsgReader r;

        n = sample_boundaries(&f, boundaries, ELEMENTSOF(boundaries));
        /* Grow each field's declared size past the end of the frame, by one byte
         * and by the most a u32 can say; growing it to end exactly at the frame
         * end is valid and swallows the fields after it. */
        for (size_t i = 0; i + 1 < n; i++) {
                size_t pos = boundaries[i];
                uint32_t orig = unaligned_read_le32(f.data + pos + 2);
                uint32_t to_end = (uint32_t)(f.size - pos - PROTOCOL_FIELD_HEADER_SIZE);
                const uint32_t sizes[] = { to_end + 1,
                                           to_end + 2,
                                           to_end + 4096,
                                           INT32_MAX,
                                           UINT32_MAX - PROTOCOL_FIELD_HEADER_SIZE,
                                           UINT32_MAX };
                MsgField field;

                for (size_t j = 0; j < ELEMENTSOF(sizes); j++) {
                        unaligned_write_le32(f.data + pos + 2, sizes[j]);
                        assert_int_equal(msg_parse(f.data, f.size, &r), -EBADMSG);
                }

                unaligned_write_le32(f.data + pos + 2, to_end);
                assert_int_equal(msg_parse(f.data, f.size, &r), 0);
                for (size_t j = 0; j <= i; j++)
                        assert_int_equal(msg_next(&r, &field), 1);
                assert_int_equal(field.size, to_end);
                assert_int_equal(msg_next(&r, &field), 0);

                unaligned_write_le32(f.data + pos + 2, orig);
        }
        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
}

static void test_parse_rejects_partial_field_header(void **state) {
        /* A frame whose only "field" is 1..5 bytes: not even a field header. */
        for (size_t extra = 1; extra < PROTOCOL_FIELD_HEADER_SIZE; extra++) {
                uint8_t frame[PROTOCOL_HEADER_SIZE + PROTOCOL_FIELD_HEADER_SIZE] = { 0 };
                MsgReader r;

                unaligned_write_le32(frame, (uint32_t)(PROTOCOL_HEADER_SIZE - 4 + extra));
                unaligned_write_le16(frame + 4, PROTOCOL_VERSION);
                unaligned_write_le16(frame + 6, MSG_COMPILE);
                assert_int_equal(msg_parse(frame, PROTOCOL_HEADER_SIZE + extra, &r), -EBADMSG);
        }
}

static void test_writer_rejects_oversized(void **state) {
        const size_t payload_max = PROTOCOL_MAX_FRAME - PROTOCOL_HEADER_SIZE - PROTOCOL_FIELD_HEADER_SIZE;
        _cleanup_free_ uint8_t *big = calloc(1, PROTOCOL_MAX_FRAME + 1);
        _cleanup_frame_ Frame f = { 0 };
        MsgWriter w;
        MsgReader r;
        MsgField field;
        uint8_t *out = NULL;
        size_t out_size = 0;

        assert_non_null(big);

        /* A field too large on its own. */
        assert_int_equal(msg_writer_init(&w, MSG_COMPILE), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_PATH, big, PROTOCOL_MAX_FRAME + 1), -EMSGSIZE);
        assert_int_equal(msg_put_u64(&w, TAG_FORCE, 1), -EMSGSIZE); /* the writer stays failed */
        assert_int_equal(msg_writer_finish(&w, &out, &out_size), -EMSGSIZE);
        assert_null(out);
        assert_null(w.buf);

        /* One byte over the frame limit. */
        assert_int_equal(msg_writer_init(&w, MSG_COMPILE), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_PATH, big, payload_max + 1), -EMSGSIZE);
        assert_int_equal(msg_writer_finish(&w, &out, &out_size), -EMSGSIZE);
        assert_null(out);

        /* Many small fields adding up to more than the limit. */
        assert_int_equal(msg_writer_init(&w, MSG_COMPILE), 0);
        for (size_t total = PROTOCOL_HEADER_SIZE;; total += PROTOCOL_FIELD_HEADER_SIZE + 4096) {
                int r2 = msg_put_bytes(&w, TAG_PATH, big, 4096);
                if (total + PROTOCOL_FIELD_HEADER_SIZE + 4096 > PROTOCOL_MAX_FRAME) {
                        assert_int_equal(r2, -EMSGSIZE);
                        break;
                }
                assert_int_equal(r2, 0);
        }
        assert_int_equal(msg_writer_finish(&w, &out, &out_size), -EMSGSIZE);
        assert_null(out);

        /* A stat whose key alone is too large. */
        memset(big, 'k', PROTOCOL_MAX_FRAME);
        big[PROTOCOL_MAX_FRAME] = '\0';
        assert_int_equal(msg_writer_init(&w, MSG_STATUS_REPLY), 0);
        assert_int_equal(msg_put_stat(&w, (const char *)big, 's', ""), -EMSGSIZE);
        assert_int_equal(msg_writer_finish(&w, &out, &out_size), -EMSGSIZE);
        memset(big, 0, PROTOCOL_MAX_FRAME + 1);

        /* Exactly at the limit: accepted, and parsed back. */
        assert_int_equal(msg_writer_init(&w, MSG_COMPILE), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_PATH, big, payload_max), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_PATH, NULL, 0),
                         -EMSGSIZE); /* even an empty field is 6 bytes */
        msg_writer_done(&w);
        assert_null(w.buf);

        assert_int_equal(msg_writer_init(&w, MSG_COMPILE), 0);
        assert_int_equal(msg_put_bytes(&w, TAG_PATH, big, payload_max), 0);
        assert_int_equal(msg_writer_finish(&w, &f.data, &f.size), 0);
        assert_int_equal(f.size, PROTOCOL_MAX_FRAME);
        assert_int_equal(frame_size(f.data, 4), (int64_t)PROTOCOL_MAX_FRAME);
        assert_int_equal(msg_parse(f.data, f.size, &r), 0);
        assert_int_equal(msg_next(&r, &field), 1);
        assert_int_equal(field.size, payload_max);
        assert_int_equal(msg_next(&r, &field), 0);
}

static void test_writer_finish_empty(void **state) {
        MsgWriter w = MSG_WRITER_NULL;
        uint8_t *out = NULL;
        size_t out_size = 0;

        assert_int_equal(msg_writer_finish(&w, &out, &out_size), -EINVAL);
        assert_null(out);
        msg_writer_done(&w); /* harmless on an empty writer */
        msg_writer_done(&w);
}

static void test_field_u64_size_check(void **state) {
        static const uint8_t b[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        static const uint32_t bad_sizes[] = { 0, 1, 4, 7, 9, 16 };
        uint64_t v;

        for (size_t i = 0; i < ELEMENTSOF(bad_sizes); i++) {
                MsgField field = { .tag = TAG_COUNT_DONE, .data = b, .size = bad_sizes[i] };

                v = 42;
                assert_int_equal(field_u64(&field, &v), -EBADMSG);
                assert_true(v == 42); /* untouched on failure */
        }

        MsgField field = { .tag = TAG_COUNT_DONE, .data = b, .size = 8 };
        assert_int_equal(field_u64(&field, &v), 0);
        assert_true(v == 0x0807060504030201ull);
}

static void test_field_strdup(void **state) {
        static const struct {
                const char *data;
                uint32_t size;
        } bad[] = { { "\0", 1 }, { "a\0b", 3 }, { "abc\0", 4 }, { "\0abc", 4 } };
        char *s;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                MsgField field = { .tag = TAG_PACKAGE,
                                   .data = (const uint8_t *)bad[i].data,
                                   .size = bad[i].size };

                s = (char *)"untouched";
                assert_int_equal(field_strdup(&field, &s), -EBADMSG);
                assert_string_equal(s, "untouched");
        }

        /* Only the declared size is copied, and the result is terminated. */
        MsgField field = { .tag = TAG_PACKAGE, .data = (const uint8_t *)"python3-foo trailing", .size = 11 };
        assert_int_equal(field_strdup(&field, &s), 0);
        assert_string_equal(s, "python3-foo");
        free(s);

        MsgField empty = { .tag = TAG_PACKAGE, .data = (const uint8_t *)"", .size = 0 };
        assert_int_equal(field_strdup(&empty, &s), 0);
        assert_string_equal(s, "");
        free(s);

        MsgField odd = { .tag = TAG_PATH, .data = (const uint8_t *)"\xff\n\x80", .size = 3 };
        assert_int_equal(field_strdup(&odd, &s), 0);
        assert_memory_equal(s, "\xff\n\x80", 4);
        free(s);
}

static void test_field_stat(void **state) {
        const char *key;
        char kind;
        const uint8_t *value;
        size_t value_size;

        /* Valid: empty value, value holding a NUL (its size is what counts). */
        MsgField empty_value = { .tag = TAG_STAT, .data = (const uint8_t *)"k\0s", .size = 3 };
        assert_int_equal(field_stat(&empty_value, &key, &kind, &value, &value_size), 0);
        assert_string_equal(key, "k");
        assert_int_equal(kind, 's');
        assert_int_equal(value_size, 0);

        MsgField nul_value = { .tag = TAG_STAT, .data = (const uint8_t *)"a.b\0sx\0y", .size = 8 };
        assert_int_equal(field_stat(&nul_value, &key, &kind, &value, &value_size), 0);
        assert_string_equal(key, "a.b");
        assert_int_equal(value_size, 3);
        assert_memory_equal(value, "x\0y", 3);

        MsgField boolean = { .tag = TAG_STAT, .data = (const uint8_t *)"up\0bfalse", .size = 9 };
        assert_int_equal(field_stat(&boolean, &key, &kind, &value, &value_size), 0);
        assert_int_equal(kind, 'b');
        assert_memory_equal(value, "false", 5);

        static const struct {
                uint16_t tag;
                const char *data;
                uint32_t size;
        } bad[] = {
                { TAG_PATH, "k\0s1", 4 },   /* not a TAG_STAT field */
                { TAG_STAT, "", 0 },        /* empty */
                { TAG_STAT, "key", 3 },     /* no NUL after the key */
                { TAG_STAT, "\0s1", 3 },    /* empty key */
                { TAG_STAT, "key\0", 4 },   /* no kind */
                { TAG_STAT, "key\0x1", 6 }, /* unknown kind */
                { TAG_STAT, "key\0\0", 5 }, /* NUL kind */
                { TAG_STAT, "key\0S1", 6 }, /* kinds are lower case */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                MsgField field = { .tag = bad[i].tag,
                                   .data = (const uint8_t *)bad[i].data,
                                   .size = bad[i].size };

                kind = '?';
                value_size = 777;
                assert_int_equal(field_stat(&field, &key, &kind, &value, &value_size), -EBADMSG);
                assert_int_equal(kind, '?');
                assert_int_equal(value_size, 777);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header_layout),
                cmocka_unit_test(test_roundtrip_bytes),
                cmocka_unit_test(test_roundtrip_u64),
                cmocka_unit_test(test_roundtrip_string),
                cmocka_unit_test(test_roundtrip_stat),
                cmocka_unit_test(test_enum_names),
                cmocka_unit_test(test_frame_size_partial_header),
                cmocka_unit_test(test_parse_rejects_every_truncation),
                cmocka_unit_test(test_parse_rejects_truncated_fields),
                cmocka_unit_test(test_parse_rejects_trailing_bytes),
                cmocka_unit_test(test_parse_rejects_bad_lengths),
                cmocka_unit_test(test_parse_rejects_wrong_version),
                cmocka_unit_test(test_parse_rejects_field_overrun),
                cmocka_unit_test(test_parse_rejects_partial_field_header),
                cmocka_unit_test(test_writer_rejects_oversized),
                cmocka_unit_test(test_writer_finish_empty),
                cmocka_unit_test(test_field_u64_size_check),
                cmocka_unit_test(test_field_strdup),
                cmocka_unit_test(test_field_stat),
        };

        return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
