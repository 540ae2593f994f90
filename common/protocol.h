/* SPDX-License-Identifier: MIT */
#pragma once

/* The client protocol codec, shared by pycqueue and pycqueued.
 *
 * A frame on the stream socket is
 *
 *     u32 length (little endian)      length of everything after it
 *     u16 version (PROTOCOL_VERSION)
 *     u16 type    (MSG_*)
 *     field*      u16 tag (TAG_*), u32 size, size bytes of data
 *
 * Every length is checked against the frame before anything is read; a frame
 * is at most PROTOCOL_MAX_FRAME bytes. Strings are carried as raw bytes
 * without a terminating NUL, so a path may hold any byte but NUL. Integers
 * are u64 little endian (size 8). Unknown tags are skipped, so either side
 * can add fields without breaking the other. See doc/protocol.md. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTOCOL_VERSION 1
#define PROTOCOL_HEADER_SIZE 8u            /* length + version + type */
#define PROTOCOL_FIELD_HEADER_SIZE 6u      /* tag + size */
#define PROTOCOL_MAX_FRAME (16u * 1024u * 1024u)

typedef enum MessageType {
        /* client → daemon */
        MSG_COMPILE = 1,     /* paths and options; answered by ACCEPTED, PROGRESS/RESULT*, DONE */
        MSG_STATUS = 2,      /* answered by STATUS_REPLY */
        MSG_WAIT = 3,        /* optional TAG_PACKAGE; answered by DONE when drained. With
                              * TAG_COLLECT_FAILURES: then one RESULT per stored failure of a
                              * --no-wait request, DONE counting them (privileged only) */
        /* Administration: each is answered by MSG_RECORD* then MSG_DONE (or
         * MSG_ERROR). A record is a list of TAG_STAT fields, like a status. */
        MSG_WHY = 4,         /* TAG_PATH (a .py or .pyc), TAG_LIMIT */
        MSG_HISTORY = 5,     /* TAG_PATH?, TAG_PACKAGE?, TAG_SINCE?, TAG_FAILED_ONLY?, TAG_LIMIT? */
        MSG_VERIFY = 6,      /* TAG_PATH* and/or TAG_PACKAGE; records {path, problem, detail} */
        MSG_REPAIR = 7,      /* as VERIFY; records {path, problem, action, result} (mutating) */
        MSG_CLEAN = 8,       /* TAG_PATH*, TAG_PACKAGE?, TAG_PYTHON*, TAG_CLEAN_SOURCES?, TAG_CLEAN_TAG*;
                              * records {path} or {path, error} (mutating) */
        MSG_AUDIT = 9,       /* TAG_SINCE?, TAG_LIMIT?; records of foreign .pyc writes */

        /* daemon → client */
        MSG_ACCEPTED = 16,   /* TAG_COUNT_TOTAL: the number of file results to expect */
        MSG_PROGRESS = 17,   /* TAG_COUNT_DONE, TAG_COUNT_TOTAL */
        MSG_RESULT = 18,     /* one file: TAG_RESULT_* and for failures TAG_ERROR_* */
        MSG_DONE = 19,       /* TAG_COUNT_* (and for admin verbs TAG_STAT fields): the summary;
                              * the last message of a request */
        MSG_ERROR = 20,      /* TAG_ERRNO (positive errno), TAG_ERROR_MESSAGE; ends the request */
        MSG_STATUS_REPLY = 21, /* TAG_STAT fields, in order */
        MSG_RECORD = 22,     /* one record of an administration reply: TAG_STAT fields */
} MessageType;

