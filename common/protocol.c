/* SPDX-License-Identifier: MIT */
/* The client protocol codec (see protocol.h and doc/protocol.md).
 *
 * Writing appends fields to one growing buffer whose first four bytes are
 * filled with the length when the frame is finished. Reading validates the
 * whole frame once in msg_parse() — header, version, and that every field's
 * declared size fits inside the frame — so that msg_next() can then walk it
 * without further checks. Nothing here allocates on the read path except
 * field_strdup(). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "protocol.h"
#include "util.h"

static const char *const invalidation_names[_INVALIDATION_MAX] = {
        [INVALIDATION_TIMESTAMP] = "timestamp",
        [INVALIDATION_CHECKED_HASH] = "checked-hash",
        [INVALIDATION_UNCHECKED_HASH] = "unchecked-hash",
};

static const char *const outcome_names[_OUTCOME_MAX] = {
        [OUTCOME_COMPILED] = "compiled",
        [OUTCOME_UP_TO_DATE] = "up to date",
        [OUTCOME_COALESCED] = "coalesced",
        [OUTCOME_FAILED] = "failed",
};

const char *invalidation_mode_to_string(InvalidationMode m) {
        return (unsigned)m < _INVALIDATION_MAX ? invalidation_names[m] : NULL;
}

int invalidation_mode_from_string(const char *s) {
        for (int i = 0; i < _INVALIDATION_MAX; i++)
                if (strcmp(s, invalidation_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *outcome_to_string(Outcome o) {
        return (unsigned)o < _OUTCOME_MAX ? outcome_names[o] : NULL;
}

static int msg_reserve(MsgWriter *w, size_t extra) {
        size_t need;
        uint8_t *nb;

        if (w->error < 0)
                return w->error;
        if (extra > PROTOCOL_MAX_FRAME || w->size + extra > PROTOCOL_MAX_FRAME)
                return (w->error = -EMSGSIZE);
        need = w->size + extra;
        if (need <= w->allocated)
                return 0;
        need = MAX(need, MIN(w->allocated * 2, (size_t)PROTOCOL_MAX_FRAME));
        nb = realloc(w->buf, need);
        if (!nb)
                return (w->error = -ENOMEM);
        w->buf = nb;
        w->allocated = need;
        return 0;
}

int msg_writer_init(MsgWriter *w, uint16_t type) {
        *w = MSG_WRITER_NULL;
        if (msg_reserve(w, 256) < 0)
                return w->error;
        w->size = PROTOCOL_HEADER_SIZE;
        unaligned_write_le32(w->buf, 0);
        unaligned_write_le16(w->buf + 4, PROTOCOL_VERSION);
        unaligned_write_le16(w->buf + 6, type);
        return 0;
}

int msg_put_bytes(MsgWriter *w, uint16_t tag, const void *data, size_t size) {
        int r;

        if (size > PROTOCOL_MAX_FRAME)
                return (w->error = -EMSGSIZE);
        r = msg_reserve(w, PROTOCOL_FIELD_HEADER_SIZE + size);
        if (r < 0)
                return r;
        unaligned_write_le16(w->buf + w->size, tag);
        unaligned_write_le32(w->buf + w->size + 2, (uint32_t)size);
        if (size > 0)
                memcpy(w->buf + w->size + PROTOCOL_FIELD_HEADER_SIZE, data, size);
        w->size += PROTOCOL_FIELD_HEADER_SIZE + size;
        return 0;
}

int msg_put_string(MsgWriter *w, uint16_t tag, const char *s) {
        return msg_put_bytes(w, tag, s, strlen(s));
}

int msg_put_u64(MsgWriter *w, uint16_t tag, uint64_t value) {
        uint8_t b[8];

        unaligned_write_le64(b, value);
        return msg_put_bytes(w, tag, b, sizeof(b));
}

int msg_put_stat(MsgWriter *w, const char *key, char kind, const char *value) {
        size_t kl = strlen(key), vl = strlen(value);
        _cleanup_free_ uint8_t *b = NULL;

        if (kl + vl + 2 > PROTOCOL_MAX_FRAME)
                return (w->error = -EMSGSIZE);
        b = malloc(kl + vl + 2);
        if (!b)
                return (w->error = -ENOMEM);
        memcpy(b, key, kl + 1);
        b[kl + 1] = (uint8_t)kind;
        memcpy(b + kl + 2, value, vl);
        return msg_put_bytes(w, TAG_STAT, b, kl + vl + 2);
}

int msg_writer_finish(MsgWriter *w, uint8_t **ret_frame, size_t *ret_size) {
        if (w->error < 0) {
                int r = w->error;
                msg_writer_done(w);
                return r;
        }
        if (!w->buf)
                return -EINVAL;
        unaligned_write_le32(w->buf, (uint32_t)(w->size - 4));
        *ret_frame = TAKE_PTR(w->buf);
        *ret_size = w->size;
        *w = MSG_WRITER_NULL;
        return 0;
}

void msg_writer_done(MsgWriter *w) {
        free(w->buf);
        *w = MSG_WRITER_NULL;
}

int64_t frame_size(const uint8_t *data, size_t have) {
        uint32_t len;

        if (have < 4)
                return 0;
        len = unaligned_read_le32(data);
        if (len < PROTOCOL_HEADER_SIZE - 4)
                return -EBADMSG;
        if ((uint64_t)len + 4 > PROTOCOL_MAX_FRAME)
                return -EMSGSIZE;
        return (int64_t)len + 4;
}

int msg_parse(const uint8_t *frame, size_t size, MsgReader *ret) {
        int64_t want;
        size_t pos;

        want = frame_size(frame, size);
        if (want < 0)
                return (int)want;
        if (want == 0 || (size_t)want != size)
                return -EBADMSG;
        if (size < PROTOCOL_HEADER_SIZE)
                return -EBADMSG;
        if (unaligned_read_le16(frame + 4) != PROTOCOL_VERSION)
                return -EPROTONOSUPPORT;

        /* Walk every field once: after this, msg_next() cannot overrun. */
        for (pos = PROTOCOL_HEADER_SIZE; pos < size;) {
                uint32_t fsize;

                if (size - pos < PROTOCOL_FIELD_HEADER_SIZE)
                        return -EBADMSG;
                fsize = unaligned_read_le32(frame + pos + 2);
                if (fsize > size - pos - PROTOCOL_FIELD_HEADER_SIZE)
                        return -EBADMSG;
                pos += PROTOCOL_FIELD_HEADER_SIZE + fsize;
        }

        *ret = (MsgReader){
                .type = unaligned_read_le16(frame + 6),
                .data = frame,
                .size = size,
                .pos = PROTOCOL_HEADER_SIZE,
        };
        return 0;
}

