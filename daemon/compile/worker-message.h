/* SPDX-License-Identifier: MIT */
#pragma once

/* What a worker says, parsed: pure functions over untrusted bytes, shared
 * by worker.c and the fuzzer (see worker-message.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pycheader.h"

/* Frames from a worker: a little-endian u32 length, then the payload. */
#define WORKER_FRAME_HEADER 4
/* Longest cache tag, version or implementation name a worker may report. */
#define WORKER_MAX_NAME 256
/* Error texts are cut to these lengths (not counting the NUL). */
#define WORKER_MAX_ERROR_TYPE 128
#define WORKER_MAX_ERROR_MESSAGE 4096
#define WORKER_MAX_ERROR_DETAIL 16384
/* The string a worker hashes in its hello, to reveal its hash variant. */
#define WORKER_PROBE "pycqueue"

typedef struct WorkerInfo {
        uint8_t magic[4];
        PycHashAlgo hash_algo;
        char *cache_tag;
        char *version;
        char *implementation;
} WorkerInfo;

/* A compile result. On success @pyc holds the complete .pyc; otherwise
 * @error_type/@error_message (and @error_line for syntax errors). */
typedef struct WorkerReply {
        uint64_t job_id;
        bool ok;
        const uint8_t *pyc;
        size_t pyc_size;
        uint32_t error_line;
        const char *error_type;
        const char *error_message;
        const char *error_detail; /* py_compile's text for it; NULL when the worker sent none */
} WorkerReply;

typedef struct WorkerMessage {
        bool hello;        /* else a reply */
        WorkerInfo info;   /* hello: owned, see worker_message_done() */
        WorkerReply reply; /* reply: @pyc points into the parsed payload,
                            * the error texts into the message itself */
        char *error_type_buf, *error_message_buf, *error_detail_buf;
} WorkerMessage;

void worker_info_done(WorkerInfo *info);
void worker_message_done(WorkerMessage *m);

/* Looks for one whole frame at the start of @buf (@size bytes so far).
 * Returns 0 when more bytes are needed, 1 with the payload size in
 * @ret_payload_size (the payload is at @buf + WORKER_FRAME_HEADER), or
 * -EBADMSG for an empty frame or one longer than @max_payload. */
int worker_frame_next(const uint8_t *buf, size_t size, size_t max_payload, size_t *ret_payload_size);

/* Parses one frame's payload. While @expect_hello only the handshake is
 * valid; after it only a reply to @job_id. Returns 0, -EBADMSG for
 * anything else, or -ENOMEM. @ret is untouched on failure. */
int worker_parse_message(const uint8_t *p, size_t n, bool expect_hello, uint64_t job_id, WorkerMessage *ret);
