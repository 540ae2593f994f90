/* SPDX-License-Identifier: MIT */
#pragma once

/* The 16-byte .pyc header (PEP 552) and its validation as the importer does
 * it:
 *
 *     magic[4]  flags:u32  then, with flags bit 0 clear: mtime:u32 size:u32,
 *                          with flags bit 0 set:       source hash:u64
 *
 * flags bit 1 is "check_source" and is only valid with bit 0. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define PYC_HEADER_SIZE 16u
#define PYC_FLAG_HASH_BASED 0x1u
#define PYC_FLAG_CHECK_SOURCE 0x2u

typedef struct PycHeader {
        uint8_t magic[4];
        uint32_t flags;
        uint32_t mtime;  /* timestamp pycs */
        uint32_t size;   /* timestamp pycs */
        uint64_t hash;   /* hash-based pycs */
} PycHeader;

/* Parses the header at the start of @data; -EBADMSG when short or the flags are invalid. */
int pyc_header_parse(const void *data, size_t size, PycHeader *ret);
InvalidationMode pyc_header_mode(const PycHeader *h);

/* The source hash importlib.util.source_hash() computes: keyed SipHash of
 * the source bytes, keyed with the magic number as a little-endian integer.
 * Which SipHash depends on the interpreter; the worker handshake tells. */
typedef enum PycHashAlgo {
        PYC_HASH_UNKNOWN = 0,
        PYC_HASH_SIPHASH13,  /* CPython >= 3.11 */
        PYC_HASH_SIPHASH24,  /* CPython <= 3.10, PyPy */
} PycHashAlgo;

uint64_t pyc_source_hash(PycHashAlgo algo, const uint8_t magic[4], const void *data, size_t size);
/* Which algorithm gives @expected for @data, or PYC_HASH_UNKNOWN. */
PycHashAlgo pyc_hash_algo_detect(const uint8_t magic[4], const void *data, size_t size, uint64_t expected);

/* The low 32 bits of int(st_mtime) as Python computes them (truncation
 * toward zero, also for times before 1970). */
uint32_t pyc_mtime_field(int64_t tv_sec, long tv_nsec);

/* Whether the header is what the wanted magic and mode would write for a
 * source with this mtime/size (timestamp) or these bytes (hash modes; @data
 * may be NULL only for timestamp mode). */
bool pyc_header_is_current(const PycHeader *h, const uint8_t magic[4], PycHashAlgo algo, InvalidationMode mode,
                           uint32_t mtime, uint32_t size, const void *data, size_t data_size);