int msg_next(MsgReader *r, MsgField *ret) {
        if (r->pos >= r->size)
                return 0;
        ret->tag = unaligned_read_le16(r->data + r->pos);
        ret->size = unaligned_read_le32(r->data + r->pos + 2);
        ret->data = r->data + r->pos + PROTOCOL_FIELD_HEADER_SIZE;
        r->pos += PROTOCOL_FIELD_HEADER_SIZE + ret->size;
        return 1;
}

int field_u64(const MsgField *f, uint64_t *ret) {
        if (f->size != 8)
                return -EBADMSG;
        *ret = unaligned_read_le64(f->data);
        return 0;
}

int field_strdup(const MsgField *f, char **ret) {
        char *s;

        if (memchr(f->data, 0, f->size))
                return -EBADMSG;
        s = malloc((size_t)f->size + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, f->data, f->size);
        s[f->size] = '\0';
        *ret = s;
        return 0;
}

int field_replace_string(const MsgField *f, char **field) {
        char *s;
        int k = field_strdup(f, &s);

        if (k < 0)
                return k;
        free(*field);
        *field = s;
        return 0;
}

int field_stat(const MsgField *f, const char **ret_key, char *ret_kind, const uint8_t **ret_value,
               size_t *ret_value_size) {
        const uint8_t *nul;
        size_t kl;

        if (f->tag != TAG_STAT)
                return -EBADMSG;
        nul = memchr(f->data, 0, f->size);
        if (!nul || nul == f->data)
                return -EBADMSG;
        kl = (size_t)(nul - f->data);
        if (kl + 2 > f->size)
                return -EBADMSG;
        if (!strchr("nsb", f->data[kl + 1]) || f->data[kl + 1] == '\0')
                return -EBADMSG;
        *ret_key = (const char *)f->data;
        *ret_kind = (char)f->data[kl + 1];
        *ret_value = f->data + kl + 2;
        *ret_value_size = f->size - kl - 2;
        return 0;
}
