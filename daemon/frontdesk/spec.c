/* SPDX-License-Identifier: MIT */
/* The parser of the front desk: one untrusted frame in, one plain Spec out.
 *
 * Everything a client sends is read here and nowhere else, for every verb,
 * and only into memory: no path is opened or canonicalized, no interpreter
 * looked up, no pattern compiled, no row written. Authorisation is then
 * decided on the Spec (dispatch.c) before anything acts on it, so nothing a
 * refused caller sent has had any effect. Every list is counted against
 * SpecLimits and every string against its size; integers are range checked
 * (a --since far in the future saturates instead of wrapping to the past).
 * Fields a verb does not take are ignored, as unknown tags are, so clients
 * and daemons of different versions keep talking. */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "spec.h"
#include "util.h"

static const char *const verb_names[_VERB_MAX] = {
        [VERB_STATUS] = "status",   [VERB_COMPILE] = "compile",
        [VERB_WAIT] = "wait",       [VERB_WHY] = "why",
        [VERB_HISTORY] = "history", [VERB_VERIFY] = "verify",
        [VERB_REPAIR] = "repair",   [VERB_CLEAN] = "clean",
        [VERB_AUDIT] = "audit",     [VERB_COLLECT_FAILURES] = "wait --failures",
};

int verb_from_message_type(uint16_t type) {
        switch (type) {
        case MSG_STATUS:
                return VERB_STATUS;
        case MSG_COMPILE:
                return VERB_COMPILE;
        case MSG_WAIT:
                return VERB_WAIT;
        case MSG_WHY:
                return VERB_WHY;
        case MSG_HISTORY:
                return VERB_HISTORY;
        case MSG_VERIFY:
                return VERB_VERIFY;
        case MSG_REPAIR:
                return VERB_REPAIR;
        case MSG_CLEAN:
                return VERB_CLEAN;
        case MSG_AUDIT:
                return VERB_AUDIT;
        default:
                return -EBADMSG;
        }
}

const char *verb_to_string(Verb v) {
        return v >= 0 && v < _VERB_MAX ? verb_names[v] : "unknown";
}

