/* SPDX-License-Identifier: MIT */
/* The worker's side of the worker protocol, parsed. A worker runs the
 * Python compiler on untrusted source, so after its first job it is
 * untrusted too: everything it sends is length-checked here, in functions
 * with no state and no effects, so that the fuzzer can feed them anything
 * (tests/fuzz/fuzz-worker-reply.c). The frame layouts are described at the
 * top of worker.py:
 *
 *   hello:  'H' magic(4) probe-hash(8) cache_tag NUL version NUL implementation
 *   reply:  'R' job-id(8) 0 pyc-bytes
 *           'R' job-id(8) 1 line(4) type NUL message [NUL detail]
 *
 * (detail: the text py_compile's PyCompileError carries, TAG_ERROR_DETAIL)
 *
 * A name in the hello must be printable, at most WORKER_MAX_NAME bytes and
 * free of '/': the cache tag ends up in file names. A magic number must end
 * in "\r\n", as every CPython and PyPy magic does. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"
#include "worker-message.h"

void worker_info_done(WorkerInfo *info) {
        free(info->cache_tag);
        free(info->version);
        free(info->implementation);
        *info = (WorkerInfo){};
}

void worker_message_done(WorkerMessage *m) {
        worker_info_done(&m->info);
        free(m->error_type_buf);
        free(m->error_message_buf);
        free(m->error_detail_buf);
        *m = (WorkerMessage){};
}

int worker_frame_next(const uint8_t *buf, size_t size, size_t max_payload, size_t *ret_payload_size) {
        uint32_t len;

        if (size < WORKER_FRAME_HEADER)
                return 0;
        len = unaligned_read_le32(buf);
        if (len == 0 || len > max_payload)
                return -EBADMSG;
        if (size - WORKER_FRAME_HEADER < len)
                return 0;
        *ret_payload_size = len;
        return 1;
}

static bool name_is_valid(const uint8_t *s, size_t n) {
        if (n > WORKER_MAX_NAME)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '/')
                        return false;
        return true;
}

static int parse_hello(const uint8_t *p, size_t n, WorkerMessage *ret) {
        _cleanup_free_ char *tag = NULL, *version = NULL, *implementation = NULL;
        char **fields[3] = { &tag, &version, &implementation };
        const uint8_t *end = p + n, *s;
        WorkerInfo info = {};

        if (n < 1 + 4 + 8 || p[0] != 'H')
                return -EBADMSG;
        memcpy(info.magic, p + 1, 4);
        if (info.magic[2] != '\r' || info.magic[3] != '\n')
                return -EBADMSG;
        s = p + 13;
        for (int i = 0; i < 3; i++) {
                const uint8_t *nul = memchr(s, 0, (size_t)(end - s));
                const uint8_t *e = nul ? nul : end;

                /* Two separators, no more, and nothing after the last name. */
                if ((i < 2) != (nul != NULL))
                        return -EBADMSG;
                if (!name_is_valid(s, (size_t)(e - s)))
                        return -EBADMSG;
                *fields[i] = strndup((const char *)s, (size_t)(e - s));
                if (!*fields[i])
                        return -ENOMEM;
                s = nul ? nul + 1 : end;
        }
        if (!tag[0])
                return -EBADMSG;
        info.hash_algo = pyc_hash_algo_detect(info.magic, WORKER_PROBE, strlen(WORKER_PROBE),
                                              unaligned_read_le64(p + 5));
        info.cache_tag = TAKE_PTR(tag);
        info.version = TAKE_PTR(version);
        info.implementation = TAKE_PTR(implementation);
        *ret = (WorkerMessage){ .hello = true, .info = info };
        return 0;
}

static int parse_reply(const uint8_t *p, size_t n, uint64_t job_id, WorkerMessage *ret) {
        _cleanup_free_ char *type = NULL, *message = NULL, *detail = NULL;
        WorkerReply reply = {};
        const uint8_t *nul, *nul2;

        if (n < 10 || p[0] != 'R')
                return -EBADMSG;
        reply.job_id = unaligned_read_le64(p + 1);
        if (reply.job_id != job_id)
                return -EBADMSG;
        switch (p[9]) {
        case 0:
                reply.ok = true;
                reply.pyc = p + 10;
                reply.pyc_size = n - 10;
                *ret = (WorkerMessage){ .reply = reply };
                return 0;
        case 1:
                if (n < 14)
                        return -EBADMSG;
                reply.error_line = unaligned_read_le32(p + 10);
                nul = memchr(p + 14, 0, n - 14);
                if (!nul)
                        return -EBADMSG;
                type = strndup((const char *)p + 14,
                               MIN((size_t)(nul - (p + 14)), (size_t)WORKER_MAX_ERROR_TYPE));
                nul2 = memchr(nul + 1, 0, (size_t)(p + n - nul - 1));
                message = strndup((const char *)nul + 1, MIN((size_t)((nul2 ? nul2 : p + n) - nul - 1),
                                                             (size_t)WORKER_MAX_ERROR_MESSAGE));
                if (nul2)
                        detail = strndup((const char *)nul2 + 1,
                                         MIN((size_t)(p + n - nul2 - 1), (size_t)WORKER_MAX_ERROR_DETAIL));
                if (!type || !message || (nul2 && !detail))
                        return -ENOMEM;
                reply.error_type = type;
                reply.error_message = message;
                reply.error_detail = detail;
                *ret = (WorkerMessage){ .reply = reply,
                                        .error_type_buf = TAKE_PTR(type),
                                        .error_message_buf = TAKE_PTR(message),
                                        .error_detail_buf = TAKE_PTR(detail) };
                return 0;
        default:
                return -EBADMSG;
        }
}

int worker_parse_message(const uint8_t *p, size_t n, bool expect_hello, uint64_t job_id,
                         WorkerMessage *ret) {
        return expect_hello ? parse_hello(p, n, ret) : parse_reply(p, n, job_id, ret);
}
