/* SPDX-License-Identifier: MIT */
#pragma once

/* Turns the paths of a compile request into (source, target) pairs, on an
 * I/O thread (see expand.c). */

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pycheader.h"
#include "protocol.h"
#include "macro.h"

typedef struct ExpandInterpreter {
        char *cache_tag;
        uint8_t magic[4];
        PycHashAlgo hash_algo;
} ExpandInterpreter;

/* Everything the walk needs, owned by the request and read-only while the
 * walk runs. */
typedef struct ExpandInput {
        char **paths;
        size_t n_paths;
        char *const *path_targets;  /* NULL, or one per path: explicit .pyc, "" = default */
        char *const *path_displays; /* NULL, or one per path: co_filename, "" = default */
        const regex_t *excludes;
        size_t n_excludes;
        ExpandInterpreter *interpreters;
        size_t n_interpreters;
        const unsigned *opt_levels;
        size_t n_opt_levels;
        InvalidationMode mode;
        bool force;
        size_t max_files;
        const char *root; /* paths are inside this root (rootpath.h); NULL: ours */
} ExpandInput;

typedef struct ExpandTarget {
        char *path;
        bool up_to_date; /* a hint: re-checked under the source lock */
} ExpandTarget;

/* One source, or one requested path that failed (@error_type set). Targets
 * are ordered interpreter-major: targets[i * n_opt_levels + k]. With an
 * explicit target there is one interpreter and one level, and targets[0]
 * is that path, its directory canonicalized. */
typedef struct ExpandEntry {
        char *source;
        char *display; /* co_filename; NULL = @source */
        bool explicit_target;
        char *error_type;
        char *error_message;
        ExpandTarget *targets;
} ExpandEntry;

typedef struct ExpandResult {
        ExpandEntry *entries;
        size_t n_entries, allocated;
        size_t n_targets_per_entry;
        int error;            /* request-level failure, e.g. -E2BIG */
        char *error_message;
} ExpandResult;

/* Walks; never fails as a whole except for -ENOMEM or the file limit,
 * which are reported in the result. */
ExpandResult *expand_run(const ExpandInput *in);
ExpandResult *expand_result_free(ExpandResult *r);
DEFINE_CLEANUP(ExpandResult *, expand_result_free);
