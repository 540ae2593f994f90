/* SPDX-License-Identifier: MIT */
/* Unit tests of the front desk's parser (daemon/frontdesk/spec.c).
 *
 * Each test writes a frame with the MsgWriter, as a client would, and reads
 * the Spec spec_parse() makes of it: each verb's required fields, every
 * limit's error, the saturation of --since, duplicate optimization levels,
 * unknown tags, --root, the per-path targets and display names, and the
 * command line that is cut rather than refused. A refusal must leave the output alone and explain itself. */

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "protocol.h"
#include "spec.h"

/* A frame being written and, once parsed, its result. */
typedef struct Parse {
        MsgWriter w;
        uint8_t *frame;
        size_t size;
        Spec *spec;
        char *message;
        int r;
} Parse;

static void parse_begin(Parse *p, uint16_t type) {
        *p = (Parse){};
        assert_int_equal(msg_writer_init(&p->w, type), 0);
}

/* Finishes the frame and parses it under @limits (the defaults when NULL). */
static int parse_end(Parse *p, const SpecLimits *limits) {
        Spec *const untouched = (Spec *)&p->r;
        SpecLimits defaults = SPEC_LIMITS_DEFAULT;
        MsgReader msg;

        assert_int_equal(msg_writer_finish(&p->w, &p->frame, &p->size), 0);
        assert_int_equal(msg_parse(p->frame, p->size, &msg), 0);
        p->spec = untouched;
        p->r = spec_parse(&msg, limits ? limits : &defaults, &p->spec, &p->message);
        if (p->r < 0) {
                /* Refused: the output is not touched, and the client learns why. */
                assert_ptr_equal(p->spec, untouched);
                p->spec = NULL;
                assert_non_null(p->message);
                assert_true(strlen(p->message) > 0);
        } else {
                assert_int_equal(p->r, 0);
                assert_non_null(p->spec);
                assert_null(p->message);
        }
        return p->r;
}

static void parse_done(Parse *p) {
        msg_writer_done(&p->w);
        free(p->frame);
        spec_free(p->spec);
        free(p->message);
        *p = (Parse){};
}
#define _cleanup_parse_ _cleanup_(parse_done)

static bool contains(const char *haystack, const char *needle) {
        return haystack && strstr(haystack, needle);
}

static void test_verb_from_message_type(void **state) {
        static const struct {
                uint16_t type;
                Verb verb;
        } map[] = {
                { MSG_STATUS, VERB_STATUS }, { MSG_COMPILE, VERB_COMPILE }, { MSG_WAIT, VERB_WAIT },
                { MSG_WHY, VERB_WHY },       { MSG_HISTORY, VERB_HISTORY }, { MSG_VERIFY, VERB_VERIFY },
                { MSG_REPAIR, VERB_REPAIR }, { MSG_CLEAN, VERB_CLEAN },     { MSG_AUDIT, VERB_AUDIT },
        };
        static const uint16_t not_requests[] = { 0,        MSG_ACCEPTED, MSG_PROGRESS,     MSG_RESULT,
                                                 MSG_DONE, MSG_ERROR,    MSG_STATUS_REPLY, MSG_RECORD,
                                                 10,       0xffff };

        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                assert_int_equal(verb_from_message_type(map[i].type), map[i].verb);
                assert_string_not_equal(verb_to_string(map[i].verb), "unknown");
        }
        for (size_t i = 0; i < ELEMENTSOF(not_requests); i++) {
                _cleanup_parse_ Parse p = {};

                assert_int_equal(verb_from_message_type(not_requests[i]), -EBADMSG);
                parse_begin(&p, not_requests[i]);
                assert_int_equal(parse_end(&p, NULL), -EBADMSG);
                assert_true(contains(p.message, "unknown message type"));
        }
        assert_string_equal(verb_to_string(_VERB_INVALID), "unknown");
        assert_string_equal(verb_to_string(_VERB_MAX), "unknown");

        assert_true(verb_mutates(VERB_COMPILE) && verb_mutates(VERB_REPAIR) && verb_mutates(VERB_CLEAN));
        assert_false(verb_mutates(VERB_STATUS) || verb_mutates(VERB_WAIT) || verb_mutates(VERB_WHY) ||
                     verb_mutates(VERB_HISTORY) || verb_mutates(VERB_VERIFY) || verb_mutates(VERB_AUDIT));
}

static void test_empty_requests(void **state) {
        /* The verbs that need nothing. */
        static const uint16_t types[] = { MSG_STATUS, MSG_WAIT, MSG_HISTORY, MSG_AUDIT };

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                _cleanup_parse_ Parse p = {};

                parse_begin(&p, types[i]);
                assert_int_equal(parse_end(&p, NULL), 0);
                assert_int_equal(p.spec->verb, verb_from_message_type(types[i]));
                assert_int_equal(p.spec->n_paths, 0);
                assert_int_equal(p.spec->n_opt_levels, 0);
                assert_int_equal(p.spec->mode, INVALIDATION_TIMESTAMP);
                assert_null(p.spec->package);
                assert_null(p.spec->root);
                assert_int_equal(p.spec->since_usec, 0);
                assert_int_equal(p.spec->limit, 0);
        }
}

