/* SPDX-License-Identifier: MIT */
/* Fuzz target for the front desk's parser (daemon/frontdesk/spec.c).
 *
 * Each input is used twice:
 *
 *  - as raw bytes: when msg_parse() accepts them as one frame, spec_parse()
 *    reads that frame;
 *  - as a small program that builds a well-formed frame with the MsgWriter,
 *    so that every verb is reached with fields the fuzzer chooses rather
 *    than stopping at the frame header. The first byte picks the message
 *    type (every verb, and types no client sends); then each op byte picks
 *    a tag (low 5 bits) and a kind of value (high 3 bits), and the bytes
 *    after it give the value:
 *
 *        0 small u64 (one byte)     4 raw bytes (length byte, may hold NUL)
 *        1 any u64 (eight bytes)    5 a long path near a limit (selector byte)
 *        2 an edge u64 (selector)   6 an integer of the wrong size
 *        3 "/" + bytes (length byte) 7 repeat the last field (count byte)
 *
 * Every frame goes through spec_parse() under three SpecLimits (the
 * default, small ones and all zero). An accepted Spec is compared with what
 * an independent reading of the same fields says it must hold: the same
 * paths, interpreters, patterns and strings byte for byte (so none holds a
 * NUL or is cut), counts within the limits, distinct optimization levels
 * 0..2 (at least one for compile), a known invalidation mode, the last value
 * of each scalar, --since in microseconds or saturated, and each verb's
 * required fields. A refused frame must give a negative errno the parser
 * documents, an explanation (unless out of memory) and leave the output
 * alone. spec_free() frees everything: run under ASan or valgrind, a leak
 * fails.
 *
 * Built by `make check` it replays tests/fuzz/corpus-spec and mutations (see
 * driver.h). As a libFuzzer target:
 *
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER \
 *           -D_GNU_SOURCE -Icommon -Idaemon -Idaemon/frontdesk \
 *           tests/fuzz/fuzz-spec.c daemon/frontdesk/spec.c common/protocol.c \
 *           common/util.c -o fuzz-spec-libfuzzer
 *     cp -r tests/fuzz/corpus-spec /tmp/corpus-spec
 *     ./fuzz-spec-libfuzzer -max_total_time=60 /tmp/corpus-spec
 */

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "macro.h"
#include "protocol.h"
#include "spec.h"
#include "util.h"

/* ---- the independent reading ------------------------------------------ */

static void check_string_equal(const char *s, const MsgField *f, const char *what) {
        fuzz_check(s != NULL, what);
        fuzz_check(!memchr(f->data, 0, f->size), what);
        fuzz_check(strlen(s) == f->size, what);
        fuzz_check(f->size == 0 || memcmp(s, f->data, f->size) == 0, what);
}

static bool is_absolute_path_field(const MsgField *f) {
        return f->size > 0 && f->size < PATH_MAX && f->data[0] == '/' && !memchr(f->data, 0, f->size);
}

