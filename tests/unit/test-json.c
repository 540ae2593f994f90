/* SPDX-License-Identifier: MIT */
/* Unit tests of the JSON output helpers (common/json.c).
 *
 * Strings: every escape JSON requires, control characters and DEL, valid
 * UTF-8 of each length passed through, and each kind of invalid UTF-8
 * (stray continuation bytes, overlong forms, encoded surrogates, code points
 * above U+10FFFF, truncated sequences) written byte by byte as "\udcXX". The
 * expected outputs were checked with CPython: json.loads(output) encoded with
 * "surrogateescape" gives back the input bytes.
 *
 * The stat tree: dotted keys nest into objects, all-index objects become
 * arrays with null in gaps, and malformed or oversized input is refused with
 * the documented errno and leaves the tree as it was. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "macro.h"

/* Captures what @write_fn writes into a FILE. */
typedef struct Capture {
        char *buf;
        size_t size;
        FILE *f;
} Capture;

static void capture_begin(Capture *c) {
        c->buf = NULL;
        c->size = 0;
        c->f = open_memstream(&c->buf, &c->size);
        assert_non_null(c->f);
}

static char *capture_end(Capture *c) {
        assert_int_equal(fclose(c->f), 0);
        return c->buf;
}

static char *string_json(const void *data, size_t size) {
        Capture c;

        capture_begin(&c);
        assert_int_equal(json_write_string(c.f, data, size), 0);
        return capture_end(&c);
}

#define assert_string_json(data, expected)                                                                  \
        do {                                                                                                \
                _cleanup_free_ char *_out = string_json(data, sizeof(data) - 1);                            \
                assert_string_equal(_out, expected);                                                        \
        } while (0)

static char *tree_json(const JsonTree *t) {
        Capture c;

        capture_begin(&c);
        assert_int_equal(json_tree_write(t, c.f), 0);
        return capture_end(&c);
}

static void assert_tree_json(const JsonTree *t, const char *expected) {
        _cleanup_free_ char *out = tree_json(t);
        assert_string_equal(out, expected);
}

static void add(JsonTree *t, const char *key, char kind, const char *value) {
        int r = json_tree_add(t, key, kind, value, strlen(value));

        if (r != 0)
                fail_msg("json_tree_add(\"%s\", '%c', \"%s\") = %d", key, kind, value, r);
}

static void test_string_plain(void **state) {
        assert_string_json("", "\"\"");
        assert_string_json("hello world", "\"hello world\"");
        assert_string_json("/usr/lib/python3/x.py", "\"/usr/lib/python3/x.py\""); /* '/' needs no escape */
        assert_string_json("~!@#$%^&*()_+{}[]:;'<>,.?`", "\"~!@#$%^&*()_+{}[]:;'<>,.?`\"");
}

