/* SPDX-License-Identifier: MIT */
/* Unit tests of the content cache (daemon/cache/contentcache.c).
 *
 * The pure parts: that every input of the key changes the key, that an
 * entry read back passes its check only when it is whole and is the entry
 * of the key asked for, and that the rebuilt .pyc header is the one the
 * importer parses back. Then the cache on disk, in a fresh temporary
 * directory: created 0700, refused when others may write it, a store read
 * back, a damaged or swapped entry deleted, and the size bound kept. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "contentcache.h"
#include "macro.h"
#include "pycheader.h"

static const uint8_t MAGIC[4] = { 0xa7, 0x0d, 0x0d, 0x0a };
static const uint8_t OTHER_MAGIC[4] = { 0xcb, 0x0d, 0x0d, 0x0a };

static void interp(const uint8_t magic[4], const char *impl, const char *version, const char *tag,
                   uint8_t ret[CONTENT_CACHE_ID_SIZE]) {
        content_cache_interpreter_id(magic, impl, version, tag, ret);
}

static void test_key_inputs(void **state) {
        uint8_t id[CONTENT_CACHE_ID_SIZE], other_id[CONTENT_CACHE_ID_SIZE];
        uint8_t sha[32] = { 1 }, other_sha[32] = { 2 };
        uint8_t base[CONTENT_CACHE_KEY_SIZE], k[CONTENT_CACHE_KEY_SIZE];

        interp(MAGIC, "cpython", "3.11.2", "cpython-311", id);
        content_cache_key(id, "/usr/lib/python3/dist-packages/a.py", 0, INVALIDATION_TIMESTAMP, sha, base);

        /* The same inputs give the same key. */
        content_cache_key(id, "/usr/lib/python3/dist-packages/a.py", 0, INVALIDATION_TIMESTAMP, sha, k);
        assert_memory_equal(base, k, sizeof(k));

        /* Every input alone changes it. */
        content_cache_key(id, "/usr/lib/python3/dist-packages/b.py", 0, INVALIDATION_TIMESTAMP, sha, k);
        assert_memory_not_equal(base, k, sizeof(k));
        content_cache_key(id, "/usr/lib/python3/dist-packages/a.py", 1, INVALIDATION_TIMESTAMP, sha, k);
        assert_memory_not_equal(base, k, sizeof(k));
        content_cache_key(id, "/usr/lib/python3/dist-packages/a.py", 0, INVALIDATION_CHECKED_HASH, sha, k);
        assert_memory_not_equal(base, k, sizeof(k));
        content_cache_key(id, "/usr/lib/python3/dist-packages/a.py", 0, INVALIDATION_UNCHECKED_HASH, sha, k);
        assert_memory_not_equal(base, k, sizeof(k));
        content_cache_key(id, "/usr/lib/python3/dist-packages/a.py", 0, INVALIDATION_TIMESTAMP, other_sha,
                          k);
        assert_memory_not_equal(base, k, sizeof(k));

        interp(OTHER_MAGIC, "cpython", "3.11.2", "cpython-311", other_id);
        assert_memory_not_equal(id, other_id, sizeof(id));
        interp(MAGIC, "pypy", "3.11.2", "cpython-311", other_id);
        assert_memory_not_equal(id, other_id, sizeof(id));
        interp(MAGIC, "cpython", "3.11.4", "cpython-311", other_id);
        assert_memory_not_equal(id, other_id, sizeof(id));
        interp(MAGIC, "cpython", "3.11.2", "cpython-312", other_id);
        assert_memory_not_equal(id, other_id, sizeof(id));
        /* Fields are delimited: moving a character between two changes the id. */
        interp(MAGIC, "cpython3", ".11.2", "cpython-311", other_id);
        assert_memory_not_equal(id, other_id, sizeof(id));
}

static void test_entry_name(void **state) {
        uint8_t key[CONTENT_CACHE_KEY_SIZE];
        char name[65];

        for (unsigned i = 0; i < sizeof(key); i++)
                key[i] = (uint8_t)(i * 17 + 3);
        content_cache_entry_name(key, name);
        assert_int_equal(strlen(name), 64);
        assert_int_equal(strspn(name, "0123456789abcdef"), 64);
        assert_memory_equal(name, "031425", 6);
}

