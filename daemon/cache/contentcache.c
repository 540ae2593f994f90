/* SPDX-License-Identifier: MIT */
/* The content cache: a source whose bytes did not change is not compiled
 * again. This is the common case of a reinstall or an upgrade (prerm
 * py3clean removes the .pyc files, unpack puts the same sources back,
 * postinst py3compile asks for them again).
 *
 * What is cached. The payload of a .pyc, everything after its 16-byte
 * header: the marshalled code object. The header is not cached. It is
 * rebuilt from the source in hand: magic and flags, then the source's new
 * mtime and size (timestamp mode) or the hash of its bytes (hash modes,
 * which equals the cached one since the bytes match). So a hit gives the
 * bytes a fresh compile gives, and a touched source gets its new mtime.
 *
 * The key. The payload is what `compile(source, path, "exec",
 * dont_inherit=True, optimize=N)` makes, marshalled by the interpreter: it
 * depends on the source bytes, the path as compiled (co_filename), the
 * optimization level, and the interpreter's compiler and marshal format.
 * The key is a sha256 over a version tag, the interpreter (magic number,
 * implementation, version and cache tag, as its worker reported them), the
 * path, the level, the invalidation mode (which fixes the header flags) and
 * the sha256 of the source bytes. Any one of them changed is another key: a
 * miss.
 *
 * Why it is safe. Whoever can write an entry decides the code that root's
 * imports run, so entries must come from the daemon alone:
 * - The directory is walked from / without following symlinks when the
 *   cache opens: every directory above it must belong to root or to our
 *   euid and be writable by nobody else (a sticky directory such as /tmp is
 *   fine: nobody else can rename what we own in it), and the cache
 *   directory itself must belong to our euid and have no group or other
 *   write bit. Otherwise the cache is off (the daemon logs why once). It is
 *   created 0700 when missing. Its fd is kept; every later access is
 *   relative to it.
 * - An entry is opened with O_NOFOLLOW and must be a regular file of our
 *   euid, mode 0600, with one link. Its content starts with the key it was
 *   stored under and a sha256 of the key, the payload size and the payload:
 *   a truncated or flipped entry, or one renamed to another key, fails the
 *   check. A failing entry is deleted and the source compiled; the new
 *   payload replaces it.
 * - The checksum is not a MAC. It detects damage (an entry is written
 *   atomically but not fsynced: a crash may leave garbage) and mix-ups; who
 *   may write is settled by ownership and modes.
 *
 * Bounded. The entries' bytes are kept under max_size and their number
 * under CONTENT_CACHE_MAX_ENTRIES. A payload larger than a quarter of the
 * bound is not stored. A hit sets the entry's mtime, so mtime is its last
 * use. When a store passes a bound, that thread (one at a time) lists the
 * directory and deletes the least recently used entries until three
 * quarters of the bound remain: a listing per quarter of the bound stored,
 * never one per store. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "contentcache.h"
#include "list.h"
#include "pycheader.h"
#include "util.h"
#include "writer.h"

#define CONTENT_CACHE_KEY_TAG "pycqueue content cache key 1"
#define CONTENT_CACHE_ID_TAG "pycqueue interpreter 1"
#define CONTENT_CACHE_NAME_LEN 64u

struct ContentCache {
        char *directory;
        int dir_fd;
        uint64_t max_size;
        uid_t uid;

        pthread_mutex_t lock;
        bool evicting;
        uint64_t size, entries; /* as counted by the last listing, plus stores since */
        uint64_t hits, misses, stores, rejected, evicted;
};

/* --- pure parts ---------------------------------------------------------- */

static void sha256_string(struct sha256_ctx *ctx, const char *s) {
        /* with its NUL, so that ("ab","c") and ("a","bc") differ */
        sha256_update(ctx, strlen(s) + 1, (const uint8_t *)s);
}

void content_cache_interpreter_id(const uint8_t magic[4], const char *implementation, const char *version,
                                  const char *cache_tag, uint8_t ret[CONTENT_CACHE_ID_SIZE]) {
        struct sha256_ctx ctx;

        sha256_init(&ctx);
        sha256_string(&ctx, CONTENT_CACHE_ID_TAG);
        sha256_update(&ctx, 4, magic);
        sha256_string(&ctx, implementation ? implementation : "");
        sha256_string(&ctx, version ? version : "");
        sha256_string(&ctx, cache_tag ? cache_tag : "");
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, ret);
}

