/* SPDX-License-Identifier: MIT */
/* Unit tests of the front desk's authorisation table
 * (daemon/frontdesk/dispatch.c): who is privileged, and what each class of
 * caller may ask for. The whole table is checked, verb by verb.
 *
 * The table depends on the daemon's effective uid: a root daemon serves
 * read-only verbs to every local user with that user's filesystem identity;
 * a daemon running as an ordinary user cannot take another identity and so
 * serves others only status and wait. The tests run as root in CI; the
 * unprivileged daemon is checked in a child that drops its effective uid. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dispatch.h"
#include "macro.h"
#include "spec.h"

#define UID_NOBODY ((uid_t)65534)

static const Verb mutating[] = { VERB_COMPILE, VERB_REPAIR, VERB_CLEAN };
static const Verb read_only[] = { VERB_WHY, VERB_HISTORY, VERB_VERIFY, VERB_AUDIT };
static const Verb open_to_all[] = { VERB_STATUS, VERB_WAIT };
/* Changes no file, yet is root's: the failures of root's queued requests,
 * cleared once read. */
static const Verb privileged_only[] = { VERB_COLLECT_FAILURES };

static void test_caller_class(void **state) {
        if (geteuid() != 0)
                skip();
        assert_int_equal(dispatch_caller_class(0), CALLER_PRIVILEGED);
        assert_int_equal(dispatch_caller_class(1), CALLER_LOCAL);
        assert_int_equal(dispatch_caller_class(1000), CALLER_LOCAL);
        assert_int_equal(dispatch_caller_class(UID_NOBODY), CALLER_LOCAL);
        assert_int_equal(dispatch_caller_class((uid_t)-2), CALLER_LOCAL);
}

/* The privileged caller may ask for everything, with the daemon's rights. */
static void test_privileged_may_do_everything(void **state) {
        for (Verb v = 0; v < _VERB_MAX; v++)
                assert_int_equal(dispatch_access(v, CALLER_PRIVILEGED), ACCESS_ALLOWED);
}

static void test_local_caller_of_root_daemon(void **state) {
        if (geteuid() != 0)
                skip();
        for (size_t i = 0; i < ELEMENTSOF(mutating); i++)
                assert_int_equal(dispatch_access(mutating[i], CALLER_LOCAL), ACCESS_DENIED);
        for (size_t i = 0; i < ELEMENTSOF(read_only); i++)
                assert_int_equal(dispatch_access(read_only[i], CALLER_LOCAL), ACCESS_AS_CALLER);
        for (size_t i = 0; i < ELEMENTSOF(open_to_all); i++)
                assert_int_equal(dispatch_access(open_to_all[i], CALLER_LOCAL), ACCESS_ALLOWED);
        for (size_t i = 0; i < ELEMENTSOF(privileged_only); i++)
                assert_int_equal(dispatch_access(privileged_only[i], CALLER_LOCAL), ACCESS_DENIED);
}

/* The lists above cover every verb once, and the mutating ones are exactly
 * those verb_mutates() names: a verb added later must be placed in the table
 * and here. */
static void test_table_covers_every_verb(void **state) {
        unsigned seen[_VERB_MAX] = {};

        for (size_t i = 0; i < ELEMENTSOF(mutating); i++) {
                assert_true(verb_mutates(mutating[i]));
                seen[mutating[i]]++;
        }
        for (size_t i = 0; i < ELEMENTSOF(read_only); i++) {
                assert_false(verb_mutates(read_only[i]));
                seen[read_only[i]]++;
        }
        for (size_t i = 0; i < ELEMENTSOF(open_to_all); i++) {
                assert_false(verb_mutates(open_to_all[i]));
                seen[open_to_all[i]]++;
        }
        for (size_t i = 0; i < ELEMENTSOF(privileged_only); i++) {
                assert_false(verb_mutates(privileged_only[i]));
                seen[privileged_only[i]]++;
        }
        for (Verb v = 0; v < _VERB_MAX; v++)
                assert_int_equal(seen[v], 1);

        /* Whatever the daemon's uid: a verb that mutates is never open to a
         * local caller, and a local caller never gets the daemon's rights
         * for a read-only verb that touches files. */
        for (Verb v = 0; v < _VERB_MAX; v++) {
                Access a = dispatch_access(v, CALLER_LOCAL);

                if (verb_mutates(v))
                        assert_int_equal(a, ACCESS_DENIED);
                assert_true(a == ACCESS_DENIED || a == ACCESS_AS_CALLER || v == VERB_STATUS ||
                            v == VERB_WAIT);
        }
}

/* In a child whose effective uid is not root: what a daemon run by an
 * ordinary user decides. Exits 0 when every check holds, else the number of
 * the failed check. */
static int unprivileged_daemon_checks(void) {
        if (seteuid(UID_NOBODY) < 0)
                return 100;
        if (dispatch_caller_class(UID_NOBODY) != CALLER_PRIVILEGED)
                return 1; /* the daemon's own user */
        if (dispatch_caller_class(0) != CALLER_LOCAL)
                return 2; /* root is just another local user to it */
        for (Verb v = 0; v < _VERB_MAX; v++) {
                Access expected = v == VERB_STATUS || v == VERB_WAIT ? ACCESS_ALLOWED : ACCESS_DENIED;

                if (dispatch_access(v, CALLER_LOCAL) != expected)
                        return 10 + (int)v;
                if (dispatch_access(v, CALLER_PRIVILEGED) != ACCESS_ALLOWED)
                        return 30 + (int)v;
        }
        return 0;
}

static void test_unprivileged_daemon(void **state) {
        pid_t pid;
        int status;

        if (geteuid() != 0)
                skip();
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(unprivileged_daemon_checks());
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_caller_class),
                cmocka_unit_test(test_privileged_may_do_everything),
                cmocka_unit_test(test_local_caller_of_root_daemon),
                cmocka_unit_test(test_table_covers_every_verb),
                cmocka_unit_test(test_unprivileged_daemon),
        };

        return cmocka_run_group_tests_name("dispatch", tests, NULL, NULL);
}