/* Checks an accepted Spec against the fields of @msg. */
static void check_spec(const MsgReader *msg, const SpecLimits *l, const Spec *s) {
        size_t n_paths = 0, n_pythons = 0, n_excludes = 0, n_argv = 0, n_opt = 0, n_targets = 0, n_displays = 0;
        bool explicit_target = false;
        unsigned opt[3];
        InvalidationMode mode = INVALIDATION_TIMESTAMP;
        bool force = false, report_all = false, no_wait = false, failed_only = false, collect = false;
        const MsgField *root = NULL, *package = NULL, *tool = NULL, *dpkg = NULL, *script = NULL;
        MsgField fields[5], f; /* where the pointers above keep the last of each */
        uint64_t since_usec = 0, limit = 0, v;
        MsgReader rd = *msg;
        int r;

        while ((r = msg_next(&rd, &f)) == 1) {
                switch (f.tag) {
                case TAG_PATH:
                        fuzz_check(is_absolute_path_field(&f),
                                   "an accepted path is absolute and < PATH_MAX");
                        fuzz_check(n_paths < s->n_paths, "every path is kept");
                        check_string_equal(s->paths[n_paths++], &f, "path kept verbatim");
                        break;
                case TAG_PATH_TARGET:
                case TAG_PATH_DISPLAY:
                        if (msg->type != MSG_COMPILE)
                                break; /* ignored by other verbs */
                        fuzz_check(f.size < PATH_MAX, "a per-path value is < PATH_MAX");
                        if (f.tag == TAG_PATH_TARGET) {
                                fuzz_check(f.size == 0 || f.data[0] == '/', "a target is empty or absolute");
                                fuzz_check(n_targets < s->n_path_targets, "every target is kept");
                                check_string_equal(s->path_targets[n_targets++], &f, "target kept verbatim");
                                explicit_target = explicit_target || f.size > 0;
                        } else {
                                fuzz_check(n_displays < s->n_path_displays, "every display is kept");
                                check_string_equal(s->path_displays[n_displays++], &f, "display kept verbatim");
                        }
                        break;
                case TAG_PYTHON:
                        fuzz_check(is_absolute_path_field(&f), "an accepted interpreter is absolute");
                        fuzz_check(n_pythons < s->n_pythons, "every interpreter is kept");
                        check_string_equal(s->pythons[n_pythons++], &f, "interpreter kept verbatim");
                        break;
                case TAG_EXCLUDE:
                        fuzz_check(f.size <= l->max_exclude_size, "exclude pattern within its size");
                        fuzz_check(n_excludes < s->n_excludes, "every exclude is kept");
                        check_string_equal(s->excludes[n_excludes++], &f, "exclude kept verbatim");
                        break;
                case TAG_CTX_ARGV:
                        /* Context only: too many or too long are dropped. */
                        if (f.size <= l->max_string && n_argv < l->max_argv) {
                                fuzz_check(n_argv < s->n_argv, "argv kept while within limits");
                                check_string_equal(s->argv[n_argv++], &f, "argv kept verbatim");
                        }
                        break;
                case TAG_OPT_LEVEL: {
                        bool seen = false;

                        fuzz_check(field_u64(&f, &v) == 0 && v <= 2, "accepted optimization level");
                        for (size_t i = 0; i < n_opt; i++)
                                seen = seen || opt[i] == v;
                        if (!seen)
                                opt[n_opt++] = (unsigned)v;
                        break;
                }
                case TAG_INVALIDATION:
                        fuzz_check(field_u64(&f, &v) == 0 && v < _INVALIDATION_MAX, "accepted mode");
                        mode = (InvalidationMode)v;
                        break;
                case TAG_FORCE:
                case TAG_REPORT_ALL:
                case TAG_NO_WAIT:
                case TAG_FAILED_ONLY:
                case TAG_COLLECT_FAILURES:
                        fuzz_check(field_u64(&f, &v) == 0, "accepted flag is a u64");
                        if (f.tag == TAG_FORCE)
                                force = v != 0;
                        else if (f.tag == TAG_REPORT_ALL)
                                report_all = v != 0;
                        else if (f.tag == TAG_NO_WAIT)
                                no_wait = v != 0;
                        else if (f.tag == TAG_COLLECT_FAILURES)
                                collect = v != 0;
                        else
                                failed_only = v != 0;
                        break;
                case TAG_PACKAGE:
                case TAG_CTX_TOOL:
                case TAG_CTX_DPKG_PACKAGE:
                case TAG_CTX_DPKG_SCRIPT:
                        fuzz_check(f.size <= l->max_string, "string within its size");
                        if (f.tag == TAG_PACKAGE)
                                fields[0] = f, package = &fields[0];
                        else if (f.tag == TAG_CTX_TOOL)
                                fields[1] = f, tool = &fields[1];
                        else if (f.tag == TAG_CTX_DPKG_SCRIPT)
                                fields[4] = f, script = &fields[4];
                        else
                                fields[2] = f, dpkg = &fields[2];
                        break;
                case TAG_ROOT:
                        fuzz_check(is_absolute_path_field(&f), "an accepted root is absolute");
                        fields[3] = f, root = &fields[3];
                        break;
                case TAG_SINCE:
                        fuzz_check(field_u64(&f, &v) == 0, "since is a u64");
                        if (__builtin_mul_overflow(v, (uint64_t)1000000, &since_usec))
                                since_usec = UINT64_MAX;
                        break;
                case TAG_LIMIT:
                        fuzz_check(field_u64(&f, &limit) == 0, "limit is a u64");
                        break;
                default:
                        break; /* ignored */
                }
        }
        fuzz_check(r == 0, "an accepted frame walks to its end");
        /* A wait that collects failures is a verb of its own. */
        fuzz_check(s->verb == (msg->type == MSG_WAIT && collect ? VERB_COLLECT_FAILURES
                                                                : verb_from_message_type(msg->type)),
                   "verb matches the message type");

        fuzz_check(s->n_paths == n_paths && s->n_paths <= l->max_paths, "path count");
        fuzz_check(s->n_pythons == n_pythons && s->n_pythons <= l->max_pythons, "interpreter count");
        fuzz_check(s->n_excludes == n_excludes && s->n_excludes <= l->max_excludes, "exclude count");
        fuzz_check(s->n_argv == n_argv && s->n_argv <= l->max_argv, "argv count");
        fuzz_check((s->paths == NULL) == (s->n_paths == 0), "paths array iff paths");

        if (s->verb == VERB_COMPILE && n_opt == 0)
                opt[n_opt++] = 0;
        fuzz_check(s->n_opt_levels == n_opt && n_opt <= 3, "optimization level count");
        for (size_t i = 0; i < s->n_opt_levels; i++) {
                fuzz_check(s->opt_levels[i] == opt[i] && s->opt_levels[i] <= 2, "optimization levels");
                for (size_t j = 0; j < i; j++)
                        fuzz_check(s->opt_levels[i] != s->opt_levels[j], "optimization levels distinct");
        }
        fuzz_check(s->mode == mode && s->mode >= 0 && s->mode < _INVALIDATION_MAX, "invalidation mode");
        fuzz_check(s->force == force && s->report_all == report_all && s->no_wait == no_wait &&
                           s->failed_only == failed_only,
                   "flags");
        /* Exact while it fits the int64 that records' times are; beyond, any
         * saturated value that is no earlier (spec.c saturates at UINT64_MAX
         * today; see test_since_fits_int64 in tests/unit/test-spec.c). */
        if (since_usec <= (uint64_t)INT64_MAX)
                fuzz_check(s->since_usec == since_usec, "since in microseconds");
        else
                fuzz_check(s->since_usec >= (uint64_t)INT64_MAX, "since saturates instead of wrapping");
        fuzz_check(s->limit == limit, "limit");

        fuzz_check((s->root != NULL) == (root != NULL), "root present");
        if (root)
                check_string_equal(s->root, root, "root kept verbatim");
        fuzz_check((s->package != NULL) == (package != NULL), "package present");
        if (package)
                check_string_equal(s->package, package, "package kept verbatim");
        fuzz_check((s->tool != NULL) == (tool != NULL), "tool present");
        if (tool)
                check_string_equal(s->tool, tool, "tool kept verbatim");
        fuzz_check((s->dpkg_package != NULL) == (dpkg != NULL), "dpkg package present");
        if (dpkg)
                check_string_equal(s->dpkg_package, dpkg, "dpkg package kept verbatim");
        fuzz_check((s->dpkg_script != NULL) == (script != NULL), "maintainer script present");
        if (script)
                check_string_equal(s->dpkg_script, script, "maintainer script kept verbatim");

        switch (s->verb) {
        case VERB_COMPILE:
                fuzz_check(s->n_paths >= 1 && s->n_opt_levels >= 1, "compile has a path and a level");
                fuzz_check(s->n_path_targets == n_targets && s->n_path_displays == n_displays,
                           "per-path value counts");
                fuzz_check(n_targets == 0 || n_targets == s->n_paths, "targets pair with the paths");
                fuzz_check(n_displays == 0 || n_displays == s->n_paths, "displays pair with the paths");
                fuzz_check(!explicit_target || (s->n_pythons <= 1 && s->n_opt_levels == 1),
                           "an explicit target has one interpreter and one level");
                fuzz_check(spec_has_explicit_target(s) == explicit_target, "explicit target seen");
                break;
        case VERB_WHY:
                fuzz_check(s->n_paths == 1, "why has exactly one path");
                break;
        case VERB_VERIFY:
        case VERB_REPAIR:
        case VERB_CLEAN:
                fuzz_check(s->n_paths >= 1 || s->package, "verify, repair, clean name paths or a package");
                break;
        default:
                break;
        }
}