static void test_compile_required(void **state) {
        _cleanup_parse_ Parse none = {}, one = {};

        parse_begin(&none, MSG_COMPILE);
        msg_put_u64(&none.w, TAG_OPT_LEVEL, 1);
        assert_int_equal(parse_end(&none, NULL), -EINVAL);
        assert_true(contains(none.message, "no paths"));

        /* One path is enough; the level defaults to 0 and the mode to timestamp. */
        parse_begin(&one, MSG_COMPILE);
        msg_put_string(&one.w, TAG_PATH, "/srv/app/a.py");
        assert_int_equal(parse_end(&one, NULL), 0);
        assert_int_equal(one.spec->verb, VERB_COMPILE);
        assert_int_equal(one.spec->n_paths, 1);
        assert_string_equal(one.spec->paths[0], "/srv/app/a.py");
        assert_int_equal(one.spec->n_opt_levels, 1);
        assert_int_equal(one.spec->opt_levels[0], 0);
        assert_int_equal(one.spec->mode, INVALIDATION_TIMESTAMP);
        assert_false(one.spec->force || one.spec->report_all || one.spec->no_wait);
}

static void test_compile_fields(void **state) {
        static const uint8_t odd[] = "/tmp/odd\nname\xff\xfe.py";
        _cleanup_parse_ Parse p = {};

        parse_begin(&p, MSG_COMPILE);
        msg_put_string(&p.w, TAG_CTX_TOOL, "py3compile");
        msg_put_string(&p.w, TAG_CTX_DPKG_PACKAGE, "python3-foo");
        msg_put_string(&p.w, TAG_CTX_DPKG_SCRIPT, "postinst");
        msg_put_string(&p.w, TAG_CTX_ARGV, "py3compile");
        msg_put_string(&p.w, TAG_CTX_ARGV, "-p");
        msg_put_bytes(&p.w, TAG_PATH, odd, sizeof(odd) - 1);
        msg_put_string(&p.w, TAG_EXCLUDE, "/tests?/");
        msg_put_string(&p.w, TAG_PYTHON, "/usr/bin/python3");
        msg_put_u64(&p.w, TAG_INVALIDATION, INVALIDATION_UNCHECKED_HASH);
        msg_put_u64(&p.w, TAG_FORCE, 7); /* any non-zero value is true */
        msg_put_u64(&p.w, TAG_REPORT_ALL, 1);
        msg_put_u64(&p.w, TAG_NO_WAIT, 1);
        msg_put_string(&p.w, TAG_PACKAGE, "first");
        msg_put_string(&p.w, TAG_PACKAGE, "python3-foo"); /* the last one wins */
        assert_int_equal(parse_end(&p, NULL), 0);

        assert_string_equal(p.spec->tool, "py3compile");
        assert_string_equal(p.spec->dpkg_package, "python3-foo");
        assert_string_equal(p.spec->dpkg_script, "postinst");
        assert_int_equal(p.spec->n_argv, 2);
        assert_string_equal(p.spec->argv[1], "-p");
        assert_int_equal(p.spec->n_paths, 1);
        assert_memory_equal(p.spec->paths[0], odd, sizeof(odd)); /* with the NUL */
        assert_int_equal(p.spec->n_excludes, 1);
        assert_string_equal(p.spec->excludes[0], "/tests?/");
        assert_int_equal(p.spec->n_pythons, 1);
        assert_string_equal(p.spec->pythons[0], "/usr/bin/python3");
        assert_int_equal(p.spec->mode, INVALIDATION_UNCHECKED_HASH);
        assert_true(p.spec->force && p.spec->report_all && p.spec->no_wait);
        assert_string_equal(p.spec->package, "python3-foo");
}

/* A wait with TAG_COLLECT_FAILURES is the verb the table authorises
 * separately; TAG_COLLECT_FAILURES 0 is a plain wait. */
static void test_wait_collect_failures(void **state) {
        _cleanup_parse_ Parse p = {}, q = {};

        parse_begin(&p, MSG_WAIT);
        msg_put_u64(&p.w, TAG_COLLECT_FAILURES, 1);
        assert_int_equal(parse_end(&p, NULL), 0);
        assert_int_equal(p.spec->verb, VERB_COLLECT_FAILURES);
        assert_false(verb_mutates(VERB_COLLECT_FAILURES));

        parse_begin(&q, MSG_WAIT);
        msg_put_u64(&q.w, TAG_COLLECT_FAILURES, 0);
        assert_int_equal(parse_end(&q, NULL), 0);
        assert_int_equal(q.spec->verb, VERB_WAIT);
}