static void test_string_escapes(void **state) {
        assert_string_json("a\"b", "\"a\\\"b\"");
        assert_string_json("a\\b", "\"a\\\\b\"");
        assert_string_json("\"\\\"", "\"\\\"\\\\\\\"\"");
        assert_string_json("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
        assert_string_json("\x01\x02\x1b\x1f", "\"\\u0001\\u0002\\u001b\\u001f\"");
        assert_string_json("\x7f", "\"\\u007f\"");
        assert_string_json("a\0b", "\"a\\u0000b\""); /* size, not NUL, ends the string */
        assert_string_json("\x20", "\" \"");
}

static void test_string_valid_utf8(void **state) {
        assert_string_json("\xc3\xa9t\xc3\xa9", "\"\xc3\xa9t\xc3\xa9\""); /* é: 2 bytes */
        assert_string_json("\xc2\x80", "\"\xc2\x80\"");                   /* U+0080 */
        assert_string_json("\xdf\xbf", "\"\xdf\xbf\"");                   /* U+07FF */
        assert_string_json("\xe2\x82\xac", "\"\xe2\x82\xac\"");           /* €: 3 bytes */
        assert_string_json("\xe0\xa0\x80", "\"\xe0\xa0\x80\"");           /* U+0800 */
        assert_string_json("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");           /* U+D7FF */
        assert_string_json("\xee\x80\x80", "\"\xee\x80\x80\"");           /* U+E000 */
        assert_string_json("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");           /* U+FFFF */
        assert_string_json("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");   /* U+1F600: 4 bytes */
        assert_string_json("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\"");   /* U+10000 */
        assert_string_json("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");   /* U+10FFFF */
        assert_string_json("a\xc3\xa9\"\xe2\x82\xac\n", "\"a\xc3\xa9\\\"\xe2\x82\xac\\n\"");
}

static void test_string_invalid_utf8(void **state) {
        assert_string_json("\xff", "\"\\udcff\"");
        assert_string_json("\xfe\xff", "\"\\udcfe\\udcff\"");
        assert_string_json("a\xff"
                           "b",
                           "\"a\\udcffb\"");
        assert_string_json("\x80", "\"\\udc80\""); /* stray continuation */
        assert_string_json("\xbf\x80", "\"\\udcbf\\udc80\"");
        assert_string_json("\xc0\xaf", "\"\\udcc0\\udcaf\"");            /* overlong '/' */
        assert_string_json("\xc1\xbf", "\"\\udcc1\\udcbf\"");            /* overlong */
        assert_string_json("\xe0\x80\xaf", "\"\\udce0\\udc80\\udcaf\""); /* overlong 3-byte */
        assert_string_json("\xe0\x9f\xbf", "\"\\udce0\\udc9f\\udcbf\"");
        assert_string_json("\xed\xa0\x80", "\"\\udced\\udca0\\udc80\""); /* encoded surrogate U+D800 */
        assert_string_json("\xed\xbf\xbf", "\"\\udced\\udcbf\\udcbf\""); /* U+DFFF */
        assert_string_json("\xf0\x80\x80\xaf", "\"\\udcf0\\udc80\\udc80\\udcaf\""); /* overlong 4-byte */
        assert_string_json("\xf4\x90\x80\x80", "\"\\udcf4\\udc90\\udc80\\udc80\""); /* U+110000 */
        assert_string_json("\xf5\x80\x80\x80", "\"\\udcf5\\udc80\\udc80\\udc80\"");
        assert_string_json("\xf8\x88\x80\x80\x80", "\"\\udcf8\\udc88\\udc80\\udc80\\udc80\"");
        /* truncated sequences: at the end, and followed by ASCII */
        assert_string_json("\xc3", "\"\\udcc3\"");
        assert_string_json("\xe2\x82", "\"\\udce2\\udc82\"");
        assert_string_json("\xf0\x9f\x98", "\"\\udcf0\\udc9f\\udc98\"");
        assert_string_json("\xc3"
                           "A",
                           "\"\\udcc3A\"");
        assert_string_json("\xe2\x82"
                           "A",
                           "\"\\udce2\\udc82A\"");
        /* a bad byte does not swallow the valid sequence after it */
        assert_string_json("\xff\xc3\xa9", "\"\\udcff\xc3\xa9\"");
        assert_string_json("\xe2\xc3\xa9", "\"\\udce2\xc3\xa9\"");
        /* a path with a newline and Latin-1 bytes, as a filesystem may hold */
        assert_string_json("/srv/caf\xe9\n.py", "\"/srv/caf\\udce9\\n.py\"");
}

static void test_write_cstring(void **state) {
        Capture c;
        _cleanup_free_ char *out = NULL;

        capture_begin(&c);
        assert_int_equal(json_write_cstring(c.f, "x\"\xff"), 0);
        out = capture_end(&c);
        assert_string_equal(out, "\"x\\\"\\udcff\"");
}

static void test_is_number(void **state) {
        static const char *const good[] = { "0",    "-0",      "7",
                                            "12",   "-12",     "1.5",
                                            "-1.5", "0.0",     "0.25",
                                            "1e5",  "1E5",     "1e+5",
                                            "1e-5", "-1.5e10", "123456789012345678901234567890" };
        static const char *const bad[] = { "",      "-",     "+1",   "01",  "-01",      "00",        "1.",
                                           ".5",    "-.5",   "1e",   "1e+", "1e-",      "1.e5",      "0x10",
                                           " 1",    "1 ",    "1,5",  "NaN", "Infinity", "-Infinity", "--1",
                                           "1.5.2", "1e5e5", "true", "1\n" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                if (json_is_number(good[i], strlen(good[i])) != 1)
                        fail_msg("not a number: \"%s\"", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (json_is_number(bad[i], strlen(bad[i])) != 0)
                        fail_msg("taken as a number: \"%s\"", bad[i]);
        /* only @size bytes count */
        assert_int_equal(json_is_number("12abc", 2), 1);
        assert_int_equal(json_is_number("1.5", 2), 0);
}

static void test_tree_empty(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;

        assert_int_equal(json_tree_new(&t), 0);
        assert_tree_json(t, "{}");
        assert_null(json_tree_free(NULL));
}

static void test_tree_nesting(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;

        assert_int_equal(json_tree_new(&t), 0);
        add(t, "version", 's', "1.0");
        add(t, "workers.0.pid", 'n', "12");
        add(t, "workers.0.interpreter", 's', "/usr/bin/python3");
        add(t, "workers.1.pid", 'n', "13");
        add(t, "queue.size", 'n', "0");
        add(t, "queue.limits.max_jobs", 'n', "-1.5e3");
        add(t, "ok", 'b', "true");
        add(t, "failed", 'b', "false");
        assert_tree_json(t, "{\"version\":\"1.0\","
                            "\"workers\":[{\"pid\":12,\"interpreter\":\"/usr/bin/python3\"},{\"pid\":13}],"
                            "\"queue\":{\"size\":0,\"limits\":{\"max_jobs\":-1.5e3}},"
                            "\"ok\":true,\"failed\":false}");
}

static void test_tree_arrays(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;

        assert_int_equal(json_tree_new(&t), 0);
        /* index order, not insertion order; gaps are null */
        add(t, "gaps.3", 'n', "3");
        add(t, "gaps.0", 'n', "0");
        /* mixed names: an object */
        add(t, "mixed.0", 'n', "0");
        add(t, "mixed.x", 'n', "1");
        /* a leading zero is not an index */
        add(t, "lead.01", 'n', "1");
        add(t, "lead.0", 'n', "0");
        /* more than nine digits is not an index either */
        add(t, "big.1234567890", 'n', "1");
        /* arrays nest */
        add(t, "m.1.0", 's', "b");
        add(t, "m.0.1", 's', "a");
        /* the root is always an object */
        add(t, "0", 'n', "7");
        assert_tree_json(t, "{\"gaps\":[0,null,null,3],"
                            "\"mixed\":{\"0\":0,\"x\":1},"
                            "\"lead\":{\"01\":1,\"0\":0},"
                            "\"big\":{\"1234567890\":1},"
                            "\"m\":[[null,\"a\"],[\"b\"]],"
                            "\"0\":7}");
}

static void test_tree_escapes_and_kinds(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;
        static const char odd[] = "a\"b\n\xff\0z";

        assert_int_equal(json_tree_new(&t), 0);
        assert_int_equal(json_tree_add(t, "path", 's', odd, sizeof(odd) - 1), 0);
        add(t, "we\"ird\xff.x", 'n', "1");
        /* unknown kinds show as strings */
        add(t, "future", '?', "42");
        /* the value is copied */
        {
                char value[] = "copied";
                assert_int_equal(json_tree_add(t, "copy", 's', value, 6), 0);
                memset(value, 'X', 6);
        }
        /* an empty string value */
        assert_int_equal(json_tree_add(t, "empty", 's', "", 0), 0);
        assert_tree_json(t, "{\"path\":\"a\\\"b\\n\\udcff\\u0000z\","
                            "\"we\\\"ird\\udcff\":{\"x\":1},"
                            "\"future\":\"42\",\"copy\":\"copied\",\"empty\":\"\"}");
}

static void test_tree_replace(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;

        assert_int_equal(json_tree_new(&t), 0);
        add(t, "a", 'n', "1");
        add(t, "b", 'n', "2");
        add(t, "a", 's', "again"); /* replaces the value, keeps the position */
        add(t, "c.d", 'n', "3");
        add(t, "c.d", 'b', "true");
        assert_tree_json(t, "{\"a\":\"again\",\"b\":2,\"c\":{\"d\":true}}");
}

static void test_tree_rejects(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;
        static const char *const bad_keys[] = { "", ".", ".a", "a.", "a..b", "x.y.", ".." };
        static const char *const bad_numbers[] = { "", "abc", "01", "1.", "NaN", " 1" };
        static const char *const bad_bools[] = { "", "True", "yes", "1", "true ", "fals" };
        const char *expected = "{\"a\":1,\"c\":{\"d\":2}}";

        assert_int_equal(json_tree_new(&t), 0);
        add(t, "a", 'n', "1");
        add(t, "c.d", 'n', "2");

        for (size_t i = 0; i < ELEMENTSOF(bad_keys); i++)
                assert_int_equal(json_tree_add(t, bad_keys[i], 'n', "1", 1), -EBADMSG);
        for (size_t i = 0; i < ELEMENTSOF(bad_numbers); i++)
                assert_int_equal(json_tree_add(t, "new", 'n', bad_numbers[i], strlen(bad_numbers[i])),
                                 -EBADMSG);
        for (size_t i = 0; i < ELEMENTSOF(bad_bools); i++)
                assert_int_equal(json_tree_add(t, "new", 'b', bad_bools[i], strlen(bad_bools[i])), -EBADMSG);

        /* a value where a container is, and the reverse */
        assert_int_equal(json_tree_add(t, "a.b", 'n', "1", 1), -EBADMSG);
        assert_int_equal(json_tree_add(t, "a.b.c", 'n', "1", 1), -EBADMSG);
        assert_int_equal(json_tree_add(t, "c", 'n', "1", 1), -EBADMSG);
        assert_int_equal(json_tree_add(t, "c.d.e", 'n', "1", 1), -EBADMSG);

        /* nothing of the refused adds is left behind */
        assert_tree_json(t, expected);
}

static void test_tree_depth_limit(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;
        char key[JSON_MAX_DEPTH * 2 + 8] = "";
        _cleanup_free_ char *out = NULL;

        assert_int_equal(json_tree_new(&t), 0);
        for (int i = 0; i < JSON_MAX_DEPTH; i++)
                strcat(key, i ? ".k" : "k");
        assert_int_equal(json_tree_add(t, key, 'n', "1", 1), 0);
        strcat(key, ".k");
        assert_int_equal(json_tree_add(t, key, 'n', "1", 1), -E2BIG);

        /* 32 nested objects around the 1 */
        out = tree_json(t);
        assert_int_equal(strlen(out), 2 + JSON_MAX_DEPTH * strlen("\"k\":") + 1 + (JSON_MAX_DEPTH - 1) * 2);
        assert_ptr_equal(strstr(out, "{\"k\":{\"k\":"), out);
}

static void test_tree_index_limit(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;
        _cleanup_free_ char *out = NULL;
        char key[64];
        size_t len;

        assert_int_equal(json_tree_new(&t), 0);
        assert_int_equal(json_tree_add(t, "w.100001", 'n', "1", 1), -E2BIG);
        assert_int_equal(json_tree_add(t, "w.999999999", 'n', "1", 1), -E2BIG);
        assert_int_equal(json_tree_add(t, "w.100001.x", 'n', "1", 1), -E2BIG);
        assert_tree_json(t, "{}");

        snprintf(key, sizeof(key), "w.%u", JSON_MAX_ARRAY_INDEX);
        assert_int_equal(json_tree_add(t, key, 'n', "1", 1), 0);
        out = tree_json(t);
        /* {"w":[null,null,...,1]} with JSON_MAX_ARRAY_INDEX nulls */
        len = strlen(out);
        assert_int_equal(len, strlen("{\"w\":[") + JSON_MAX_ARRAY_INDEX * strlen("null,") + strlen("1]}"));
        assert_ptr_equal(strstr(out, "{\"w\":[null,null,"), out);
        assert_string_equal(out + len - 8, "null,1]}");
}

static void test_tree_entry_limit(void **state) {
        _cleanup_(json_tree_freep) JsonTree *t = NULL;
        _cleanup_free_ char *out = NULL;

        assert_int_equal(json_tree_new(&t), 0);
        /* grouped keys, as the daemon sends them */
        for (unsigned i = 0; i < JSON_MAX_ENTRIES; i++) {
                char key[32];

                snprintf(key, sizeof(key), "g%u.k%u", i / 100, i % 100);
                assert_int_equal(json_tree_add(t, key, 'n', "1", 1), 0);
        }
        assert_int_equal(json_tree_add(t, "one.more", 'n', "1", 1), -E2BIG);
        out = tree_json(t);
        assert_ptr_equal(strstr(out, "{\"g0\":{\"k0\":1,\"k1\":1,"), out);
        assert_non_null(strstr(out, ",\"g999\":{\"k0\":1,"));
        assert_string_equal(out + strlen(out) - 9, "\"k99\":1}}");
        assert_null(strstr(out, "one"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_string_plain),      cmocka_unit_test(test_string_escapes),
                cmocka_unit_test(test_string_valid_utf8), cmocka_unit_test(test_string_invalid_utf8),
                cmocka_unit_test(test_write_cstring),     cmocka_unit_test(test_is_number),
                cmocka_unit_test(test_tree_empty),        cmocka_unit_test(test_tree_nesting),
                cmocka_unit_test(test_tree_arrays),       cmocka_unit_test(test_tree_escapes_and_kinds),
                cmocka_unit_test(test_tree_replace),      cmocka_unit_test(test_tree_rejects),
                cmocka_unit_test(test_tree_depth_limit),  cmocka_unit_test(test_tree_index_limit),
                cmocka_unit_test(test_tree_entry_limit),
        };

        return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