/* What the parser did, to show that the run reached every verb and error. */
static unsigned long accepted_by_verb[_VERB_MAX];
static const int tallied_errors[] = { EBADMSG, EINVAL, E2BIG, ENAMETOOLONG };
static unsigned long rejected_by_error[ELEMENTSOF(tallied_errors)];

/* Something spec_parse() must not write on failure; never dereferenced. */
static char untouched_spec;

static void parse_with(const MsgReader *msg, const SpecLimits *l) {
        Spec *const sentinel = (Spec *)&untouched_spec;
        Spec *s = sentinel;
        char *message = (char *)"untouched";
        int r;

        r = spec_parse(msg, l, &s, &message);
        if (r == 0) {
                fuzz_check(s != sentinel && s != NULL, "a Spec on success");
                fuzz_check(message == NULL, "no message on success");
                check_spec(msg, l, s);
                accepted_by_verb[s->verb]++;
                fuzz_check(spec_free(s) == NULL, "spec_free returns NULL");
                fuzz_accepted++;
                return;
        }
        fuzz_check(r == -EBADMSG || r == -EINVAL || r == -E2BIG || r == -ENAMETOOLONG || r == -ENOMEM,
                   "spec_parse errno");
        fuzz_check(s == sentinel, "the output is left alone on failure");
        fuzz_check(message != NULL || r == -ENOMEM, "a refusal explains itself");
        if (message)
                fuzz_check(strlen(message) > 0, "a non-empty explanation");
        free(message);
        for (size_t i = 0; i < ELEMENTSOF(tallied_errors); i++)
                if (-r == tallied_errors[i])
                        rejected_by_error[i]++;
        fuzz_rejected++;
}