static void test_why_takes_one_path(void **state) {
        for (unsigned n = 0; n <= 3; n++) {
                _cleanup_parse_ Parse p = {};

                parse_begin(&p, MSG_WHY);
                for (unsigned i = 0; i < n; i++)
                        msg_put_string(&p.w, TAG_PATH, "/usr/lib/python3/x.py");
                msg_put_u64(&p.w, TAG_LIMIT, 3);
                if (n == 1) {
                        assert_int_equal(parse_end(&p, NULL), 0);
                        assert_int_equal(p.spec->limit, 3);
                } else {
                        assert_int_equal(parse_end(&p, NULL), -EINVAL);
                        assert_true(contains(p.message, "exactly one path"));
                }
        }
}

static void test_paths_or_package(void **state) {
        static const uint16_t types[] = { MSG_VERIFY, MSG_REPAIR, MSG_CLEAN };

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                _cleanup_parse_ Parse none = {}, path = {}, package = {};

                parse_begin(&none, types[i]);
                msg_put_string(&none.w, TAG_PYTHON, "/usr/bin/python3");
                assert_int_equal(parse_end(&none, NULL), -EINVAL);
                assert_true(contains(none.message, "paths or a package"));

                parse_begin(&path, types[i]);
                msg_put_string(&path.w, TAG_PATH, "/usr");
                assert_int_equal(parse_end(&path, NULL), 0);
                assert_int_equal(path.spec->n_paths, 1);

                parse_begin(&package, types[i]);
                msg_put_string(&package.w, TAG_PACKAGE, "python3-foo");
                assert_int_equal(parse_end(&package, NULL), 0);
                assert_string_equal(package.spec->package, "python3-foo");
                assert_int_equal(package.spec->n_paths, 0);
        }
}

static void test_history_fields(void **state) {
        _cleanup_parse_ Parse p = {};

        parse_begin(&p, MSG_HISTORY);
        msg_put_string(&p.w, TAG_PATH, "/usr/lib/python3/x.py");
        msg_put_string(&p.w, TAG_PACKAGE, "python3-foo");
        msg_put_u64(&p.w, TAG_SINCE, 1700000000);
        msg_put_u64(&p.w, TAG_FAILED_ONLY, 1);
        msg_put_u64(&p.w, TAG_LIMIT, 25);
        assert_int_equal(parse_end(&p, NULL), 0);
        assert_int_equal(p.spec->verb, VERB_HISTORY);
        assert_int_equal(p.spec->since_usec, UINT64_C(1700000000) * 1000000u);
        assert_true(p.spec->failed_only);
        assert_int_equal(p.spec->limit, 25);
}

/* --since in seconds becomes microseconds without wrapping: a time far in
 * the future must never turn into one in the past, which would return every
 * record. The seconds ascend, and so must the microseconds. */
static const uint64_t since_seconds[] = {
        0,
        1,
        1700000000,
        INT64_MAX / 1000000,
        INT64_MAX / 1000000 + 1,
        UINT64_C(1) << 44,
        UINT64_MAX / 1000000,
        UINT64_MAX / 1000000 + 1,
        INT64_MAX,
        UINT64_MAX,
};

static uint64_t parse_since(uint16_t type, uint64_t seconds) {
        _cleanup_parse_ Parse p = {};

        parse_begin(&p, type);
        msg_put_u64(&p.w, TAG_SINCE, seconds);
        assert_int_equal(parse_end(&p, NULL), 0);
        return p.spec->since_usec;
}

static void test_since_saturates(void **state) {
        static const uint16_t types[] = { MSG_HISTORY, MSG_AUDIT };

        for (size_t j = 0; j < ELEMENTSOF(types); j++) {
                uint64_t previous = 0;

                for (size_t i = 0; i < ELEMENTSOF(since_seconds); i++) {
                        uint64_t v = since_seconds[i], usec = parse_since(types[j], v), exact;

                        if (v <= INT64_MAX / 1000000)
                                assert_true(usec == v * 1000000);
                        /* Never earlier than the time asked for, up to the
                         * largest time a record can carry. */
                        if (__builtin_mul_overflow(v, UINT64_C(1000000), &exact))
                                exact = UINT64_MAX;
                        assert_true(usec >= MIN(exact, (uint64_t)INT64_MAX));
                        assert_true(usec >= previous);
                        previous = usec;
                }
                assert_true(parse_since(types[j], UINT64_MAX) >= (uint64_t)INT64_MAX);
        }
}

/* Record times are sqlite int64 values, and the queries bind since_usec as
 * one: a value above INT64_MAX would become negative there and match every
 * row (the --since 2**44 finding), so the parser saturates at INT64_MAX. */
static void test_since_fits_int64(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(since_seconds); i++)
                assert_true(parse_since(MSG_HISTORY, since_seconds[i]) <= (uint64_t)INT64_MAX);
        assert_int_equal(parse_since(MSG_HISTORY, UINT64_C(1) << 44), (uint64_t)INT64_MAX);
}

