/* SPDX-License-Identifier: MIT */
/* .pyc header parsing and the importer's validity rules, plus the keyed
 * SipHash-2-4 that hash-based pycs carry. Pure functions: no I/O. */

#include <errno.h>
#include <string.h>

#include "pycheader.h"
#include "util.h"

int pyc_header_parse(const void *data, size_t size, PycHeader *ret) {
        const uint8_t *p = data;
        PycHeader h = {};

        if (size < PYC_HEADER_SIZE)
                return -EBADMSG;
        memcpy(h.magic, p, 4);
        /* Every magic ends in "\r\n", so a text file is never taken for a pyc. */
        if (p[2] != '\r' || p[3] != '\n')
                return -EBADMSG;
        h.flags = unaligned_read_le32(p + 4);
        if (h.flags & ~(PYC_FLAG_HASH_BASED | PYC_FLAG_CHECK_SOURCE))
                return -EBADMSG;
        if ((h.flags & PYC_FLAG_CHECK_SOURCE) && !(h.flags & PYC_FLAG_HASH_BASED))
                return -EBADMSG;
        if (h.flags & PYC_FLAG_HASH_BASED)
                h.hash = unaligned_read_le64(p + 8);
        else {
                h.mtime = unaligned_read_le32(p + 8);
                h.size = unaligned_read_le32(p + 12);
        }
        *ret = h;
        return 0;
}

InvalidationMode pyc_header_mode(const PycHeader *h) {
        if (!(h->flags & PYC_FLAG_HASH_BASED))
                return INVALIDATION_TIMESTAMP;
        return (h->flags & PYC_FLAG_CHECK_SOURCE) ? INVALIDATION_CHECKED_HASH : INVALIDATION_UNCHECKED_HASH;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                            \
        do {                                                                                                \
                v0 += v1;                                                                                   \
                v1 = ROTL(v1, 13);                                                                          \
                v1 ^= v0;                                                                                   \
                v0 = ROTL(v0, 32);                                                                          \
                v2 += v3;                                                                                   \
                v3 = ROTL(v3, 16);                                                                          \
                v3 ^= v2;                                                                                   \
                v0 += v3;                                                                                   \
                v3 = ROTL(v3, 21);                                                                          \
                v3 ^= v0;                                                                                   \
                v2 += v1;                                                                                   \
                v1 = ROTL(v1, 17);                                                                          \
                v1 ^= v2;                                                                                   \
                v2 = ROTL(v2, 32);                                                                          \
        } while (0)

/* SipHash-c-4 with c compression rounds: CPython 3.11 keys pycs with
 * SipHash-1-3, older CPython and PyPy with SipHash-2-4. */
static uint64_t siphash(unsigned c_rounds, unsigned d_rounds, uint64_t k0, uint64_t k1, const uint8_t *in,
                        size_t size) {
        uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
        uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
        uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
        uint64_t v3 = k1 ^ 0x7465646279746573ULL;
        uint64_t b = (uint64_t)size << 56, m;
        size_t left = size & 7;
        const uint8_t *end = in + size - left;

        for (; in != end; in += 8) {
                m = unaligned_read_le64(in);
                v3 ^= m;
                for (unsigned i = 0; i < c_rounds; i++)
                        SIPROUND;
                v0 ^= m;
        }
        for (size_t i = 0; i < left; i++)
                b |= (uint64_t)in[i] << (8 * i);
        v3 ^= b;
        for (unsigned i = 0; i < c_rounds; i++)
                SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        for (unsigned i = 0; i < d_rounds; i++)
                SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t pyc_source_hash(PycHashAlgo algo, const uint8_t magic[4], const void *data, size_t size) {
        unsigned c = algo == PYC_HASH_SIPHASH13 ? 1 : 2;
        return siphash(c, algo == PYC_HASH_SIPHASH13 ? 3 : 4, unaligned_read_le32(magic), 0, data, size);
}

PycHashAlgo pyc_hash_algo_detect(const uint8_t magic[4], const void *data, size_t size, uint64_t expected) {
        if (pyc_source_hash(PYC_HASH_SIPHASH13, magic, data, size) == expected)
                return PYC_HASH_SIPHASH13;
        if (pyc_source_hash(PYC_HASH_SIPHASH24, magic, data, size) == expected)
                return PYC_HASH_SIPHASH24;
        return PYC_HASH_UNKNOWN;
}

uint32_t pyc_mtime_field(int64_t tv_sec, long tv_nsec) {
        /* Python computes st_mtime as the double sec + nsec * 1e-9 and
         * then int(), which truncates toward zero: -1.5 s is -1, and
         * x.999999999 may round up to x+1. Do the same arithmetic. */
        double t = (double)tv_sec + (double)tv_nsec * 1e-9;
        return (uint32_t)((uint64_t)(int64_t)t & 0xffffffffu);
}

bool pyc_header_is_current(const PycHeader *h, const uint8_t magic[4], PycHashAlgo algo, InvalidationMode mode,
                           uint32_t mtime, uint32_t size, const void *data, size_t data_size) {
        if (memcmp(h->magic, magic, 4) != 0)
                return false;
        if (pyc_header_mode(h) != mode)
                return false;
        if (mode == INVALIDATION_TIMESTAMP)
                return h->mtime == mtime && h->size == size;
        /* Both hash modes: the hash is in the header, so check it even for
         * unchecked-hash pycs — a changed source deserves a new pyc. */
        if (algo == PYC_HASH_UNKNOWN || (!data && data_size > 0))
                return false;
        return h->hash == pyc_source_hash(algo, magic, data, data_size);
}