static void parse_all_limits(const uint8_t *frame, size_t size) {
        const SpecLimits limits[] = {
                SPEC_LIMITS_DEFAULT,
                { .max_paths = 2,
                  .max_excludes = 1,
                  .max_exclude_size = 8,
                  .max_pythons = 1,
                  .max_argv = 2,
                  .max_string = 8 },
                {},
        };
        MsgReader msg;

        if (msg_parse(frame, size, &msg) < 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(limits); i++)
                parse_with(&msg, &limits[i]);
}

/* ---- the frame-building program ---------------------------------------- */

static const uint16_t program_types[] = {
        MSG_COMPILE, MSG_STATUS, MSG_WAIT,  MSG_WHY,      MSG_HISTORY, MSG_VERIFY, MSG_REPAIR,
        MSG_CLEAN,   MSG_AUDIT,  MSG_ERROR, MSG_ACCEPTED, 0,           10,         0xffff,
};

static const uint16_t program_tags[] = {
        TAG_CTX_TOOL,
        TAG_CTX_DPKG_PACKAGE,
        TAG_CTX_ARGV,
        TAG_PATH,
        TAG_EXCLUDE,
        TAG_PYTHON,
        TAG_OPT_LEVEL,
        TAG_INVALIDATION,
        TAG_FORCE,
        TAG_PACKAGE,
        TAG_ROOT,
        TAG_NO_WAIT,
        TAG_REPORT_ALL,
        TAG_LIMIT,
        TAG_SINCE,
        TAG_FAILED_ONLY,
        TAG_COLLECT_FAILURES,
        TAG_CTX_DPKG_SCRIPT,
        TAG_PATH_TARGET,
        TAG_PATH_DISPLAY,
        TAG_STAT,
        TAG_COUNT_TOTAL,
        0,
        4,
        0xffff,
};

static const uint64_t program_edges[] = {
        0,         1,          2, 3, 4, 255, 1ull << 44, UINT64_MAX / 1000000u, UINT64_MAX / 1000000u + 1,
        INT64_MAX, UINT64_MAX,
};

static const size_t program_lengths[] = {
        0, 1, 8, 9, 1024, 1025, 4095, 4096, 4097, PATH_MAX - 1, PATH_MAX, PATH_MAX + 1, 2, 3, 16, 17,
};

/* Frames a program builds stay below this, so that each input is quick;
 * 4100 one-byte paths still fit, more fields than any limit allows. */
#define PROGRAM_MAX_FRAME (64u * 1024u)

enum {
        OP_U64_SMALL,
        OP_U64,
        OP_U64_EDGE,
        OP_ABSOLUTE,
        OP_BYTES,
        OP_LONG,
        OP_BAD_INT,
        OP_REPEAT,
};