static void test_opt_levels(void **state) {
        _cleanup_parse_ Parse dup = {}, bad = {}, other_verb = {};

        /* Duplicates collapse, in order of first appearance. */
        parse_begin(&dup, MSG_COMPILE);
        msg_put_string(&dup.w, TAG_PATH, "/a.py");
        msg_put_u64(&dup.w, TAG_OPT_LEVEL, 2);
        msg_put_u64(&dup.w, TAG_OPT_LEVEL, 0);
        msg_put_u64(&dup.w, TAG_OPT_LEVEL, 2);
        msg_put_u64(&dup.w, TAG_OPT_LEVEL, 0);
        msg_put_u64(&dup.w, TAG_OPT_LEVEL, 1);
        msg_put_u64(&dup.w, TAG_OPT_LEVEL, 1);
        msg_put_u64(&dup.w, TAG_OPT_LEVEL, 2);
        assert_int_equal(parse_end(&dup, NULL), 0);
        assert_int_equal(dup.spec->n_opt_levels, 3);
        assert_int_equal(dup.spec->opt_levels[0], 2);
        assert_int_equal(dup.spec->opt_levels[1], 0);
        assert_int_equal(dup.spec->opt_levels[2], 1);

        parse_begin(&bad, MSG_COMPILE);
        msg_put_string(&bad.w, TAG_PATH, "/a.py");
        msg_put_u64(&bad.w, TAG_OPT_LEVEL, 3);
        assert_int_equal(parse_end(&bad, NULL), -EINVAL);
        assert_true(contains(bad.message, "optimization level 3"));

        /* Only compile gets a default level. */
        parse_begin(&other_verb, MSG_VERIFY);
        msg_put_string(&other_verb.w, TAG_PATH, "/a.py");
        assert_int_equal(parse_end(&other_verb, NULL), 0);
        assert_int_equal(other_verb.spec->n_opt_levels, 0);
}

static void test_invalid_scalars(void **state) {
        static const uint8_t four[4] = { 1, 0, 0, 0 };
        _cleanup_parse_ Parse mode = {}, flag = {}, since = {}, limit = {};

        parse_begin(&mode, MSG_COMPILE);
        msg_put_string(&mode.w, TAG_PATH, "/a.py");
        msg_put_u64(&mode.w, TAG_INVALIDATION, _INVALIDATION_MAX);
        assert_int_equal(parse_end(&mode, NULL), -EINVAL);
        assert_true(contains(mode.message, "invalidation mode"));

        /* Integers of any size but 8 are malformed. */
        parse_begin(&flag, MSG_COMPILE);
        msg_put_string(&flag.w, TAG_PATH, "/a.py");
        msg_put_bytes(&flag.w, TAG_FORCE, four, sizeof(four));
        assert_int_equal(parse_end(&flag, NULL), -EBADMSG);
        assert_true(contains(flag.message, "malformed field"));

        parse_begin(&since, MSG_HISTORY);
        msg_put_bytes(&since.w, TAG_SINCE, four, sizeof(four));
        assert_int_equal(parse_end(&since, NULL), -EBADMSG);

        parse_begin(&limit, MSG_AUDIT);
        msg_put_bytes(&limit.w, TAG_LIMIT, "", 0);
        assert_int_equal(parse_end(&limit, NULL), -EBADMSG);
}

static void test_paths_absolute(void **state) {
        _cleanup_free_ char *longest = malloc(PATH_MAX + 1);
        static const struct {
                uint16_t tag;
                const char *what;
        } tags[] = { { TAG_PATH, "path" }, { TAG_PYTHON, "interpreter" } };

        assert_non_null(longest);
        memset(longest, 'a', PATH_MAX);
        longest[0] = '/';

        for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
                _cleanup_parse_ Parse relative = {}, empty = {}, too_long = {}, fits = {}, nul = {};

                parse_begin(&relative, MSG_VERIFY);
                msg_put_string(&relative.w, tags[i].tag, "usr/lib/python3");
                msg_put_string(&relative.w, TAG_PACKAGE, "p");
                assert_int_equal(parse_end(&relative, NULL), -EINVAL);
                assert_true(contains(relative.message, tags[i].what));
                assert_true(contains(relative.message, "absolute"));

                parse_begin(&empty, MSG_VERIFY);
                msg_put_bytes(&empty.w, tags[i].tag, "", 0);
                msg_put_string(&empty.w, TAG_PACKAGE, "p");
                assert_int_equal(parse_end(&empty, NULL), -EINVAL);

                /* PATH_MAX bytes leave no room for the NUL: refused. */
                parse_begin(&too_long, MSG_VERIFY);
                msg_put_bytes(&too_long.w, tags[i].tag, longest, PATH_MAX);
                msg_put_string(&too_long.w, TAG_PACKAGE, "p");
                assert_int_equal(parse_end(&too_long, NULL), -EINVAL);

                parse_begin(&fits, MSG_VERIFY);
                msg_put_bytes(&fits.w, tags[i].tag, longest, PATH_MAX - 1);
                msg_put_string(&fits.w, TAG_PACKAGE, "p");
                assert_int_equal(parse_end(&fits, NULL), 0);

                parse_begin(&nul, MSG_VERIFY);
                msg_put_bytes(&nul.w, tags[i].tag, "/a\0b", 4);
                assert_int_equal(parse_end(&nul, NULL), -EBADMSG);
        }
}

