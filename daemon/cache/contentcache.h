/* SPDX-License-Identifier: MIT */
#pragma once

/* The content cache: compiled payloads of sources seen before, so that an
 * unchanged source is not compiled again (see contentcache.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "protocol.h"

#define CONTENT_CACHE_KEY_SIZE 32u
#define CONTENT_CACHE_ID_SIZE 32u

/* An entry on disk: this header, then the payload (a .pyc without its
 * 16-byte header). The checksum covers the key, the size and the payload. */
#define CONTENT_CACHE_ENTRY_MAGIC "PYCQCE01"
#define CONTENT_CACHE_ENTRY_HEADER_SIZE (8u + CONTENT_CACHE_KEY_SIZE + 8u + 32u)

/* The most entries kept, whatever their size: eviction sorts them all. */
#define CONTENT_CACHE_MAX_ENTRIES 262144u

typedef struct ContentCache ContentCache;

typedef struct ContentCacheStats {
        uint64_t hits;
        uint64_t misses;
        uint64_t stores;
        uint64_t rejected; /* entries found damaged or untrusted, and deleted */
        uint64_t evicted;
        uint64_t entries;
        uint64_t size; /* bytes of entries */
        uint64_t max_size;
} ContentCacheStats;

/* --- pure parts ------------------------------------------------------- */

/* What identifies an interpreter's compiler: its magic number, and its
 * implementation, version and cache tag as the worker handshake reports. */
void content_cache_interpreter_id(const uint8_t magic[4], const char *implementation, const char *version,
                                  const char *cache_tag, uint8_t ret[CONTENT_CACHE_ID_SIZE]);

/* The key of one compile: the interpreter, the path the code is compiled
 * as (co_filename), the optimization level, the invalidation mode (which
 * fixes the header flags) and the sha256 of the source bytes. */
void content_cache_key(const uint8_t interpreter_id[CONTENT_CACHE_ID_SIZE], const char *display_path,
                       unsigned opt_level, InvalidationMode mode, const uint8_t source_sha256[32],
                       uint8_t ret[CONTENT_CACHE_KEY_SIZE]);

/* The entry's file name: the key in lowercase hex (64 characters). */
void content_cache_entry_name(const uint8_t key[CONTENT_CACHE_KEY_SIZE], char ret[65]);

/* Builds the entry for @key and @payload. Returns 0 or -ENOMEM. */
int content_cache_entry_encode(const uint8_t key[CONTENT_CACHE_KEY_SIZE], const void *payload, size_t size,
                               uint8_t **ret_entry, size_t *ret_size);
/* Checks an entry read back: its magic, that it is the entry of @key, its
 * length and its checksum. Returns 0 with the payload's offset and size,
 * or -EBADMSG. */
int content_cache_entry_check(const uint8_t key[CONTENT_CACHE_KEY_SIZE], const uint8_t *entry, size_t size,
                              size_t *ret_offset, size_t *ret_payload_size);

/* Writes the 16-byte .pyc header py_compile would write: timestamp mode
 * takes @mtime and @size, the hash modes @hash. */
void content_cache_pyc_header(uint8_t ret[16], const uint8_t magic[4], InvalidationMode mode, uint32_t mtime,
                              uint32_t size, uint64_t hash);

/* --- the cache on disk -------------------------------------------------- */

/* Opens (creating it mode 0700 if missing) the cache in @directory,
 * bounded by @max_size bytes. The directory must be owned by our euid and
 * writable by no one else, and every directory above it owned by root or
 * us and writable by no one else (unless sticky): otherwise -EPERM, with
 * the reason in @ret_reason. */
int content_cache_open(const char *directory, uint64_t max_size, ContentCache **ret, char **ret_reason);
ContentCache *content_cache_free(ContentCache *c);
DEFINE_CLEANUP(ContentCache *, content_cache_free);

/* The rest may be called from any thread (blocking file I/O: I/O threads
 * only). */

/* Looks @key up. On a hit returns 1 and a buffer whose first 16 bytes are
 * left for the caller's .pyc header, followed by the payload; 0 on a miss.
 * An entry that is not a regular file of ours, 0600, with the right key
 * and checksum is deleted and counted as rejected: a miss. */
int content_cache_lookup(ContentCache *c, const uint8_t key[CONTENT_CACHE_KEY_SIZE], uint8_t **ret_pyc,
                         size_t *ret_size);
/* Stores @payload under @key (atomically, without fsync: a damaged entry
 * is found by its checksum), then evicts the least recently used entries
 * if the bound is exceeded. Returns 0, 1 when the payload is too large to
 * be cached, or a negative errno. */
int content_cache_store(ContentCache *c, const uint8_t key[CONTENT_CACHE_KEY_SIZE], const void *payload,
                        size_t size);
void content_cache_get_stats(ContentCache *c, ContentCacheStats *ret);
const char *content_cache_directory(const ContentCache *c);