void content_cache_key(const uint8_t interpreter_id[CONTENT_CACHE_ID_SIZE], const char *display_path,
                       unsigned opt_level, InvalidationMode mode, const uint8_t source_sha256[32],
                       uint8_t ret[CONTENT_CACHE_KEY_SIZE]) {
        struct sha256_ctx ctx;
        uint8_t buf[8];

        sha256_init(&ctx);
        sha256_string(&ctx, CONTENT_CACHE_KEY_TAG);
        sha256_update(&ctx, CONTENT_CACHE_ID_SIZE, interpreter_id);
        unaligned_write_le32(buf, opt_level);
        unaligned_write_le32(buf + 4, (uint32_t)mode);
        sha256_update(&ctx, sizeof(buf), buf);
        sha256_update(&ctx, 32, source_sha256);
        /* Last, with its length: a path may hold any byte but NUL. */
        unaligned_write_le64(buf, strlen(display_path));
        sha256_update(&ctx, sizeof(buf), buf);
        sha256_update(&ctx, strlen(display_path), (const uint8_t *)display_path);
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, ret);
}

void content_cache_entry_name(const uint8_t key[CONTENT_CACHE_KEY_SIZE], char ret[65]) {
        static const char hex[] = "0123456789abcdef";

        for (unsigned i = 0; i < CONTENT_CACHE_KEY_SIZE; i++) {
                ret[2 * i] = hex[key[i] >> 4];
                ret[2 * i + 1] = hex[key[i] & 15];
        }
        ret[CONTENT_CACHE_NAME_LEN] = '\0';
}

static bool is_entry_name(const char *name) {
        size_t n = strspn(name, "0123456789abcdef");
        return n == CONTENT_CACHE_NAME_LEN && name[n] == '\0';
}

/* The checksum of an entry: its key, the payload size, the payload. */
static void entry_checksum(const uint8_t key[CONTENT_CACHE_KEY_SIZE], const void *payload, size_t size,
                           uint8_t ret[32]) {
        struct sha256_ctx ctx;
        uint8_t buf[8];

        sha256_init(&ctx);
        sha256_update(&ctx, CONTENT_CACHE_KEY_SIZE, key);
        unaligned_write_le64(buf, size);
        sha256_update(&ctx, sizeof(buf), buf);
        sha256_update(&ctx, size, payload);
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, ret);
}

/*   magic[8] key[32] payload_size:u64 checksum[32] payload */
int content_cache_entry_encode(const uint8_t key[CONTENT_CACHE_KEY_SIZE], const void *payload, size_t size,
                               uint8_t **ret_entry, size_t *ret_size) {
        size_t total = CONTENT_CACHE_ENTRY_HEADER_SIZE + size;
        uint8_t *e;

        if (total < size)
                return -ENOMEM;
        e = malloc(total);
        if (!e)
                return -ENOMEM;
        memcpy(e, CONTENT_CACHE_ENTRY_MAGIC, 8);
        memcpy(e + 8, key, CONTENT_CACHE_KEY_SIZE);
        unaligned_write_le64(e + 8 + CONTENT_CACHE_KEY_SIZE, size);
        entry_checksum(key, payload, size, e + 16 + CONTENT_CACHE_KEY_SIZE);
        memcpy(e + CONTENT_CACHE_ENTRY_HEADER_SIZE, payload, size);
        *ret_entry = e;
        *ret_size = total;
        return 0;
}

int content_cache_entry_check(const uint8_t key[CONTENT_CACHE_KEY_SIZE], const uint8_t *entry, size_t size,
                              size_t *ret_offset, size_t *ret_payload_size) {
        uint8_t sum[32];
        uint64_t payload_size;

        if (size < CONTENT_CACHE_ENTRY_HEADER_SIZE || memcmp(entry, CONTENT_CACHE_ENTRY_MAGIC, 8) != 0 ||
            memcmp(entry + 8, key, CONTENT_CACHE_KEY_SIZE) != 0)
                return -EBADMSG;
        payload_size = unaligned_read_le64(entry + 8 + CONTENT_CACHE_KEY_SIZE);
        if (payload_size != size - CONTENT_CACHE_ENTRY_HEADER_SIZE)
                return -EBADMSG;
        entry_checksum(key, entry + CONTENT_CACHE_ENTRY_HEADER_SIZE, (size_t)payload_size, sum);
        if (memcmp(sum, entry + 16 + CONTENT_CACHE_KEY_SIZE, sizeof(sum)) != 0)
                return -EBADMSG;
        *ret_offset = CONTENT_CACHE_ENTRY_HEADER_SIZE;
        *ret_payload_size = (size_t)payload_size;
        return 0;
}

