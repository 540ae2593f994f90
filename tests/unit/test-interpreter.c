/* SPDX-License-Identifier: MIT */
/* Unit tests of the trusted-interpreter rules (daemon/compile/interpreter.c).
 *
 * Each test builds files under a fresh root-owned 0755 directory in /tmp
 * (itself root-owned, world-writable and sticky, which the rules accept
 * above an entry root owns) and asks interpreter_resolve() about them:
 *
 *     BASE/bin/python          root 0755 in a root 0755 directory: accepted
 *     BASE/bin/open            0777: refused
 *     BASE/bin/theirs          owned by nobody: refused
 *     BASE/group/python        in a 0775 directory of a non-root group: refused
 *     BASE/rootgroup/python    in a 0775 directory of group root: accepted
 *     BASE/world/python        in a 0777 directory without the sticky bit: refused
 *     BASE/sticky/python       in a 01777 directory, root's file: accepted
 *     BASE/sticky/theirs       in a 01777 directory, nobody's file: refused
 *     BASE/bin/data            0644: not executable
 *     BASE/link -> bin/python  resolved to its target
 *
 * Changing owners needs root; the tests that do are skipped otherwise. */

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

#include "interpreter.h"
#include "macro.h"

#define UID_NOBODY ((uid_t)65534)
#define GID_NOGROUP ((gid_t)65534)

typedef struct Tree {
        char base[PATH_MAX];
} Tree;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static char *tree_path(const Tree *t, const char *rel) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", t->base, rel) >= 0);
        return p;
}

static void tree_dir(const Tree *t, const char *rel, mode_t mode, gid_t gid) {
        _cleanup_free_ char *p = tree_path(t, rel);

        assert_int_equal(mkdir(p, 0700), 0);
        assert_int_equal(chown(p, 0, gid), 0);
        assert_int_equal(chmod(p, mode), 0); /* after chown, which may clear bits; not masked by umask */
}