typedef enum Tag {
        /* client context, recorded as provenance */
        TAG_CTX_TOOL = 1,          /* string: the client tool's name ("pycqueue", "py3compile") */
        TAG_CTX_DPKG_PACKAGE = 2,  /* string: $DPKG_MAINTSCRIPT_PACKAGE */
        TAG_CTX_ARGV = 3,          /* string, repeated: the client's command line */
        TAG_CTX_DPKG_SCRIPT = 4,   /* string: $DPKG_MAINTSCRIPT_NAME ("postinst", ...) */

        /* compile request */
        TAG_PATH = 10,             /* bytes, repeated: absolute file or directory path */
        TAG_EXCLUDE = 11,          /* string, repeated: POSIX extended regex on the full path */
        TAG_PYTHON = 12,           /* bytes, repeated: absolute interpreter path */
        TAG_OPT_LEVEL = 13,        /* u64, repeated: 0, 1 or 2 */
        TAG_INVALIDATION = 14,     /* u64: InvalidationMode */
        TAG_FORCE = 15,            /* u64: 1 = recompile up-to-date targets */
        TAG_PACKAGE = 16,          /* string: --package, also for MSG_WAIT */
        TAG_ROOT = 17,             /* bytes: --root (reserved) */
        TAG_NO_WAIT = 18,          /* u64: 1 = return once durably queued (reserved) */
        TAG_REPORT_ALL = 19,       /* u64: 1 = a MSG_RESULT for every file, not only failures */
        TAG_LIMIT = 20,            /* u64: at most this many records */
        TAG_SINCE = 21,            /* u64: only records at or after this time (Unix seconds) */
        TAG_FAILED_ONLY = 22,      /* u64: 1 = only failed jobs */
        TAG_CLEAN_SOURCES = 23,    /* u64: 1 = MSG_CLEAN's TAG_PATHs are source files; remove their
                                    * compiled files by py3clean's rule */
        TAG_CLEAN_TAG = 24,        /* string, repeated: with TAG_CLEAN_SOURCES, only NAME.TAG.py[co];
                                    * "" = only the legacy NAME.pyc/NAME.pyo beside the source */
        TAG_COLLECT_FAILURES = 25, /* u64: 1 = MSG_WAIT collects and clears the failures of
                                    * --no-wait requests once drained (26 is reserved for it) */
        TAG_PATH_TARGET = 27,      /* bytes, repeated: MSG_COMPILE, none or one per TAG_PATH, in order:
                                    * that path's .pyc at an explicit absolute path; "" = the PEP 3147
                                    * target. Needs a source file, one interpreter, one level */
        TAG_PATH_DISPLAY = 28,     /* bytes, repeated: MSG_COMPILE, none or one per TAG_PATH, in order:
                                    * the name recorded as co_filename; "" = the canonical source path */

        /* counts */
        TAG_COUNT_TOTAL = 30,
        TAG_COUNT_DONE = 31,
        TAG_COUNT_COMPILED = 32,
        TAG_COUNT_UP_TO_DATE = 33,
        TAG_COUNT_COALESCED = 34,
        TAG_COUNT_FAILED = 35,

        /* one file's result */
        TAG_RESULT_SOURCE = 40,    /* bytes: source path */
        TAG_RESULT_TARGET = 41,    /* bytes: .pyc path (absent when unknown) */
        TAG_RESULT_OUTCOME = 42,   /* u64: Outcome */
        TAG_ERROR_TYPE = 43,       /* string: "SyntaxError", "FileNotFoundError", ... */
        TAG_ERROR_LINE = 44,       /* u64: 0 when not applicable */
        TAG_ERROR_MESSAGE = 45,    /* string */
        TAG_ERRNO = 46,            /* u64: positive errno, in MSG_ERROR */
        TAG_ERROR_DETAIL = 47,   /* string: of a compile error, the text py_compile's PyCompileError
                                  * carries as its msg (the compiling interpreter's own wording) */

        /* status: "key\0" then one kind byte ('n' JSON number text, 's' string,
         * 'b' "true"/"false") then the value. Keys are dotted paths; a numeric
         * component is an array index ("workers.0.interpreter"). */
        TAG_STAT = 50,
} Tag;

typedef enum InvalidationMode {
        INVALIDATION_TIMESTAMP = 0,
        INVALIDATION_CHECKED_HASH = 1,
        INVALIDATION_UNCHECKED_HASH = 2,
        _INVALIDATION_MAX,
} InvalidationMode;

typedef enum Outcome {
        OUTCOME_COMPILED = 0,
        OUTCOME_UP_TO_DATE = 1,
        OUTCOME_COALESCED = 2,     /* compiled by a job another request had queued */
        OUTCOME_FAILED = 3,
        _OUTCOME_MAX,
} Outcome;

const char *invalidation_mode_to_string(InvalidationMode m);
int invalidation_mode_from_string(const char *s); /* mode, or -EINVAL */
const char *outcome_to_string(Outcome o);

/* Builds one frame in a growing buffer. Every put fails with -EMSGSIZE once the
 * frame would exceed PROTOCOL_MAX_FRAME, and -ENOMEM on allocation failure;
 * after a failure the writer stays failed, so callers may check only at
 * msg_writer_finish(). */
typedef struct MsgWriter {
        uint8_t *buf;
        size_t size;
        size_t allocated;
        int error;
} MsgWriter;

#define MSG_WRITER_NULL ((MsgWriter){ .buf = NULL })

int msg_writer_init(MsgWriter *w, uint16_t type);
int msg_put_bytes(MsgWriter *w, uint16_t tag, const void *data, size_t size);
int msg_put_string(MsgWriter *w, uint16_t tag, const char *s);
int msg_put_u64(MsgWriter *w, uint16_t tag, uint64_t value);
int msg_put_stat(MsgWriter *w, const char *key, char kind, const char *value);
/* Completes the length prefix and hands the frame to the caller, who frees it.
 * The writer is left empty. */
int msg_writer_finish(MsgWriter *w, uint8_t **ret_frame, size_t *ret_size);
void msg_writer_done(MsgWriter *w); /* frees whatever the writer holds */

/* Given the first @have bytes of a stream, returns 0 when more bytes are needed
 * to know the frame size, the whole frame size (> 0) once known, or -EMSGSIZE
 * / -EBADMSG when the header is invalid. */
int64_t frame_size(const uint8_t *data, size_t have);

/* A parsed frame: the whole frame is validated by msg_parse(), so iteration
 * never reads out of bounds. The reader borrows @data. */
typedef struct MsgReader {
        uint16_t type;
        const uint8_t *data;
        size_t size;
        size_t pos;
} MsgReader;

typedef struct MsgField {
        uint16_t tag;
        const uint8_t *data;
        uint32_t size;
} MsgField;

int msg_parse(const uint8_t *frame, size_t size, MsgReader *ret);
/* Returns 1 and fills @ret for the next field, 0 at the end. */
int msg_next(MsgReader *r, MsgField *ret);

int field_u64(const MsgField *f, uint64_t *ret);                 /* -EBADMSG unless size 8 */
/* Copies a string field into a new NUL-terminated string; -EBADMSG when it
 * holds a NUL byte. */
int field_strdup(const MsgField *f, char **ret);
/* field_strdup() into *@field, freeing what it held. */
int field_replace_string(const MsgField *f, char **field);
/* Splits a TAG_STAT field. Pointers borrow the frame; @ret_value is not NUL
 * terminated. */
int field_stat(const MsgField *f, const char **ret_key, char *ret_kind, const uint8_t **ret_value,
               size_t *ret_value_size);