void content_cache_pyc_header(uint8_t ret[16], const uint8_t magic[4], InvalidationMode mode, uint32_t mtime,
                              uint32_t size, uint64_t hash) {
        memcpy(ret, magic, 4);
        if (mode == INVALIDATION_TIMESTAMP) {
                unaligned_write_le32(ret + 4, 0);
                unaligned_write_le32(ret + 8, mtime);
                unaligned_write_le32(ret + 12, size);
                return;
        }
        unaligned_write_le32(ret + 4,
                             PYC_FLAG_HASH_BASED |
                                     (mode == INVALIDATION_CHECKED_HASH ? PYC_FLAG_CHECK_SOURCE : 0));
        unaligned_write_le64(ret + 8, hash);
}

/* --- opening: who may write the directory -------------------------------- */

_printf_(2, 3) static int refuse(char **ret_reason, const char *fmt, ...) {
        va_list ap;

        if (!ret_reason)
                return -EPERM;
        va_start(ap, fmt);
        if (vasprintf(ret_reason, fmt, ap) < 0)
                *ret_reason = NULL;
        va_end(ap);
        return -EPERM;
}

/* Whether only root or @uid can change what the directory @st holds. */
static bool dir_is_trusted(const struct stat *st, uid_t uid) {
        if (st->st_uid != 0 && st->st_uid != uid)
                return false;
        return (st->st_mode & (S_IWGRP | S_IWOTH)) == 0 || (st->st_mode & S_ISVTX);
}

/* Walks @path from / without following symlinks, checking each directory
 * on the way, creating the last component 0700 if missing. Returns an
 * O_RDONLY fd of the cache directory. */
static int open_cache_dir(const char *path, uid_t uid, char **ret_reason) {
        _cleanup_free_ char *copy = NULL, *so_far = NULL;
        _cleanup_close_ int cur = -1;
        char *save = NULL, *comp, *next;
        struct stat st;

        if (!path_is_absolute(path))
                return refuse(ret_reason, "%s is not an absolute path", path);
        copy = strdup(path);
        so_far = calloc(1, strlen(path) + 2);
        if (!copy || !so_far)
                return -ENOMEM;
        cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return negative_errno();
        strcpy(so_far, "/");

        comp = strtok_r(copy, "/", &save);
        while (comp) {
                _cleanup_close_ int fd = -1;

                next = strtok_r(NULL, "/", &save);
                if (strcmp(comp, ".") == 0) {
                        comp = next;
                        continue;
                }
                if (strcmp(comp, "..") == 0)
                        return refuse(ret_reason, "%s contains \"..\"", path);
                if (fstat(cur, &st) < 0)
                        return negative_errno();
                if (!dir_is_trusted(&st, uid))
                        return refuse(ret_reason, "%s, above the cache, can be written by another user",
                                      so_far);
                fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT && !next) {
                        if (mkdirat(cur, comp, 0700) < 0 && errno != EEXIST)
                                return negative_errno();
                        fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                }
                if (fd < 0) {
                        if (errno == ELOOP || errno == ENOTDIR)
                                return refuse(ret_reason, "%s: a symlink or not a directory on the way",
                                              path);
                        return negative_errno();
                }
                if (strlen(so_far) > 1)
                        strcat(so_far, "/");
                strcat(so_far, comp);
                safe_close(cur);
                cur = TAKE_FD(fd);
                comp = next;
        }

        if (fstat(cur, &st) < 0)
                return negative_errno();
        if (st.st_uid != uid)
                return refuse(ret_reason, "%s is not owned by the daemon's user", path);
        if (st.st_mode & (S_IWGRP | S_IWOTH))
                return refuse(ret_reason, "%s can be written by other users", path);
        /* From the pinned directory itself, not its name again. */
        int fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* --- listing and eviction ------------------------------------------------- */

typedef struct EntryInfo {
        uint64_t mtime_nsec;
        uint64_t size;
        char name[CONTENT_CACHE_NAME_LEN + 1];
} EntryInfo;

static int entry_info_compare(const void *a, const void *b) {
        const EntryInfo *x = a, *y = b;
        return x->mtime_nsec < y->mtime_nsec ? -1 : x->mtime_nsec > y->mtime_nsec;
}

/* Lists the entries; with @ret_list their names and times too (at most
 * CONTENT_CACHE_MAX_ENTRIES + what the directory grew by while listing,
 * bounded by a hard stop at twice that). */