static void test_root(void **state) {
        _cleanup_free_ char *longest = malloc(PATH_MAX);
        _cleanup_parse_ Parse ok = {}, twice = {}, relative = {}, empty = {}, too_long = {}, nul = {};

        assert_non_null(longest);
        memset(longest, 'r', PATH_MAX);
        longest[0] = '/';

        parse_begin(&ok, MSG_COMPILE);
        msg_put_string(&ok.w, TAG_PATH, "/usr/lib/python3");
        msg_put_string(&ok.w, TAG_ROOT, "/target");
        assert_int_equal(parse_end(&ok, NULL), 0);
        assert_string_equal(ok.spec->root, "/target");

        parse_begin(&twice, MSG_COMPILE);
        msg_put_string(&twice.w, TAG_PATH, "/usr/lib/python3");
        msg_put_string(&twice.w, TAG_ROOT, "/first");
        msg_put_string(&twice.w, TAG_ROOT, "/second");
        assert_int_equal(parse_end(&twice, NULL), 0);
        assert_string_equal(twice.spec->root, "/second");

        parse_begin(&relative, MSG_COMPILE);
        msg_put_string(&relative.w, TAG_PATH, "/usr/lib/python3");
        msg_put_string(&relative.w, TAG_ROOT, "target");
        assert_int_equal(parse_end(&relative, NULL), -EINVAL);
        assert_true(contains(relative.message, "--root"));

        parse_begin(&empty, MSG_COMPILE);
        msg_put_string(&empty.w, TAG_PATH, "/usr/lib/python3");
        msg_put_bytes(&empty.w, TAG_ROOT, "", 0);
        assert_int_equal(parse_end(&empty, NULL), -EINVAL);

        parse_begin(&too_long, MSG_COMPILE);
        msg_put_string(&too_long.w, TAG_PATH, "/usr/lib/python3");
        msg_put_bytes(&too_long.w, TAG_ROOT, longest, PATH_MAX);
        assert_int_equal(parse_end(&too_long, NULL), -EINVAL);

        parse_begin(&nul, MSG_COMPILE);
        msg_put_string(&nul.w, TAG_PATH, "/usr/lib/python3");
        msg_put_bytes(&nul.w, TAG_ROOT, "/t\0x", 4);
        assert_int_equal(parse_end(&nul, NULL), -EBADMSG);
}

static const SpecLimits small = {
        .max_paths = 2,
        .max_excludes = 1,
        .max_exclude_size = 4,
        .max_pythons = 1,
        .max_argv = 2,
        .max_string = 8,
};

static void test_limit_paths(void **state) {
        _cleanup_parse_ Parse at = {}, over = {};

        parse_begin(&at, MSG_COMPILE);
        msg_put_string(&at.w, TAG_PATH, "/a");
        msg_put_string(&at.w, TAG_PATH, "/b");
        assert_int_equal(parse_end(&at, &small), 0);
        assert_int_equal(at.spec->n_paths, 2);

        parse_begin(&over, MSG_COMPILE);
        for (int i = 0; i < 3; i++)
                msg_put_string(&over.w, TAG_PATH, "/a");
        assert_int_equal(parse_end(&over, &small), -E2BIG);
        assert_true(contains(over.message, "more than 2 paths"));
}

static void test_limit_paths_default(void **state) {
        SpecLimits l = SPEC_LIMITS_DEFAULT;
        _cleanup_parse_ Parse at = {}, over = {};

        parse_begin(&at, MSG_COMPILE);
        for (size_t i = 0; i < l.max_paths; i++)
                msg_put_string(&at.w, TAG_PATH, "/a");
        assert_int_equal(parse_end(&at, NULL), 0);
        assert_int_equal(at.spec->n_paths, l.max_paths);

        parse_begin(&over, MSG_COMPILE);
        for (size_t i = 0; i <= l.max_paths; i++)
                msg_put_string(&over.w, TAG_PATH, "/a");
        assert_int_equal(parse_end(&over, NULL), -E2BIG);
}