static void tree_file(const Tree *t, const char *rel, mode_t mode, uid_t uid) {
        _cleanup_free_ char *p = tree_path(t, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
        assert_int_equal(close(fd), 0);
        assert_int_equal(chown(p, uid, 0), 0);
        assert_int_equal(chmod(p, mode), 0);
}

static int setup(void **state) {
        Tree *t;
        struct stat st;

        /* Every test here creates files owned by others. */
        if (geteuid() != 0)
                return 0;
        /* The rules accept /tmp only as a root-owned sticky directory. */
        if (stat("/tmp", &st) < 0 || st.st_uid != 0 || (st.st_mode & 07777) != 01777)
                return 0;
        t = calloc(1, sizeof(*t));
        assert_non_null(t);
        strcpy(t->base, "/tmp/test-interpreter.XXXXXX");
        assert_non_null(mkdtemp(t->base));
        assert_int_equal(chmod(t->base, 0755), 0);

        tree_dir(t, "bin", 0755, 0);
        tree_file(t, "bin/python", 0755, 0);
        tree_file(t, "bin/open", 0777, 0);
        tree_file(t, "bin/theirs", 0755, UID_NOBODY);
        tree_file(t, "bin/data", 0644, 0);
        tree_dir(t, "group", 0775, GID_NOGROUP);
        tree_file(t, "group/python", 0755, 0);
        tree_dir(t, "rootgroup", 0775, 0);
        tree_file(t, "rootgroup/python", 0755, 0);
        tree_dir(t, "world", 0777, 0);
        tree_file(t, "world/python", 0755, 0);
        tree_dir(t, "sticky", 01777, 0);
        tree_file(t, "sticky/python", 0755, 0);
        tree_file(t, "sticky/theirs", 0755, UID_NOBODY);
        {
                _cleanup_free_ char *link = tree_path(t, "link");
                assert_int_equal(symlink("bin/python", link), 0);
        }
        *state = t;
        return 0;
}

static int teardown(void **state) {
        Tree *t = *state;

        if (t) {
                assert_int_equal(nftw(t->base, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
                free(t);
        }
        return 0;
}

/* Resolves BASE/@rel and expects @error (0 for accepted). On success checks
 * the identity against stat(); on failure that the outputs were not touched
 * and the message names the interpreter and contains @reason. */
static void expect(const Tree *t, const char *rel, int error, const char *reason) {
        _cleanup_free_ char *p = tree_path(t, rel), *message = NULL;
        char *path = (char *)"untouched";
        InterpreterId id = { .ino = 4242 };
        int r;

        r = interpreter_resolve(p, &path, &id, &message);
        if (r != error)
                fail_msg("%s: expected %d, got %d (%s)", rel, error, r, message ? message : "no message");
        if (error == 0) {
                _cleanup_free_ char *real = realpath(p, NULL);
                struct stat st;

                assert_null(message);
                assert_non_null(real);
                assert_string_equal(path, real);
                assert_int_equal(stat(real, &st), 0);
                assert_true(id.dev == st.st_dev && id.ino == st.st_ino && id.uid == st.st_uid &&
                            id.mode == st.st_mode);
                free(path);
        } else {
                assert_string_equal(path, "untouched");
                assert_int_equal(id.ino, 4242);
                assert_non_null(message);
                assert_non_null(strstr(message, "interpreter "));
                if (reason && !strstr(message, reason))
                        fail_msg("%s: message \"%s\" lacks \"%s\"", rel, message, reason);
        }
}

#define TREE_OR_SKIP(state)                                                                                 \
        ({                                                                                                  \
                if (!*(state))                                                                              \
                        skip();                                                                             \
                (const Tree *)*(state);                                                                     \
        })

static void test_trusted_file_accepted(void **state) {
        const Tree *t = TREE_OR_SKIP(state);

        expect(t, "bin/python", 0, NULL);
        /* A directory group root may write is still root's. */
        expect(t, "rootgroup/python", 0, NULL);
}

static void test_world_writable_file_refused(void **state) {
        const Tree *t = TREE_OR_SKIP(state);

        expect(t, "bin/open", -EPERM, "writable by any user");
}

static void test_file_owned_by_other_refused(void **state) {
        const Tree *t = TREE_OR_SKIP(state);

        expect(t, "bin/theirs", -EPERM, "not root");
}

static void test_group_writable_dir_refused(void **state) {
        const Tree *t = TREE_OR_SKIP(state);

        expect(t, "group/python", -EPERM, "writable by group");
}

static void test_world_writable_dir_refused(void **state) {
        const Tree *t = TREE_OR_SKIP(state);

        expect(t, "world/python", -EPERM, "writable by any user");
}

/* Nobody else may rename or remove root's entry in a sticky directory. */
static void test_sticky_dir(void **state) {
        const Tree *t = TREE_OR_SKIP(state);

        expect(t, "sticky/python", 0, NULL);
        expect(t, "sticky/theirs", -EPERM, "not root");
}

static void test_not_executable(void **state) {
        const Tree *t = TREE_OR_SKIP(state);

        expect(t, "bin/data", -ENOEXEC, "not an executable file");
        expect(t, "bin", -ENOEXEC, "not an executable file");
        expect(t, "missing", -ENOENT, "cannot be found");
}

static void test_symlink_resolved(void **state) {
        const Tree *t = TREE_OR_SKIP(state);
        _cleanup_free_ char *link = tree_path(t, "link"), *target = tree_path(t, "bin/python");
        _cleanup_free_ char *path = NULL, *message = NULL;
        InterpreterId id;

        /* The link's own owner does not matter: the target is what runs. */
        assert_int_equal(lchown(link, UID_NOBODY, GID_NOGROUP), 0);
        assert_int_equal(interpreter_resolve(link, &path, &id, &message), 0);
        assert_string_equal(path, target);
        assert_null(message);

        /* A link to a refused file is refused. */
        {
                _cleanup_free_ char *bad = tree_path(t, "badlink"), *message2 = NULL;
                char *untouched = (char *)"untouched";

                assert_int_equal(symlink("bin/theirs", bad), 0);
                assert_int_equal(interpreter_resolve(bad, &untouched, &id, &message2), -EPERM);
                assert_string_equal(untouched, "untouched");
                assert_non_null(message2);
        }
}

static void test_id_equal(void **state) {
        const Tree *t = TREE_OR_SKIP(state);
        _cleanup_free_ char *python = tree_path(t, "bin/python"), *other = tree_path(t, "rootgroup/python");
        _cleanup_free_ char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL, *m = NULL;
        InterpreterId a, b, c, d;

        assert_int_equal(interpreter_resolve(python, &p1, &a, &m), 0);
        assert_int_equal(interpreter_resolve(python, &p2, &b, &m), 0);
        assert_true(interpreter_id_equal(&a, &b));

        assert_int_equal(interpreter_resolve(other, &p3, &c, &m), 0);
        assert_false(interpreter_id_equal(&a, &c));

        /* Same file, changed mode: a different identity. */
        assert_int_equal(chmod(python, 0700), 0);
        assert_int_equal(interpreter_resolve(python, &p4, &d, &m), 0);
        assert_false(interpreter_id_equal(&a, &d));
        d.mode = a.mode;
        assert_true(interpreter_id_equal(&a, &d));
        d.uid = UID_NOBODY;
        assert_false(interpreter_id_equal(&a, &d));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_trusted_file_accepted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_world_writable_file_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_file_owned_by_other_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_writable_dir_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_world_writable_dir_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sticky_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_executable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_resolved, setup, teardown),
                cmocka_unit_test_setup_teardown(test_id_equal, setup, teardown),
        };

        return cmocka_run_group_tests_name("interpreter", tests, NULL, NULL);
}