static void test_entry_roundtrip(void **state) {
        uint8_t key[CONTENT_CACHE_KEY_SIZE] = { 7 }, other[CONTENT_CACHE_KEY_SIZE] = { 8 };
        static const char payload[] = "\xe3marshalled code object";
        _cleanup_free_ uint8_t *e = NULL;
        size_t size, offset, psize;

        assert_int_equal(content_cache_entry_encode(key, payload, sizeof(payload), &e, &size), 0);
        assert_int_equal(size, CONTENT_CACHE_ENTRY_HEADER_SIZE + sizeof(payload));
        assert_int_equal(content_cache_entry_check(key, e, size, &offset, &psize), 0);
        assert_int_equal(psize, sizeof(payload));
        assert_memory_equal(e + offset, payload, psize);

        /* The entry of another key, even whole, is not this key's. */
        assert_int_equal(content_cache_entry_check(other, e, size, &offset, &psize), -EBADMSG);
        /* Truncated anywhere, or one byte longer. */
        for (size_t n = 0; n < size; n++)
                assert_int_equal(content_cache_entry_check(key, e, n, &offset, &psize), -EBADMSG);
        /* Any single bit flipped, header or payload. */
        for (size_t i = 0; i < size; i++) {
                e[i] ^= 0x10;
                assert_int_equal(content_cache_entry_check(key, e, size, &offset, &psize), -EBADMSG);
                e[i] ^= 0x10;
        }
        assert_int_equal(content_cache_entry_check(key, e, size, &offset, &psize), 0);

        /* An empty payload is an entry too. */
        free(e);
        e = NULL;
        assert_int_equal(content_cache_entry_encode(key, "", 0, &e, &size), 0);
        assert_int_equal(content_cache_entry_check(key, e, size, &offset, &psize), 0);
        assert_int_equal(psize, 0);
}

static void test_pyc_header(void **state) {
        uint8_t h[16];
        PycHeader p;

        content_cache_pyc_header(h, MAGIC, INVALIDATION_TIMESTAMP, 0x12345678, 4242, 0);
        assert_int_equal(pyc_header_parse(h, sizeof(h), &p), 0);
        assert_memory_equal(p.magic, MAGIC, 4);
        assert_int_equal(pyc_header_mode(&p), INVALIDATION_TIMESTAMP);
        assert_int_equal(p.flags, 0);
        assert_int_equal(p.mtime, 0x12345678);
        assert_int_equal(p.size, 4242);

        content_cache_pyc_header(h, MAGIC, INVALIDATION_CHECKED_HASH, 1, 2, 0x0102030405060708ULL);
        assert_int_equal(pyc_header_parse(h, sizeof(h), &p), 0);
        assert_int_equal(pyc_header_mode(&p), INVALIDATION_CHECKED_HASH);
        assert_int_equal(p.flags, 3);
        assert_true(p.hash == 0x0102030405060708ULL);
        assert_int_equal(h[8], 0x08); /* little endian, as importlib writes it */

        content_cache_pyc_header(h, MAGIC, INVALIDATION_UNCHECKED_HASH, 1, 2, 99);
        assert_int_equal(pyc_header_parse(h, sizeof(h), &p), 0);
        assert_int_equal(pyc_header_mode(&p), INVALIDATION_UNCHECKED_HASH);
        assert_int_equal(p.flags, 1);
        assert_true(p.hash == 99);
}

/* --- on disk --------------------------------------------------------------- */

static char base[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        strcpy(base, "/tmp/test-contentcache.XXXXXX");
        assert_non_null(mkdtemp(base));
        return 0;
}