static void test_limit_pythons(void **state) {
        _cleanup_parse_ Parse at = {}, over = {};

        parse_begin(&at, MSG_CLEAN);
        msg_put_string(&at.w, TAG_PATH, "/a");
        msg_put_string(&at.w, TAG_PYTHON, "/usr/bin/python3");
        assert_int_equal(parse_end(&at, &small), 0);

        parse_begin(&over, MSG_CLEAN);
        msg_put_string(&over.w, TAG_PATH, "/a");
        msg_put_string(&over.w, TAG_PYTHON, "/usr/bin/python3");
        msg_put_string(&over.w, TAG_PYTHON, "/usr/bin/pypy3");
        assert_int_equal(parse_end(&over, &small), -E2BIG);
        assert_true(contains(over.message, "interpreter"));
}

static void test_limit_excludes(void **state) {
        _cleanup_parse_ Parse at = {}, too_many = {}, too_long = {}, nul = {};

        parse_begin(&at, MSG_COMPILE);
        msg_put_string(&at.w, TAG_PATH, "/a");
        msg_put_string(&at.w, TAG_EXCLUDE, "abcd");
        assert_int_equal(parse_end(&at, &small), 0);
        assert_string_equal(at.spec->excludes[0], "abcd");

        parse_begin(&too_many, MSG_COMPILE);
        msg_put_string(&too_many.w, TAG_PATH, "/a");
        msg_put_string(&too_many.w, TAG_EXCLUDE, "a");
        msg_put_string(&too_many.w, TAG_EXCLUDE, "b");
        assert_int_equal(parse_end(&too_many, &small), -E2BIG);
        assert_true(contains(too_many.message, "exclude"));

        parse_begin(&too_long, MSG_COMPILE);
        msg_put_string(&too_long.w, TAG_PATH, "/a");
        msg_put_string(&too_long.w, TAG_EXCLUDE, "abcde");
        assert_int_equal(parse_end(&too_long, &small), -E2BIG);
        assert_true(contains(too_long.message, "at most 4 bytes"));

        parse_begin(&nul, MSG_COMPILE);
        msg_put_string(&nul.w, TAG_PATH, "/a");
        msg_put_bytes(&nul.w, TAG_EXCLUDE, "a\0", 2);
        assert_int_equal(parse_end(&nul, &small), -EBADMSG);
}

static void test_limit_strings(void **state) {
        static const uint16_t tags[] = { TAG_PACKAGE, TAG_CTX_TOOL, TAG_CTX_DPKG_PACKAGE };

        for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
                _cleanup_parse_ Parse at = {}, over = {}, nul = {};

                parse_begin(&at, MSG_WAIT);
                msg_put_string(&at.w, tags[i], "12345678");
                assert_int_equal(parse_end(&at, &small), 0);

                parse_begin(&over, MSG_WAIT);
                msg_put_string(&over.w, tags[i], "123456789");
                assert_int_equal(parse_end(&over, &small), -ENAMETOOLONG);
                assert_true(contains(over.message, "invalid wait request"));

                parse_begin(&nul, MSG_WAIT);
                msg_put_bytes(&nul.w, tags[i], "a\0b", 3);
                assert_int_equal(parse_end(&nul, &small), -EBADMSG);
        }
}

/* The command line is context for provenance: cut, never a reason to refuse. */
static void test_argv_truncated(void **state) {
        _cleanup_parse_ Parse p = {};

        parse_begin(&p, MSG_COMPILE);
        msg_put_string(&p.w, TAG_PATH, "/a");
        msg_put_string(&p.w, TAG_CTX_ARGV, "pycqueue");
        msg_put_string(&p.w, TAG_CTX_ARGV, "far-too-long-argument"); /* over max_string: dropped */
        msg_put_string(&p.w, TAG_CTX_ARGV, "compile");
        msg_put_string(&p.w, TAG_CTX_ARGV, "-f"); /* over max_argv: dropped */
        msg_put_string(&p.w, TAG_CTX_ARGV, "/a");
        assert_int_equal(parse_end(&p, &small), 0);
        assert_int_equal(p.spec->n_argv, 2);
        assert_string_equal(p.spec->argv[0], "pycqueue");
        assert_string_equal(p.spec->argv[1], "compile");
}

static void test_unknown_tags_ignored(void **state) {
        static const uint16_t tags[] = {
                0, 5, 9, 29, 39, TAG_COUNT_TOTAL, TAG_RESULT_SOURCE, TAG_ERRNO, TAG_STAT, 0x7fff, 0xffff
        };
        static const uint8_t junk[] = { 0, 1, 2, 0xff, 0 };
        _cleanup_parse_ Parse p = {};

        parse_begin(&p, MSG_WHY);
        msg_put_string(&p.w, TAG_PATH, "/a.py");
        for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
                msg_put_bytes(&p.w, tags[i], junk, sizeof(junk));
                msg_put_bytes(&p.w, tags[i], "", 0);
        }
        /* Fields of other verbs are ignored too, when well formed. */
        msg_put_u64(&p.w, TAG_FORCE, 1);
        msg_put_string(&p.w, TAG_EXCLUDE, "x");
        assert_int_equal(parse_end(&p, NULL), 0);
        assert_int_equal(p.spec->verb, VERB_WHY);
        assert_int_equal(p.spec->n_paths, 1);
        assert_string_equal(p.spec->paths[0], "/a.py");
}