bool verb_mutates(Verb v) {
        return v == VERB_COMPILE || v == VERB_REPAIR || v == VERB_CLEAN;
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

Spec *spec_free(Spec *s) {
        if (!s)
                return NULL;
        strv_free(s->paths, s->n_paths);
        strv_free(s->excludes, s->n_excludes);
        strv_free(s->pythons, s->n_pythons);
        strv_free(s->argv, s->n_argv);
        strv_free(s->clean_tags, s->n_clean_tags);
        strv_free(s->path_targets, s->n_path_targets);
        strv_free(s->path_displays, s->n_path_displays);
        free(s->root);
        free(s->package);
        free(s->tool);
        free(s->dpkg_package);
        free(s->dpkg_script);
        free(s);
        return NULL;
}

/* Appends a copy of a string field to @v, which holds @*n of at most @max. */
static int strv_append(char ***v, size_t *n, size_t max, const MsgField *f, size_t max_size) {
        char *s, **nv;
        int r;

        if (*n >= max)
                return -E2BIG;
        if (f->size > max_size)
                return -ENAMETOOLONG;
        r = field_strdup(f, &s);
        if (r < 0)
                return r;
        nv = realloc(*v, (*n + 1) * sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        *v = nv;
        (*v)[(*n)++] = s;
        return 0;
}

/* An absolute path: not empty, shorter than PATH_MAX, starting with '/'. */
static int append_path(char ***v, size_t *n, size_t max, const MsgField *f, char **ret_message,
                       const char *what) {
        int r;

        if (f->size == 0 || f->size >= PATH_MAX || f->data[0] != '/')
                return error_message(ret_message, -EINVAL,
                                     "%s must be an absolute path shorter than %d bytes", what, PATH_MAX);
        r = strv_append(v, n, max, f, PATH_MAX - 1);
        if (r == -E2BIG)
                return error_message(ret_message, r, "the request names more than %zu %ss", max, what);
        return r;
}

static int replace_string(const MsgField *f, size_t max_size, char **field) {
        if (f->size > max_size)
                return -ENAMETOOLONG;
        return field_replace_string(f, field);
}

static int get_bool(const MsgField *f, bool *ret) {
        uint64_t v;
        int r = field_u64(f, &v);

        if (r < 0)
                return r;
        *ret = v != 0;
        return 0;
}

bool spec_has_explicit_target(const Spec *s) {
        for (size_t i = 0; i < s->n_path_targets; i++)
                if (s->path_targets[i][0] != '\0')
                        return true;
        return false;
}

/* One per-path value of a compile (TAG_PATH_TARGET, TAG_PATH_DISPLAY):
 * empty means the default; a target is an absolute path, a display any
 * name shorter than PATH_MAX. At most one per path the request may name. */
static int append_per_path(char ***v, size_t *n, size_t max, const MsgField *f, bool absolute,
                           char **ret_message, const char *what) {
        int r;

        if (f->size >= PATH_MAX || (absolute && f->size > 0 && f->data[0] != '/'))
                return error_message(ret_message, -EINVAL, "%s must be %sshorter than %d bytes", what,
                                     absolute ? "empty or an absolute path " : "", PATH_MAX);
        r = strv_append(v, n, max, f, PATH_MAX - 1);
        if (r == -E2BIG)
                return error_message(ret_message, r, "the request names more than %zu %ss", max, what);
        return r;
}

static int parse_field(Spec *s, const MsgField *f, const SpecLimits *l, char **ret_message) {
        uint64_t v;
        int r;

        switch (f->tag) {
        case TAG_PATH:
                return append_path(&s->paths, &s->n_paths, l->max_paths, f, ret_message, "path");
        case TAG_PATH_TARGET:
                if (s->verb != VERB_COMPILE)
                        return 0;
                return append_per_path(&s->path_targets, &s->n_path_targets, l->max_paths, f, true,
                                       ret_message, "explicit target");
        case TAG_PATH_DISPLAY:
                if (s->verb != VERB_COMPILE)
                        return 0;
                return append_per_path(&s->path_displays, &s->n_path_displays, l->max_paths, f, false,
                                       ret_message, "display name");
        case TAG_PYTHON:
                return append_path(&s->pythons, &s->n_pythons, l->max_pythons, f, ret_message,
                                   "interpreter");
        case TAG_EXCLUDE:
                r = strv_append(&s->excludes, &s->n_excludes, l->max_excludes, f, l->max_exclude_size);
                if (r == -E2BIG || r == -ENAMETOOLONG)
                        return error_message(ret_message, -E2BIG,
                                             "at most %zu exclude patterns of at most %zu bytes",
                                             l->max_excludes, l->max_exclude_size);
                return r;
        case TAG_CTX_ARGV:
                r = strv_append(&s->argv, &s->n_argv, l->max_argv, f, l->max_string);
                /* The command line is context only: a long one is cut, not refused. */
                return r == -E2BIG || r == -ENAMETOOLONG ? 0 : r;
        case TAG_OPT_LEVEL:
                r = field_u64(f, &v);
                if (r < 0)
                        return r;
                if (v > 2)
                        return error_message(ret_message, -EINVAL,
                                             "optimization level %llu is not 0, 1 or 2",
                                             (unsigned long long)v);
                for (size_t i = 0; i < s->n_opt_levels; i++)
                        if (s->opt_levels[i] == v)
                                return 0;
                s->opt_levels[s->n_opt_levels++] = (unsigned)v; /* at most 3 distinct values */
                return 0;
        case TAG_INVALIDATION:
                r = field_u64(f, &v);
                if (r < 0)
                        return r;
                if (v >= _INVALIDATION_MAX)
                        return error_message(ret_message, -EINVAL, "unknown invalidation mode %llu",
                                             (unsigned long long)v);
                s->mode = (InvalidationMode)v;
                return 0;
        case TAG_FORCE:
                return get_bool(f, &s->force);
        case TAG_REPORT_ALL:
                return get_bool(f, &s->report_all);
        case TAG_NO_WAIT:
                return get_bool(f, &s->no_wait);
        case TAG_FAILED_ONLY:
                return get_bool(f, &s->failed_only);
        case TAG_COLLECT_FAILURES:
                return get_bool(f, &s->collect_failures);
        case TAG_PACKAGE:
                return replace_string(f, l->max_string, &s->package);
        case TAG_CTX_TOOL:
                return replace_string(f, l->max_string, &s->tool);
        case TAG_CTX_DPKG_PACKAGE:
                return replace_string(f, l->max_string, &s->dpkg_package);
        case TAG_CTX_DPKG_SCRIPT:
                return replace_string(f, l->max_string, &s->dpkg_script);
        case TAG_ROOT:
                if (f->size == 0 || f->size >= PATH_MAX || f->data[0] != '/')
                        return error_message(ret_message, -EINVAL, "--root must be an absolute path");
                return field_replace_string(f, &s->root);
        case TAG_SINCE:
                r = field_u64(f, &v);
                if (r < 0)
                        return r;
                /* Seconds to microseconds, saturating at what the database
                 * can compare (a signed 64-bit integer): a time beyond it
                 * means "nothing is that recent", never a wrap to the past. */
                s->since_usec = v > (uint64_t)INT64_MAX / 1000000u ? (uint64_t)INT64_MAX : v * 1000000u;
                return 0;
        case TAG_LIMIT:
                return field_u64(f, &s->limit);
        case TAG_CLEAN_SOURCES:
                return get_bool(f, &s->clean_sources);
        case TAG_CLEAN_TAG:
                /* A cache tag names files inside one directory: no '/'. */
                if (memchr(f->data, '/', f->size))
                        return error_message(ret_message, -EINVAL, "a cache tag holds no '/'");
                r = strv_append(&s->clean_tags, &s->n_clean_tags, l->max_clean_tags, f, SPEC_MAX_CLEAN_TAG);
                if (r == -E2BIG || r == -ENAMETOOLONG)
                        return error_message(ret_message, -E2BIG,
                                             "at most %zu cache tags of at most %d bytes", l->max_clean_tags,
                                             SPEC_MAX_CLEAN_TAG);
                return r;
        default:
                return 0; /* unknown or another verb's field */
        }
}

static int check_verb(const Spec *s, char **ret_message) {
        switch (s->verb) {
        case VERB_COMPILE:
                if (s->n_paths == 0)
                        return error_message(ret_message, -EINVAL, "no paths to compile");
                /* Per-path values pair with the paths by position: all or none. */
                if (s->n_path_targets > 0 && s->n_path_targets != s->n_paths)
                        return error_message(ret_message, -EINVAL,
                                             "%zu explicit targets for %zu paths: give one per path or none",
                                             s->n_path_targets, s->n_paths);
                if (s->n_path_displays > 0 && s->n_path_displays != s->n_paths)
                        return error_message(ret_message, -EINVAL,
                                             "%zu display names for %zu paths: give one per path or none",
                                             s->n_path_displays, s->n_paths);
                /* An explicit target is one .pyc: one interpreter, one level. */
                if (spec_has_explicit_target(s) && (s->n_pythons > 1 || s->n_opt_levels > 1))
                        return error_message(
                                ret_message, -EINVAL,
                                "an explicit target takes one interpreter and one optimization level");
                break;
        case VERB_WHY:
                if (s->n_paths != 1)
                        return error_message(ret_message, -EINVAL, "why takes exactly one path");
                break;
        case VERB_VERIFY:
        case VERB_REPAIR:
                if (s->n_paths == 0 && !s->package)
                        return error_message(ret_message, -EINVAL, "name paths or a package");
                break;
        case VERB_CLEAN:
                /* py3clean's mode names its sources one by one (the
                 * package is then context only); its tags and --python are
                 * two ways to say the same thing, so one or the other. */
                if (s->clean_sources && s->n_paths == 0)
                        return error_message(ret_message, -EINVAL, "name the sources to clean");
                if (s->clean_sources && s->n_pythons > 0)
                        return error_message(ret_message, -EINVAL,
                                             "a clean of sources takes cache tags, not interpreters");
                if (!s->clean_sources && s->n_clean_tags > 0)
                        return error_message(ret_message, -EINVAL, "cache tags need TAG_CLEAN_SOURCES");
                if (s->n_paths == 0 && !s->package)
                        return error_message(ret_message, -EINVAL, "name paths or a package");
                break;
        default:
                break;
        }
        return 0;
}

int spec_parse(const MsgReader *msg, const SpecLimits *limits, Spec **ret, char **ret_message) {
        _cleanup_(spec_freep) Spec *s = NULL;
        MsgReader rd = *msg;
        MsgField f;
        int r;

        *ret_message = NULL;
        r = verb_from_message_type(msg->type);
        if (r < 0)
                return error_message(ret_message, r, "unknown message type %u", msg->type);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->verb = (Verb)r;
        s->mode = INVALIDATION_TIMESTAMP;

        while ((r = msg_next(&rd, &f)) > 0) {
                r = parse_field(s, &f, limits, ret_message);
                if (r < 0) {
                        if (!*ret_message)
                                (void)error_message(ret_message, r, "invalid %s request: %s",
                                                    verb_to_string(s->verb),
                                                    r == -EBADMSG ? "malformed field" : strerror(-r));
                        return r;
                }
        }
        if (r < 0)
                return error_message(ret_message, r, "malformed frame");
        /* Collecting the failures of --no-wait requests is a wait that
         * then reads and clears them: a verb of its own, so that the
         * authorisation table (dispatch.c) decides who may. */
        if (s->verb == VERB_WAIT && s->collect_failures)
                s->verb = VERB_COLLECT_FAILURES;
        r = check_verb(s, ret_message);
        if (r < 0)
                return r;
        if (s->verb == VERB_COMPILE && s->n_opt_levels == 0)
                s->opt_levels[s->n_opt_levels++] = 0;
        *ret = TAKE_PTR(s);
        return 0;
}