static int teardown(void **state) {
        nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

#define SMALL_PATH 256

static void path_in(char *buf, const char *name) {
        snprintf(buf, SMALL_PATH, "%s/%s", base, name);
}

static void key_of(unsigned i, uint8_t key[CONTENT_CACHE_KEY_SIZE]) {
        uint8_t id[CONTENT_CACHE_ID_SIZE], sha[32] = { 0 };
        char p[32];

        interp(MAGIC, "cpython", "3.11.2", "cpython-311", id);
        snprintf(p, sizeof(p), "/src/m%u.py", i);
        content_cache_key(id, p, 0, INVALIDATION_TIMESTAMP, sha, key);
}

static void test_open_creates_private_dir(void **state) {
        _cleanup_(content_cache_freep) ContentCache *c = NULL;
        _cleanup_free_ char *reason = NULL;
        char dir[SMALL_PATH];
        struct stat st;

        path_in(dir, "cache");
        assert_int_equal(content_cache_open(dir, 1 << 20, &c, &reason), 0);
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(st.st_uid, geteuid());
}

static void test_open_refuses_writable_dirs(void **state) {
        _cleanup_(content_cache_freep) ContentCache *c = NULL;
        char dir[SMALL_PATH], parent[SMALL_PATH / 2], link[SMALL_PATH / 2];

        path_in(dir, "open");
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(chmod(dir, 0777), 0);
        {
                _cleanup_free_ char *reason = NULL;
                assert_int_equal(content_cache_open(dir, 1 << 20, &c, &reason), -EPERM);
                assert_non_null(strstr(reason, "written by other users"));
        }
        assert_int_equal(chmod(dir, 0720), 0);
        {
                _cleanup_free_ char *reason = NULL;
                assert_int_equal(content_cache_open(dir, 1 << 20, &c, &reason), -EPERM);
        }

        /* A parent others may write (and not sticky): refused, even though
         * the cache directory itself is fine. */
        snprintf(parent, sizeof(parent), "%s/shared", base);
        assert_int_equal(mkdir(parent, 0777), 0);
        assert_int_equal(chmod(parent, 0777), 0);
        snprintf(dir, sizeof(dir), "%s/cache", parent);
        {
                _cleanup_free_ char *reason = NULL;
                assert_int_equal(content_cache_open(dir, 1 << 20, &c, &reason), -EPERM);
                assert_non_null(strstr(reason, "above the cache"));
        }
        /* Sticky, like /tmp: nobody else can replace what we own in it. */
        assert_int_equal(chmod(parent, 01777), 0);
        {
                _cleanup_free_ char *reason = NULL;
                assert_int_equal(content_cache_open(dir, 1 << 20, &c, &reason), 0);
                c = content_cache_free(c);
        }

        /* A symlink on the way is not followed. */
        snprintf(link, sizeof(link), "%s/link", base);
        assert_int_equal(symlink(parent, link), 0);
        snprintf(dir, sizeof(dir), "%s/cache", link);
        {
                _cleanup_free_ char *reason = NULL;
                assert_int_equal(content_cache_open(dir, 1 << 20, &c, &reason), -EPERM);
        }
        {
                _cleanup_free_ char *reason = NULL;
                assert_int_equal(content_cache_open("relative", 1 << 20, &c, &reason), -EPERM);
        }
}

static void test_store_lookup_reject(void **state) {
        _cleanup_(content_cache_freep) ContentCache *c = NULL;
        _cleanup_free_ char *reason = NULL;
        static const char payload[] = "\xe3 some code";
        uint8_t key[CONTENT_CACHE_KEY_SIZE], other[CONTENT_CACHE_KEY_SIZE];
        char dir[SMALL_PATH], name[65], entry[PATH_MAX], other_entry[PATH_MAX];
        ContentCacheStats st;
        struct stat s;
        uint8_t *pyc;
        size_t size;
        int fd;

        path_in(dir, "c");
        assert_int_equal(content_cache_open(dir, 1 << 20, &c, &reason), 0);
        key_of(1, key);
        key_of(2, other);
        assert_int_equal(content_cache_lookup(c, key, &pyc, &size), 0);
        assert_int_equal(content_cache_store(c, key, payload, sizeof(payload)), 0);

        content_cache_entry_name(key, name);
        snprintf(entry, sizeof(entry), "%s/%s", dir, name);
        assert_int_equal(stat(entry, &s), 0);
        assert_int_equal(s.st_mode & 07777, 0600);

        assert_int_equal(content_cache_lookup(c, key, &pyc, &size), 1);
        assert_int_equal(size, PYC_HEADER_SIZE + sizeof(payload));
        assert_memory_equal(pyc + PYC_HEADER_SIZE, payload, sizeof(payload));
        free(pyc);

        /* A flipped payload byte: rejected and deleted. */
        fd = open(entry, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "X", 1, CONTENT_CACHE_ENTRY_HEADER_SIZE + 2), 1);
        close(fd);
        assert_int_equal(content_cache_lookup(c, key, &pyc, &size), 0);
        assert_int_equal(access(entry, F_OK), -1);

        /* Another key's whole entry renamed to this key: rejected. */
        assert_int_equal(content_cache_store(c, other, payload, sizeof(payload)), 0);
        content_cache_entry_name(other, name);
        snprintf(other_entry, sizeof(other_entry), "%s/%s", dir, name);
        assert_int_equal(rename(other_entry, entry), 0);
        assert_int_equal(content_cache_lookup(c, key, &pyc, &size), 0);
        assert_int_equal(access(entry, F_OK), -1);

        /* A symlink to a valid entry: not followed, deleted. */
        assert_int_equal(content_cache_store(c, other, payload, sizeof(payload)), 0);
        assert_int_equal(symlink(other_entry, entry), 0);
        assert_int_equal(content_cache_lookup(c, key, &pyc, &size), 0);
        assert_int_equal(lstat(entry, &s), -1);

        /* A valid entry with a mode that is not 0600. */
        assert_int_equal(content_cache_store(c, key, payload, sizeof(payload)), 0);
        assert_int_equal(chmod(entry, 0644), 0);
        assert_int_equal(content_cache_lookup(c, key, &pyc, &size), 0);
        assert_int_equal(access(entry, F_OK), -1);

        content_cache_get_stats(c, &st);
        assert_int_equal(st.hits, 1);
        assert_int_equal(st.misses, 5);
        assert_int_equal(st.rejected, 4);
        assert_int_equal(st.entries, 1); /* the other key's */
}