/* py3clean's clean: sources, cache tags (bounded, no '/'), a package as
 * context only, and neither tags without sources nor interpreters with. */
static void test_clean_sources(void **state) {
        _cleanup_parse_ Parse ok = {}, legacy = {}, none = {}, tag_alone = {}, slash = {}, python = {},
                              many = {}, big = {};
        char long_tag[SPEC_MAX_CLEAN_TAG + 2];

        parse_begin(&ok, MSG_CLEAN);
        msg_put_u64(&ok.w, TAG_CLEAN_SOURCES, 1);
        msg_put_string(&ok.w, TAG_PATH, "/usr/lib/python3/dist-packages/foo.py");
        msg_put_string(&ok.w, TAG_CLEAN_TAG, "cpython-311");
        msg_put_string(&ok.w, TAG_PACKAGE, "python3-foo");
        assert_int_equal(parse_end(&ok, NULL), 0);
        assert_true(ok.spec->clean_sources);
        assert_int_equal(ok.spec->n_clean_tags, 1);
        assert_string_equal(ok.spec->clean_tags[0], "cpython-311");
        assert_string_equal(ok.spec->package, "python3-foo");

        parse_begin(&legacy, MSG_CLEAN);
        msg_put_u64(&legacy.w, TAG_CLEAN_SOURCES, 1);
        msg_put_string(&legacy.w, TAG_PATH, "/a.py");
        msg_put_string(&legacy.w, TAG_CLEAN_TAG, "");
        assert_int_equal(parse_end(&legacy, NULL), 0);
        assert_string_equal(legacy.spec->clean_tags[0], "");

        parse_begin(&none, MSG_CLEAN);
        msg_put_u64(&none.w, TAG_CLEAN_SOURCES, 1);
        msg_put_string(&none.w, TAG_PACKAGE, "python3-foo");
        assert_int_equal(parse_end(&none, NULL), -EINVAL);
        assert_true(contains(none.message, "sources"));

        parse_begin(&tag_alone, MSG_CLEAN);
        msg_put_string(&tag_alone.w, TAG_PATH, "/a");
        msg_put_string(&tag_alone.w, TAG_CLEAN_TAG, "cpython-311");
        assert_int_equal(parse_end(&tag_alone, NULL), -EINVAL);

        parse_begin(&slash, MSG_CLEAN);
        msg_put_u64(&slash.w, TAG_CLEAN_SOURCES, 1);
        msg_put_string(&slash.w, TAG_PATH, "/a.py");
        msg_put_string(&slash.w, TAG_CLEAN_TAG, "../x");
        assert_int_equal(parse_end(&slash, NULL), -EINVAL);

        parse_begin(&python, MSG_CLEAN);
        msg_put_u64(&python.w, TAG_CLEAN_SOURCES, 1);
        msg_put_string(&python.w, TAG_PATH, "/a.py");
        msg_put_string(&python.w, TAG_PYTHON, "/usr/bin/python3");
        assert_int_equal(parse_end(&python, NULL), -EINVAL);

        parse_begin(&many, MSG_CLEAN);
        msg_put_u64(&many.w, TAG_CLEAN_SOURCES, 1);
        msg_put_string(&many.w, TAG_PATH, "/a.py");
        for (size_t i = 0; i <= SPEC_LIMITS_DEFAULT.max_clean_tags; i++)
                msg_put_string(&many.w, TAG_CLEAN_TAG, "cpython-311");
        assert_int_equal(parse_end(&many, NULL), -E2BIG);
        assert_true(contains(many.message, "cache tags"));

        memset(long_tag, 'x', sizeof(long_tag) - 1);
        long_tag[sizeof(long_tag) - 1] = 0;
        parse_begin(&big, MSG_CLEAN);
        msg_put_u64(&big.w, TAG_CLEAN_SOURCES, 1);
        msg_put_string(&big.w, TAG_PATH, "/a.py");
        msg_put_string(&big.w, TAG_CLEAN_TAG, long_tag);
        assert_int_equal(parse_end(&big, NULL), -E2BIG);
}

/* TAG_PATH_TARGET and TAG_PATH_DISPLAY pair with the paths by position:
 * none or one each per path, "" for the default; an explicit target is
 * absolute and takes one interpreter and one level; other verbs ignore
 * them. */