static int list_entries(ContentCache *c, EntryInfo **ret_list, size_t *ret_n, uint64_t *ret_size) {
        _cleanup_free_ EntryInfo *list = NULL;
        size_t n = 0, allocated = 0, count = 0;
        uint64_t total = 0;
        struct dirent *de;
        DIR *d;
        int fd;

        fd = openat(c->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return negative_errno();
        }
        while ((de = readdir(d))) {
                struct stat st;

                if (!is_entry_name(de->d_name))
                        continue;
                if (fstatat(c->dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                total += (uint64_t)st.st_size;
                count++;
                if (!ret_list)
                        continue;
                if (n >= 2 * (size_t)CONTENT_CACHE_MAX_ENTRIES)
                        break;
                if (GREEDY_REALLOC(list, allocated, n + 1) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
                list[n].mtime_nsec =
                        (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
                list[n].size = (uint64_t)st.st_size;
                memcpy(list[n].name, de->d_name, CONTENT_CACHE_NAME_LEN + 1);
                n++;
        }
        closedir(d);
        if (ret_list) {
                *ret_list = TAKE_PTR(list);
                *ret_n = n;
        } else
                *ret_n = count;
        *ret_size = total;
        return 0;
}

/* Deletes the least recently used entries until three quarters of each
 * bound remain. Called by one thread at a time (c->evicting); stores go on
 * meanwhile. What they add is counted on top of what the listing found,
 * even if the listing saw it too: the count errs high, never low, so the
 * bound holds on disk. */
static void evict(ContentCache *c) {
        _cleanup_free_ EntryInfo *list = NULL;
        uint64_t total, size_before, entries_before, removed = 0, target_size = c->max_size / 4 * 3;
        size_t n, i, left, target_n = CONTENT_CACHE_MAX_ENTRIES / 4 * 3;

        pthread_mutex_lock(&c->lock);
        size_before = c->size;
        entries_before = c->entries;
        pthread_mutex_unlock(&c->lock);
        if (list_entries(c, &list, &n, &total) < 0)
                return;
        qsort(list, n, sizeof(EntryInfo), entry_info_compare);
        left = n;
        for (i = 0; i < n && (total > target_size || left > target_n); i++) {
                if (unlinkat(c->dir_fd, list[i].name, 0) < 0)
                        continue;
                total -= list[i].size;
                left--;
                removed++;
        }
        pthread_mutex_lock(&c->lock);
        c->size = total + (c->size > size_before ? c->size - size_before : 0);
        c->entries = left + (c->entries > entries_before ? c->entries - entries_before : 0);
        c->evicted += removed;
        pthread_mutex_unlock(&c->lock);
}

static bool over_bound(ContentCache *c) {
        return c->size > c->max_size || c->entries > CONTENT_CACHE_MAX_ENTRIES;
}

/* --- the cache ------------------------------------------------------------ */

int content_cache_open(const char *directory, uint64_t max_size, ContentCache **ret, char **ret_reason) {
        _cleanup_(content_cache_freep) ContentCache *c = NULL;
        size_t n;
        uint64_t size;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->dir_fd = -1;
        pthread_mutex_init(&c->lock, NULL);
        c->directory = strdup(directory);
        if (!c->directory)
                return -ENOMEM;
        c->max_size = max_size;
        c->uid = geteuid();
        r = open_cache_dir(directory, c->uid, ret_reason);
        if (r < 0)
                return r;
        c->dir_fd = r;
        (void)writer_remove_stale_temps(c->dir_fd);
        r = list_entries(c, NULL, &n, &size);
        if (r < 0)
                return r;
        c->entries = n;
        c->size = size;
        *ret = TAKE_PTR(c);
        return 0;
}

ContentCache *content_cache_free(ContentCache *c) {
        if (!c)
                return NULL;
        safe_close(c->dir_fd);
        pthread_mutex_destroy(&c->lock);
        free(c->directory);
        free(c);
        return NULL;
}

const char *content_cache_directory(const ContentCache *c) {
        return c->directory;
}

static void count(ContentCache *c, uint64_t *counter) {
        pthread_mutex_lock(&c->lock);
        (*counter)++;
        pthread_mutex_unlock(&c->lock);
}

/* An entry that failed its checks: out of the cache. */
static void reject(ContentCache *c, const char *name, const struct stat *st) {
        if (unlinkat(c->dir_fd, name, 0) < 0 && errno != ENOENT) {
                count(c, &c->rejected);
                return;
        }
        pthread_mutex_lock(&c->lock);
        c->rejected++;
        if (st && S_ISREG(st->st_mode)) {
                c->size -= MIN(c->size, (uint64_t)st->st_size);
                c->entries -= MIN(c->entries, 1u);
        }
        pthread_mutex_unlock(&c->lock);
}

int content_cache_lookup(ContentCache *c, const uint8_t key[CONTENT_CACHE_KEY_SIZE], uint8_t **ret_pyc,
                         size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *entry = NULL;
        char name[CONTENT_CACHE_NAME_LEN + 1];
        size_t size, offset, payload_size;
        struct stat st = {};
        int r;

        content_cache_entry_name(key, name);
        fd = openat(c->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                /* A symlink is never followed, and goes. Any other failure
                 * (no such entry, out of descriptors) is only a miss. */
                if (errno == ELOOP)
                        reject(c, name, NULL);
                count(c, &c->misses);
                return 0;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != c->uid ||
            (st.st_mode & 07777) != 0600 || st.st_nlink != 1 ||
            (uint64_t)st.st_size > c->max_size + CONTENT_CACHE_ENTRY_HEADER_SIZE ||
            st.st_size < (off_t)CONTENT_CACHE_ENTRY_HEADER_SIZE)
                goto bad;
        r = read_full_fd(fd, (size_t)st.st_size, &entry, &size);
        if (r < 0 || content_cache_entry_check(key, entry, size, &offset, &payload_size) < 0)
                goto bad;

        /* The payload moves to make room for the caller's header. */
        memmove(entry + PYC_HEADER_SIZE, entry + offset, payload_size);
        memset(entry, 0, PYC_HEADER_SIZE);
        /* The entry's mtime is its last use, for eviction. */
        (void)futimens(fd, NULL);
        count(c, &c->hits);
        *ret_size = PYC_HEADER_SIZE + payload_size;
        *ret_pyc = TAKE_PTR(entry);
        return 1;
bad:
        reject(c, name, &st);
        count(c, &c->misses);
        return 0;
}

int content_cache_store(ContentCache *c, const uint8_t key[CONTENT_CACHE_KEY_SIZE], const void *payload,
                        size_t size) {
        _cleanup_free_ uint8_t *entry = NULL;
        char name[CONTENT_CACHE_NAME_LEN + 1];
        struct stat old;
        size_t entry_size;
        bool replaced, over;
        unsigned rounds = 0;
        int r;

        if ((uint64_t)size > c->max_size / 4)
                return 1;
        r = content_cache_entry_encode(key, payload, size, &entry, &entry_size);
        if (r < 0)
                return r;
        content_cache_entry_name(key, name);
        replaced = fstatat(c->dir_fd, name, &old, AT_SYMLINK_NOFOLLOW) == 0;
        r = writer_replace_at(c->dir_fd, name, entry, entry_size, 0600, false);
        if (r == -EEXIST) {
                /* Something not a regular file stands there: take it away. */
                if (unlinkat(c->dir_fd, name, 0) < 0 && unlinkat(c->dir_fd, name, AT_REMOVEDIR) < 0)
                        return r;
                replaced = false;
                r = writer_replace_at(c->dir_fd, name, entry, entry_size, 0600, false);
        }
        if (r < 0)
                return r;

        pthread_mutex_lock(&c->lock);
        c->stores++;
        if (replaced && S_ISREG(old.st_mode))
                c->size -= MIN(c->size, (uint64_t)old.st_size);
        else
                c->entries++;
        c->size += entry_size;
        over = !c->evicting && over_bound(c);
        if (over)
                c->evicting = true;
        pthread_mutex_unlock(&c->lock);

        /* Again if stores made during the listing pushed it over (a few at
         * most: one per commit thread). */
        while (over) {
                evict(c);
                pthread_mutex_lock(&c->lock);
                over = over_bound(c) && ++rounds < 4;
                if (!over)
                        c->evicting = false;
                pthread_mutex_unlock(&c->lock);
        }
        return 0;
}

void content_cache_get_stats(ContentCache *c, ContentCacheStats *ret) {
        pthread_mutex_lock(&c->lock);
        *ret = (ContentCacheStats){
                .hits = c->hits,
                .misses = c->misses,
                .stores = c->stores,
                .rejected = c->rejected,
                .evicted = c->evicted,
                .entries = c->entries,
                .size = c->size,
                .max_size = c->max_size,
        };
        pthread_mutex_unlock(&c->lock);
}