static void test_size_bound(void **state) {
        _cleanup_(content_cache_freep) ContentCache *c = NULL;
        _cleanup_free_ char *reason = NULL;
        uint8_t payload[1000] = { 0xe3 }, key[CONTENT_CACHE_KEY_SIZE];
        char dir[SMALL_PATH];
        ContentCacheStats st;
        const uint64_t bound = 16384;

        path_in(dir, "bounded");
        assert_int_equal(content_cache_open(dir, bound, &c, &reason), 0);
        for (unsigned i = 0; i < 200; i++) {
                key_of(i, key);
                assert_int_equal(content_cache_store(c, key, payload, sizeof(payload)), 0);
                content_cache_get_stats(c, &st);
                assert_true(st.size <= bound);
        }
        assert_true(st.evicted > 0);
        /* The newest entry survived eviction. */
        key_of(199, key);
        {
                _cleanup_free_ uint8_t *pyc = NULL;
                size_t size;
                assert_int_equal(content_cache_lookup(c, key, &pyc, &size), 1);
        }
        /* Too large a payload for the bound is not stored at all. */
        {
                _cleanup_free_ uint8_t *big = calloc(1, bound);
                assert_non_null(big);
                key_of(1000, key);
                assert_int_equal(content_cache_store(c, key, big, bound / 2), 1);
        }
        c = content_cache_free(c);
        /* Reopened, the accounting comes from the directory. */
        assert_int_equal(content_cache_open(dir, bound, &c, &reason), 0);
        content_cache_get_stats(c, &st);
        assert_true(st.size <= bound && st.size > 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_key_inputs),
                cmocka_unit_test(test_entry_name),
                cmocka_unit_test(test_entry_roundtrip),
                cmocka_unit_test(test_pyc_header),
                cmocka_unit_test_setup_teardown(test_open_creates_private_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_refuses_writable_dirs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_lookup_reject, setup, teardown),
                cmocka_unit_test_setup_teardown(test_size_bound, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