static void test_path_targets(void **state) {
        static const char non_utf8[] = "/tmp/\xff\xfe.pyc";

        {
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH, "/src/b.py");
                msg_put_string(&p.w, TAG_PATH_TARGET, non_utf8);
                msg_put_string(&p.w, TAG_PATH_DISPLAY, "");
                msg_put_string(&p.w, TAG_PATH_TARGET, "");
                msg_put_string(&p.w, TAG_PATH_DISPLAY, "b.py");
                assert_int_equal(parse_end(&p, NULL), 0);
                assert_int_equal(p.spec->n_path_targets, 2);
                assert_int_equal(p.spec->n_path_displays, 2);
                assert_string_equal(p.spec->path_targets[0], non_utf8);
                assert_string_equal(p.spec->path_targets[1], "");
                assert_string_equal(p.spec->path_displays[0], "");
                assert_string_equal(p.spec->path_displays[1], "b.py");
                assert_true(spec_has_explicit_target(p.spec));
        }
        {
                /* Only defaults: no explicit target, several levels allowed. */
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH_TARGET, "");
                msg_put_u64(&p.w, TAG_OPT_LEVEL, 0);
                msg_put_u64(&p.w, TAG_OPT_LEVEL, 2);
                assert_int_equal(parse_end(&p, NULL), 0);
                assert_false(spec_has_explicit_target(p.spec));
                assert_int_equal(p.spec->n_opt_levels, 2);
        }
        {
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH, "/src/b.py");
                msg_put_string(&p.w, TAG_PATH_TARGET, "/x.pyc");
                assert_int_equal(parse_end(&p, NULL), -EINVAL);
                assert_true(contains(p.message, "one per path"));
        }
        {
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH_DISPLAY, "a");
                msg_put_string(&p.w, TAG_PATH_DISPLAY, "b");
                assert_int_equal(parse_end(&p, NULL), -EINVAL);
        }
        {
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH_TARGET, "relative.pyc");
                assert_int_equal(parse_end(&p, NULL), -EINVAL);
        }
        {
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH_TARGET, "/x.pyc");
                msg_put_u64(&p.w, TAG_OPT_LEVEL, 1);
                msg_put_u64(&p.w, TAG_OPT_LEVEL, 2);
                assert_int_equal(parse_end(&p, NULL), -EINVAL);
                assert_true(contains(p.message, "one interpreter and one optimization level"));
        }
        {
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH_TARGET, "/x.pyc");
                msg_put_string(&p.w, TAG_PYTHON, "/usr/bin/python3");
                msg_put_string(&p.w, TAG_PYTHON, "/usr/bin/pypy3");
                assert_int_equal(parse_end(&p, NULL), -EINVAL);
        }
        {
                /* A display holds no NUL (string rules), and is bounded. */
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_bytes(&p.w, TAG_PATH_DISPLAY, "a\0b", 3);
                assert_int_equal(parse_end(&p, NULL), -EBADMSG);
        }
        {
                _cleanup_parse_ Parse p;
                _cleanup_free_ char *big = malloc(PATH_MAX + 1);
                assert_non_null(big);
                memset(big, 'x', PATH_MAX);
                big[PATH_MAX] = '\0';
                parse_begin(&p, MSG_COMPILE);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH_DISPLAY, big);
                assert_int_equal(parse_end(&p, NULL), -EINVAL);
        }
        {
                /* Another verb ignores them. */
                _cleanup_parse_ Parse p;
                parse_begin(&p, MSG_VERIFY);
                msg_put_string(&p.w, TAG_PATH, "/src/a.py");
                msg_put_string(&p.w, TAG_PATH_TARGET, "relative");
                msg_put_string(&p.w, TAG_PATH_TARGET, "/x");
                assert_int_equal(parse_end(&p, NULL), 0);
                assert_int_equal(p.spec->n_path_targets, 0);
        }
        (void)state;
}

static void test_spec_free_null(void **state) {
        assert_null(spec_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_verb_from_message_type),
                cmocka_unit_test(test_empty_requests),
                cmocka_unit_test(test_compile_required),
                cmocka_unit_test(test_compile_fields),
                cmocka_unit_test(test_why_takes_one_path),
                cmocka_unit_test(test_paths_or_package),
                cmocka_unit_test(test_history_fields),
                cmocka_unit_test(test_since_saturates),
                cmocka_unit_test(test_since_fits_int64),
                cmocka_unit_test(test_opt_levels),
                cmocka_unit_test(test_invalid_scalars),
                cmocka_unit_test(test_paths_absolute),
                cmocka_unit_test(test_root),
                cmocka_unit_test(test_limit_paths),
                cmocka_unit_test(test_limit_paths_default),
                cmocka_unit_test(test_limit_pythons),
                cmocka_unit_test(test_clean_sources),
                cmocka_unit_test(test_limit_excludes),
                cmocka_unit_test(test_limit_strings),
                cmocka_unit_test(test_argv_truncated),
                cmocka_unit_test(test_wait_collect_failures),
                cmocka_unit_test(test_unknown_tags_ignored),
                cmocka_unit_test(test_path_targets),
                cmocka_unit_test(test_spec_free_null),
        };

        return cmocka_run_group_tests_name("spec", tests, NULL, NULL);
}