typedef struct Program {
        const uint8_t *p;
        size_t left;
} Program;

static uint8_t program_byte(Program *p) {
        if (p->left == 0)
                return 0;
        p->left--;
        return *p->p++;
}

/* Up to @n bytes of the program, fewer at its end. */
static size_t program_take(Program *p, size_t n, const uint8_t **ret) {
        n = MIN(n, p->left);
        *ret = p->p;
        p->p += n;
        p->left -= n;
        return n;
}

/* Builds a frame from @data; returns false when the writer refused it. */
static bool program_build(const uint8_t *data, size_t size, uint8_t **ret_frame, size_t *ret_size) {
        _cleanup_free_ uint8_t *value = NULL;
        Program p = { .p = data, .left = size };
        size_t value_size = 0;
        uint16_t tag = 0;
        bool have_last = false;
        MsgWriter w;
        int r;

        /* The value of the last field, kept for OP_REPEAT. */
        value = malloc(PATH_MAX + 2);
        fuzz_check(value != NULL, "malloc");
        fuzz_check(msg_writer_init(&w, program_types[program_byte(&p) % ELEMENTSOF(program_types)]) == 0,
                   "msg_writer_init");

        while (p.left > 0 && w.error == 0 && w.size < PROGRAM_MAX_FRAME) {
                uint8_t op = program_byte(&p), sel;
                const uint8_t *bytes;
                size_t n;

                if (op >> 5 == OP_REPEAT) {
                        uint8_t count = program_byte(&p);
                        /* 255 goes past the default limits (4096 paths). */
                        size_t times = count == 0xff ? 4100 : count;

                        for (size_t i = 0;
                             have_last && i < times && w.error == 0 && w.size < PROGRAM_MAX_FRAME; i++)
                                msg_put_bytes(&w, tag, value, value_size);
                        continue;
                }

                tag = program_tags[(op & 0x1f) % ELEMENTSOF(program_tags)];
                switch (op >> 5) {
                case OP_U64_SMALL:
                        unaligned_write_le64(value, program_byte(&p));
                        value_size = 8;
                        break;
                case OP_U64:
                        memset(value, 0, 8);
                        n = program_take(&p, 8, &bytes);
                        memcpy(value, bytes, n);
                        value_size = 8;
                        break;
                case OP_U64_EDGE:
                        unaligned_write_le64(value,
                                             program_edges[program_byte(&p) % ELEMENTSOF(program_edges)]);
                        value_size = 8;
                        break;
                case OP_ABSOLUTE:
                        n = program_byte(&p);
                        n = program_take(&p, n, &bytes);
                        value[0] = '/';
                        memcpy(value + 1, bytes, n);
                        value_size = n + 1;
                        break;
                case OP_BYTES:
                        n = program_byte(&p);
                        value_size = program_take(&p, n, &bytes);
                        memcpy(value, bytes, value_size);
                        break;
                case OP_LONG:
                        sel = program_byte(&p);
                        value_size = program_lengths[sel % ELEMENTSOF(program_lengths)];
                        memset(value, 'a', value_size);
                        if (value_size > 0 && !(sel & 0x40))
                                value[0] = '/';
                        if (value_size > 2 && (sel & 0x80))
                                value[value_size / 2] = '\0';
                        break;
                default: /* OP_BAD_INT */
                        n = program_byte(&p) % 16;
                        value_size = program_take(&p, n, &bytes);
                        memcpy(value, bytes, value_size);
                        break;
                }
                msg_put_bytes(&w, tag, value, value_size);
                have_last = true;
        }

        r = msg_writer_finish(&w, ret_frame, ret_size);
        if (r < 0) {
                fuzz_check(r == -EMSGSIZE, "the writer refuses only oversized frames");
                msg_writer_done(&w);
                return false;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t frame_size_ = 0;

        /* The input as one raw frame. */
        parse_all_limits(data, size);

        /* The input as a program; what the writer builds must parse. */
        if (size > 0 && program_build(data, size, &frame, &frame_size_)) {
                MsgReader msg;

                fuzz_check(msg_parse(frame, frame_size_, &msg) == 0, "a written frame parses");
                parse_all_limits(frame, frame_size_);
        }
        return 0;
}

#ifndef FUZZ_LIBFUZZER

/* ---- seeds -------------------------------------------------------------- */

static void seed_frame(FuzzSeed *seeds, size_t *n, size_t max, const char *name, MsgWriter *w) {
        uint8_t *frame = NULL;
        size_t size = 0;

        fuzz_check(msg_writer_finish(w, &frame, &size) == 0, "seed frame");
        fuzz_seed_add(seeds, n, max, name, frame, size);
        free(frame);
}

static void put_context(MsgWriter *w, const char *verb) {
        msg_put_string(w, TAG_CTX_TOOL, "pycqueue");
        msg_put_string(w, TAG_CTX_ARGV, "pycqueue");
        msg_put_string(w, TAG_CTX_ARGV, verb);
}

/* A program seed: a type index, then ops (see the top of this file). */
typedef struct ProgramText {
        uint8_t buf[512];
        size_t size;
} ProgramText;

static size_t index_of_tag(uint16_t tag) {
        for (size_t i = 0; i < ELEMENTSOF(program_tags); i++)
                if (program_tags[i] == tag)
                        return i;
        fuzz_check(false, "tag in program_tags");
        return 0;
}

static void prog_type(ProgramText *t, uint16_t type) {
        for (size_t i = 0; i < ELEMENTSOF(program_types); i++)
                if (program_types[i] == type) {
                        t->buf[t->size++] = (uint8_t)i;
                        return;
                }
        fuzz_check(false, "type in program_types");
}

static void prog_u64(ProgramText *t, uint16_t tag, uint8_t v) {
        t->buf[t->size++] = (uint8_t)(OP_U64_SMALL << 5 | index_of_tag(tag));
        t->buf[t->size++] = v;
}

static void prog_edge(ProgramText *t, uint16_t tag, uint64_t v) {
        for (size_t i = 0; i < ELEMENTSOF(program_edges); i++)
                if (program_edges[i] == v) {
                        t->buf[t->size++] = (uint8_t)(OP_U64_EDGE << 5 | index_of_tag(tag));
                        t->buf[t->size++] = (uint8_t)i;
                        return;
                }
        fuzz_check(false, "value in program_edges");
}

/* "/" + @s as an absolute path, or @s as it is. */
static void prog_string(ProgramText *t, uint16_t tag, const char *s, bool absolute) {
        size_t len = strlen(s);

        fuzz_check(len < 256 && t->size + len + 2 <= sizeof(t->buf), "program seed size");
        t->buf[t->size++] = (uint8_t)((absolute ? OP_ABSOLUTE : OP_BYTES) << 5 | index_of_tag(tag));
        t->buf[t->size++] = (uint8_t)len;
        memcpy(t->buf + t->size, s, len);
        t->size += len;
}

static void prog_repeat(ProgramText *t, uint8_t count) {
        t->buf[t->size++] = (uint8_t)(OP_REPEAT << 5);
        t->buf[t->size++] = count;
}

static size_t build_seeds(FuzzSeed *seeds, size_t max) {
        static const uint8_t odd_path[] = "/tmp/odd\nname\xff\xfe/\xc3\x28.py";
        ProgramText t;
        MsgWriter w;
        size_t n = 0;

        /* Frames, a few per verb. */
        msg_writer_init(&w, MSG_COMPILE);
        put_context(&w, "compile");
        msg_put_string(&w, TAG_CTX_DPKG_PACKAGE, "python3-foo");
        msg_put_string(&w, TAG_PATH, "/usr/lib/python3/dist-packages/foo");
        msg_put_bytes(&w, TAG_PATH, odd_path, sizeof(odd_path) - 1);
        msg_put_string(&w, TAG_EXCLUDE, "/tests?/");
        msg_put_string(&w, TAG_PYTHON, "/usr/bin/python3");
        msg_put_u64(&w, TAG_OPT_LEVEL, 0);
        msg_put_u64(&w, TAG_OPT_LEVEL, 2);
        msg_put_u64(&w, TAG_OPT_LEVEL, 2);
        msg_put_u64(&w, TAG_INVALIDATION, INVALIDATION_CHECKED_HASH);
        msg_put_u64(&w, TAG_FORCE, 1);
        msg_put_string(&w, TAG_PACKAGE, "python3-foo");
        msg_put_u64(&w, TAG_REPORT_ALL, 1);
        msg_put_u64(&w, TAG_NO_WAIT, 0);
        msg_put_string(&w, TAG_ROOT, "/target");
        seed_frame(seeds, &n, max, "compile", &w);

        msg_writer_init(&w, MSG_COMPILE);
        msg_put_string(&w, TAG_PATH, "/x.py");
        seed_frame(seeds, &n, max, "compile-minimal", &w);

        msg_writer_init(&w, MSG_COMPILE);
        msg_put_string(&w, TAG_PATH, "/x.py");
        msg_put_string(&w, TAG_PATH, "/y.py");
        msg_put_bytes(&w, TAG_PATH_TARGET, odd_path, sizeof(odd_path) - 1);
        msg_put_string(&w, TAG_PATH_TARGET, "");
        msg_put_string(&w, TAG_PATH_DISPLAY, "x.py");
        msg_put_string(&w, TAG_PATH_DISPLAY, "");
        msg_put_u64(&w, TAG_OPT_LEVEL, 1);
        seed_frame(seeds, &n, max, "compile-explicit", &w);

        msg_writer_init(&w, MSG_STATUS);
        seed_frame(seeds, &n, max, "status", &w);

        msg_writer_init(&w, MSG_WAIT);
        msg_put_string(&w, TAG_PACKAGE, "python3-foo");
        seed_frame(seeds, &n, max, "wait", &w);

        msg_writer_init(&w, MSG_WAIT);
        msg_put_string(&w, TAG_CTX_TOOL, "pycqueue");
        msg_put_string(&w, TAG_CTX_DPKG_PACKAGE, "pycqueue");
        msg_put_string(&w, TAG_CTX_DPKG_SCRIPT, "postinst");
        msg_put_u64(&w, TAG_COLLECT_FAILURES, 1);
        seed_frame(seeds, &n, max, "wait-failures", &w);

        msg_writer_init(&w, MSG_WHY);
        put_context(&w, "why");
        msg_put_string(&w, TAG_PATH, "/usr/lib/python3/dist-packages/foo/__pycache__/a.cpython-311.pyc");
        msg_put_u64(&w, TAG_LIMIT, 10);
        seed_frame(seeds, &n, max, "why", &w);

        msg_writer_init(&w, MSG_HISTORY);
        put_context(&w, "history");
        msg_put_string(&w, TAG_PACKAGE, "python3-foo");
        msg_put_u64(&w, TAG_SINCE, 1700000000);
        msg_put_u64(&w, TAG_FAILED_ONLY, 1);
        msg_put_u64(&w, TAG_LIMIT, 100);
        seed_frame(seeds, &n, max, "history", &w);

        msg_writer_init(&w, MSG_HISTORY);
        msg_put_u64(&w, TAG_SINCE, UINT64_MAX);
        seed_frame(seeds, &n, max, "history-since-max", &w);

        msg_writer_init(&w, MSG_VERIFY);
        put_context(&w, "verify");
        msg_put_string(&w, TAG_PATH, "/usr/lib/python3");
        msg_put_string(&w, TAG_PYTHON, "/usr/bin/python3");
        seed_frame(seeds, &n, max, "verify", &w);

        msg_writer_init(&w, MSG_VERIFY);
        msg_put_string(&w, TAG_PACKAGE, "python3-foo");
        seed_frame(seeds, &n, max, "verify-package", &w);

        msg_writer_init(&w, MSG_REPAIR);
        put_context(&w, "repair");
        msg_put_string(&w, TAG_PATH, "/usr/lib/python3");
        msg_put_u64(&w, TAG_REPORT_ALL, 1);
        seed_frame(seeds, &n, max, "repair", &w);

        msg_writer_init(&w, MSG_CLEAN);
        put_context(&w, "clean");
        msg_put_string(&w, TAG_PACKAGE, "python3-foo");
        msg_put_string(&w, TAG_PYTHON, "/usr/bin/python3.11");
        seed_frame(seeds, &n, max, "clean", &w);

        msg_writer_init(&w, MSG_AUDIT);
        msg_put_u64(&w, TAG_SINCE, 1ull << 44);
        msg_put_u64(&w, TAG_LIMIT, 5);
        msg_put_bytes(&w, 0x7fff, "\0\0", 2);
        seed_frame(seeds, &n, max, "audit-unknown-tag", &w);

        /* Programs, one or two per verb. */
        t = (ProgramText){};
        prog_type(&t, MSG_COMPILE);
        prog_string(&t, TAG_CTX_TOOL, "py3compile", false);
        prog_string(&t, TAG_CTX_ARGV, "py3compile", false);
        prog_string(&t, TAG_PATH, "usr/lib/python3/dist-packages/foo", true);
        prog_repeat(&t, 3);
        prog_string(&t, TAG_EXCLUDE, "\\.git/", false);
        prog_string(&t, TAG_PYTHON, "usr/bin/python3", true);
        prog_u64(&t, TAG_OPT_LEVEL, 1);
        prog_u64(&t, TAG_OPT_LEVEL, 2);
        prog_u64(&t, TAG_INVALIDATION, 2);
        prog_u64(&t, TAG_FORCE, 1);
        prog_string(&t, TAG_ROOT, "target", true);
        fuzz_seed_add(seeds, &n, max, "prog-compile", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_STATUS);
        prog_string(&t, TAG_CTX_TOOL, "pycqueue", false);
        prog_u64(&t, 0xffff, 7);
        fuzz_seed_add(seeds, &n, max, "prog-status", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_WAIT);
        prog_string(&t, TAG_PACKAGE, "python3-foo", false);
        fuzz_seed_add(seeds, &n, max, "prog-wait", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_WAIT);
        prog_string(&t, TAG_CTX_DPKG_SCRIPT, "postinst", false);
        prog_u64(&t, TAG_COLLECT_FAILURES, 1);
        fuzz_seed_add(seeds, &n, max, "prog-wait-failures", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_WHY);
        prog_string(&t, TAG_PATH, "srv/a.py", true);
        prog_edge(&t, TAG_LIMIT, UINT64_MAX);
        fuzz_seed_add(seeds, &n, max, "prog-why", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_HISTORY);
        prog_edge(&t, TAG_SINCE, UINT64_MAX / 1000000u + 1);
        prog_u64(&t, TAG_FAILED_ONLY, 1);
        prog_string(&t, TAG_CTX_ARGV, "history", false);
        prog_repeat(&t, 200);
        fuzz_seed_add(seeds, &n, max, "prog-history", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_VERIFY);
        prog_string(&t, TAG_PATH, "usr", true);
        prog_string(&t, TAG_PACKAGE, "python3-foo", false);
        fuzz_seed_add(seeds, &n, max, "prog-verify", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_REPAIR);
        prog_string(&t, TAG_PACKAGE, "python3-foo", false);
        fuzz_seed_add(seeds, &n, max, "prog-repair", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_CLEAN);
        prog_string(&t, TAG_PATH, "opt/app", true);
        prog_string(&t, TAG_PYTHON, "usr/bin/pypy3", true);
        fuzz_seed_add(seeds, &n, max, "prog-clean", t.buf, t.size);

        t = (ProgramText){};
        prog_type(&t, MSG_AUDIT);
        prog_edge(&t, TAG_SINCE, 1ull << 44);
        prog_u64(&t, TAG_LIMIT, 3);
        fuzz_seed_add(seeds, &n, max, "prog-audit", t.buf, t.size);

        return n;
}

static bool report(unsigned long mutations) {
        bool ok = true;

        printf("fuzz-spec: accepted");
        for (Verb v = 0; v < _VERB_MAX; v++) {
                printf(" %s=%lu", verb_to_string(v), accepted_by_verb[v]);
                ok = ok && accepted_by_verb[v] > 0;
        }
        printf("; rejected");
        for (size_t i = 0; i < ELEMENTSOF(tallied_errors); i++) {
                printf(" %s=%lu", strerrorname_np(tallied_errors[i]), rejected_by_error[i]);
                ok = ok && rejected_by_error[i] > 0;
        }
        printf("\n");
        if (mutations >= 1000 && !ok) {
                fprintf(stderr, "fuzz-spec: some verb was never accepted or some error never reached\n");
                return false;
        }
        return true;
}

int main(int argc, char *argv[]) {
        static const FuzzTarget target = {
                .report = report,
                .name = "fuzz-spec",
                .corpus = "tests/fuzz/corpus-spec",
                .mutations = 20000,
                .build_seeds = build_seeds,
                .frames = true,
        };

        return fuzz_main(&target, argc, argv);
}

#endif /* FUZZ_LIBFUZZER */
