/* SPDX-License-Identifier: MIT */
/* Unit tests of path resolution inside another root (daemon/files/rootpath.c).
 *
 * Each test builds a fresh tree under a temporary directory R, used as the
 * root:
 *
 *     R/usr/lib/py/mod.py          regular file
 *     R/usr/share/real/           directory
 *     R/usr/lib/py/abs -> /usr/share/real      absolute link: inside R
 *     R/usr/lib/py/rel -> ../../share/real     relative link
 *     R/usr/lib/py/out -> ../../../../..       climbs out of R
 *     R/usr/lib/py/lnk.py -> /usr/lib/py/mod.py
 *
 * R itself is canonicalized first. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "rootpath.h"

static char root[PATH_MAX / 2];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static void at(const char *rel, char *buf) {
        size_t n = strlen(root);

        assert_true(n + strlen(rel) < PATH_MAX);
        memcpy(buf, root, n);
        strcpy(buf + n, rel);
}

static int setup(void **state) {
        char tmpl[] = "/tmp/test-rootpath-XXXXXX", p[PATH_MAX], *real;
        int fd;

        (void)state;
        assert_non_null(mkdtemp(tmpl));
        real = realpath(tmpl, NULL);
        assert_non_null(real);
        snprintf(root, sizeof(root), "%s", real);
        free(real);
        at("/usr", p), assert_int_equal(mkdir(p, 0755), 0);
        at("/usr/lib", p), assert_int_equal(mkdir(p, 0755), 0);
        at("/usr/lib/py", p), assert_int_equal(mkdir(p, 0755), 0);
        at("/usr/share", p), assert_int_equal(mkdir(p, 0755), 0);
        at("/usr/share/real", p), assert_int_equal(mkdir(p, 0755), 0);
        at("/usr/lib/py/mod.py", p);
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        at("/usr/lib/py/abs", p), assert_int_equal(symlink("/usr/share/real", p), 0);
        at("/usr/lib/py/rel", p), assert_int_equal(symlink("../../share/real", p), 0);
        at("/usr/lib/py/out", p), assert_int_equal(symlink("../../../../..", p), 0);
        at("/usr/lib/py/lnk.py", p), assert_int_equal(symlink("/usr/lib/py/mod.py", p), 0);
        return 0;
}

static int teardown(void **state) {
        (void)state;
        return nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void assert_resolves(const char *inside, bool named, const char *expect_inside) {
        _cleanup_free_ char *got = NULL;
        char want[PATH_MAX];

        at(expect_inside, want);
        if (named)
                assert_int_equal(rootpath_canonicalize_named(root, inside, false, &got), 0);
        else
                assert_int_equal(rootpath_canonicalize(root, inside, &got), 0);
        assert_string_equal(got, want);
        assert_string_equal(rootpath_inside(root, got), expect_inside);
}

static void test_absolute_link_stays_inside(void **state) {
        (void)state;
        /* realpath(3) would name the host's /usr/share/real. */
        assert_resolves("/usr/lib/py/abs", false, "/usr/share/real");
        assert_resolves("/usr/lib/py/abs/", true, "/usr/share/real");
        assert_resolves("/usr/lib/py/rel", false, "/usr/share/real");
        assert_resolves("/usr/lib/py/./../py//mod.py", false, "/usr/lib/py/mod.py");
}

static void test_named_keeps_the_link(void **state) {
        (void)state;
        /* A symlinked module keeps its own name... */
        assert_resolves("/usr/lib/py/lnk.py", true, "/usr/lib/py/lnk.py");
        /* ...and resolves, fully, to the file inside the root. */
        assert_resolves("/usr/lib/py/lnk.py", false, "/usr/lib/py/mod.py");
        /* A directory through a link is resolved fully. */
        assert_resolves("/usr/lib/py/abs", true, "/usr/share/real");
}

static void test_escape_is_refused(void **state) {
        _cleanup_free_ char *got = NULL;

        (void)state;
        assert_int_equal(rootpath_canonicalize(root, "/..", &got), -EXDEV);
        assert_int_equal(rootpath_canonicalize(root, "/usr/../../etc", &got), -EXDEV);
        assert_int_equal(rootpath_canonicalize(root, "/usr/lib/py/out", &got), -EXDEV);
        assert_int_equal(rootpath_canonicalize(root, "/usr/lib/py/out/etc/passwd", &got), -EXDEV);
        assert_int_equal(rootpath_canonicalize_named(root, "/usr/lib/py/out/x.py", true, &got), -EXDEV);
        assert_null(got);
}

static void test_missing(void **state) {
        _cleanup_free_ char *got = NULL;
        char want[PATH_MAX];

        (void)state;
        assert_int_equal(rootpath_canonicalize(root, "/usr/lib/nope/x.py", &got), -ENOENT);
        assert_int_equal(rootpath_canonicalize_named(root, "/usr/lib/nope/__pycache__/x.pyc", true, &got),
                         0);
        at("/usr/lib/nope/__pycache__/x.pyc", want);
        assert_string_equal(got, want);
        free(got);
        got = NULL;
        assert_int_equal(rootpath_canonicalize(root, "/usr/lib/py/mod.py/x", &got), -ENOTDIR);
        assert_int_equal(rootpath_canonicalize(root, "relative", &got), -EINVAL);
}

static void test_join(void **state) {
        _cleanup_free_ char *r = NULL, *nested = NULL;
        char want[PATH_MAX];

        (void)state;
        assert_int_equal(rootpath_join(NULL, NULL, &r), 0);
        assert_null(r);
        assert_int_equal(rootpath_join(root, NULL, &r), 0);
        assert_string_equal(r, root);
        /* A --root given by a client in a chroot is inside its chroot. */
        assert_int_equal(rootpath_join(root, "/usr/lib/py/abs", &nested), 0);
        at("/usr/share/real", want);
        assert_string_equal(nested, want);
        free(r);
        r = NULL;
        assert_int_equal(rootpath_join(root, "/usr/lib/py/mod.py", &r), -ENOTDIR);
        assert_int_equal(rootpath_join(NULL, "/", &r), 0);
        assert_null(r);
}

static void test_inside(void **state) {
        (void)state;
        assert_string_equal(rootpath_inside(NULL, "/a/b"), "/a/b");
        assert_string_equal(rootpath_inside("/srv/t", "/srv/t"), "/");
        assert_string_equal(rootpath_inside("/srv/t", "/srv/t/usr/x.py"), "/usr/x.py");
        /* A sibling with the root as a prefix of its name is not inside. */
        assert_string_equal(rootpath_inside("/srv/t", "/srv/target/x.py"), "/srv/target/x.py");
        assert_int_equal(rootpath_prefix_len(NULL), 0);
        assert_int_equal(rootpath_prefix_len("/srv/t"), 6);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_absolute_link_stays_inside, setup, teardown),
                cmocka_unit_test_setup_teardown(test_named_keeps_the_link, setup, teardown),
                cmocka_unit_test_setup_teardown(test_escape_is_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_join, setup, teardown),
                cmocka_unit_test(test_inside),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
