/* SPDX-License-Identifier: MIT */
#pragma once

/* What a client asked, as plain validated data (see spec.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward.h"
#include "macro.h"
#include "protocol.h"

/* The verbs, in the order of the authorisation table (dispatch.c). */
typedef enum Verb {
        VERB_STATUS,
        VERB_COMPILE,
        VERB_WAIT,
        VERB_WHY,
        VERB_HISTORY,
        VERB_VERIFY,
        VERB_REPAIR,
        VERB_CLEAN,
        VERB_AUDIT,
        VERB_COLLECT_FAILURES, /* MSG_WAIT with TAG_COLLECT_FAILURES */
        _VERB_MAX,
        _VERB_INVALID = -EINVAL,
} Verb;

/* Bounds the parser enforces; every list a client sends is capped. */
typedef struct SpecLimits {
        size_t max_paths;          /* TAG_PATH fields */
        size_t max_excludes;       /* TAG_EXCLUDE fields */
        size_t max_exclude_size;   /* bytes of one pattern */
        size_t max_pythons;        /* TAG_PYTHON fields */
        size_t max_argv;           /* TAG_CTX_ARGV fields */
        size_t max_string;         /* bytes of a package, tool or argv string */
        size_t max_clean_tags;     /* TAG_CLEAN_TAG fields */
} SpecLimits;

/* The longest cache tag a clean may name ("cpython-311" is 11 bytes). */
#define SPEC_MAX_CLEAN_TAG 64

#define SPEC_LIMITS_DEFAULT                                                                                 \
        ((SpecLimits){ .max_paths = 4096,                                                                   \
                       .max_excludes = 64,                                                                  \
                       .max_exclude_size = 1024,                                                            \
                       .max_pythons = 8,                                                                    \
                       .max_argv = 256,                                                                     \
                       .max_string = 4096,                                                                  \
                       .max_clean_tags = 8 })

/* True when @s names an explicit target for at least one path. */
bool spec_has_explicit_target(const Spec *s);

/* A parsed request. Every string is NUL-terminated, holds no NUL, and is
 * the client's text verbatim: paths are absolute but not canonicalized, no
 * interpreter is resolved, no pattern compiled. Building a Spec has no side
 * effect at all. */
struct Spec {
        Verb verb;
        char **paths;              /* absolute, < PATH_MAX */
        size_t n_paths;
        char **excludes;           /* POSIX extended regexes, uncompiled */
        size_t n_excludes;
        char **pythons;            /* absolute interpreter paths, as sent */
        size_t n_pythons;
        unsigned opt_levels[3];    /* distinct, each 0..2; at least one for compile */
        size_t n_opt_levels;
        InvalidationMode mode;
        bool force;
        bool report_all;
        bool no_wait;
        bool failed_only;
        bool collect_failures;     /* wait: then collect the --no-wait failures */
        char *root;                /* --root, absolute; NULL when absent */
        char *package;             /* --package */
        uint64_t since_usec;       /* 0 = no bound; saturates at INT64_MAX instead of wrapping */
        uint64_t limit;            /* 0 = the verb's default */
        bool clean_sources;        /* clean: the paths are source files, py3clean's rule */
        char **clean_tags;         /* with clean_sources: only these tags; "" = legacy .pyc/.pyo */
        size_t n_clean_tags;
        /* compile: per path, aligned with @paths; NULL when the request sent
         * none, else exactly n_paths entries; "" = the default */
        char **path_targets; /* explicit .pyc paths, absolute, < PATH_MAX */
        size_t n_path_targets;
        char **path_displays; /* explicit co_filename, < PATH_MAX bytes */
        size_t n_path_displays;

        /* client context, recorded as provenance */
        char *tool;
        char *dpkg_package;
        char *dpkg_script;         /* $DPKG_MAINTSCRIPT_NAME */
        char **argv;
        size_t n_argv;
};

/* The verb a message type asks for, or -EBADMSG for a type no client sends. */
int verb_from_message_type(uint16_t type);
const char *verb_to_string(Verb v);
/* True for the verbs that change files: compile, repair, clean. */
bool verb_mutates(Verb v);

/* Builds a Spec from an untrusted frame. Returns 0, or a negative errno with
 * an explanation for the client in @ret_message (which may stay NULL when
 * the errno says it all). Touches nothing but memory. */
int spec_parse(const MsgReader *msg, const SpecLimits *limits, Spec **ret, char **ret_message);
Spec *spec_free(Spec *s);
DEFINE_CLEANUP(Spec *, spec_free);
