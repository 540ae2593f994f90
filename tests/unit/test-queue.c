/* SPDX-License-Identifier: MIT */
/* Unit tests of the job queue (daemon/compile/queue.c) and of job creation and
 * waiters (daemon/compile/job.c).
 *
 * Jobs are created with no pool, and requests are dummy pointers: neither
 * the queue nor job_add_waiter() dereferences them. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "job.h"
#include "macro.h"
#include "queue.h"

DEFINE_CLEANUP(Queue *, queue_free);

/* Distinct non-NULL Request pointers that are never dereferenced. */
static char request_storage[8];
#define REQUEST(i) ((Request *)(void *)&request_storage[i])

static Job *new_job(uint64_t id, const char *target) {
        Job *j = NULL;

        assert_int_equal(job_new(id, "/src/foo.py", target, 0, NULL, 0, INVALIDATION_TIMESTAMP, &j), 0);
        assert_non_null(j);
        return j;
}

static void test_job_new(void **state) {
        _cleanup_(job_freep) Job *j = NULL;

        assert_int_equal(job_new(7, "/srv/app/m.py", "/srv/app/__pycache__/m.cpython-311.opt-1.pyc", 0, NULL,
                                 1, INVALIDATION_CHECKED_HASH, &j),
                         0);
        assert_int_equal(j->id, 7);
        assert_string_equal(j->source, "/srv/app/m.py");
        assert_string_equal(j->target, "/srv/app/__pycache__/m.cpython-311.opt-1.pyc");
        assert_string_equal(j->target_name, "m.cpython-311.opt-1.pyc");
        /* target_name points into target */
        assert_ptr_equal(j->target_name, j->target + strlen("/srv/app/__pycache__/"));
        assert_null(j->pool);
        assert_int_equal(j->opt_level, 1);
        assert_int_equal(j->mode, INVALIDATION_CHECKED_HASH);
        assert_int_equal(j->state, JOB_QUEUED);
        assert_int_equal(j->dir_fd, -1);
        assert_int_equal(j->source_fd, -1);
        assert_int_equal(j->n_waiters, 0);
        assert_null(j->data);

        /* job_free() accepts NULL and returns NULL */
        assert_null(job_free(NULL));
        assert_null(job_free(TAKE_PTR(j)));
}

static void test_job_new_copies_strings(void **state) {
        _cleanup_(job_freep) Job *j = NULL;
        char source[] = "/a/x.py", target[] = "x.cpython-311.pyc";

        assert_int_equal(job_new(1, source, target, 0, NULL, 0, INVALIDATION_TIMESTAMP, &j), 0);
        source[1] = target[0] = 'Z';
        assert_string_equal(j->source, "/a/x.py");
        assert_string_equal(j->target, "x.cpython-311.pyc");
        /* no slash: the whole target is the name */
        assert_ptr_equal(j->target_name, j->target);
}

static void test_job_waiters(void **state) {
        _cleanup_(job_freep) Job *j = new_job(1, "/t/__pycache__/a.pyc");

        for (size_t i = 0; i < 8; i++)
                assert_int_equal(job_add_waiter(j, REQUEST(i), i % 2 == 1), 0);
        assert_int_equal(j->n_waiters, 8);
        for (size_t i = 0; i < 8; i++) {
                assert_ptr_equal(j->waiters[i].request, REQUEST(i));
                assert_int_equal(j->waiters[i].coalesced, i % 2 == 1);
        }
}

static void test_add_lookup_remove(void **state) {
        _cleanup_(queue_freep) Queue *q = NULL;
        _cleanup_(job_freep) Job *a = new_job(1, "/x/__pycache__/a.cpython-311.pyc");
        _cleanup_(job_freep) Job *b = new_job(2, "/x/__pycache__/b.cpython-311.pyc");

        assert_int_equal(queue_new(16, &q), 0);
        assert_int_equal(queue_size(q), 0);
        assert_null(queue_lookup(q, a->target));

        assert_int_equal(queue_add(q, a), 0);
        assert_int_equal(queue_add(q, b), 0);
        assert_int_equal(queue_size(q), 2);
        assert_ptr_equal(queue_lookup(q, "/x/__pycache__/a.cpython-311.pyc"), a);
        assert_ptr_equal(queue_lookup(q, "/x/__pycache__/b.cpython-311.pyc"), b);
        assert_null(queue_lookup(q, "/x/__pycache__/c.cpython-311.pyc"));
        assert_null(queue_lookup(q, "/x/__pycache__/a.cpython-311.pyc/"));
        assert_null(queue_lookup(q, ""));

        queue_remove(q, a);
        assert_int_equal(queue_size(q), 1);
        assert_null(queue_lookup(q, a->target));
        assert_ptr_equal(queue_lookup(q, b->target), b);

        /* removing twice is harmless */
        queue_remove(q, a);
        assert_int_equal(queue_size(q), 1);

        /* the target can be queued again once removed */
        assert_int_equal(queue_add(q, a), 0);
        assert_ptr_equal(queue_lookup(q, a->target), a);
        assert_int_equal(queue_size(q), 2);
}

static void test_add_duplicate_target(void **state) {
        _cleanup_(queue_freep) Queue *q = NULL;
        _cleanup_(job_freep) Job *a = new_job(1, "/x/__pycache__/a.cpython-311.pyc");
        _cleanup_(job_freep) Job *a2 = new_job(2, "/x/__pycache__/a.cpython-311.pyc");

        assert_int_equal(queue_new(16, &q), 0);
        assert_int_equal(queue_add(q, a), 0);
        assert_int_equal(queue_add(q, a2), -EEXIST);
        assert_int_equal(queue_add(q, a), -EEXIST);
        assert_int_equal(queue_size(q), 1);
        assert_ptr_equal(queue_lookup(q, a->target), a);

        /* removing the job that is not the stored one changes nothing */
        queue_remove(q, a2);
        assert_int_equal(queue_size(q), 1);
        assert_ptr_equal(queue_lookup(q, a->target), a);
}

static void test_add_limit(void **state) {
        _cleanup_(queue_freep) Queue *q = NULL;
        Job *jobs[4] = {};
        _cleanup_(job_freep) Job *extra = new_job(99, "/x/__pycache__/extra.pyc");

        assert_int_equal(queue_new(3, &q), 0);
        for (size_t i = 0; i < 3; i++) {
                char target[64];

                snprintf(target, sizeof(target), "/x/__pycache__/%zu.pyc", i);
                jobs[i] = new_job(i, target);
                assert_int_equal(queue_add(q, jobs[i]), 0);
        }
        assert_int_equal(queue_add(q, extra), -ENOSPC);
        assert_int_equal(queue_size(q), 3);
        assert_null(queue_lookup(q, extra->target));

        /* room again after a removal */
        queue_remove(q, jobs[1]);
        assert_int_equal(queue_add(q, extra), 0);
        assert_ptr_equal(queue_lookup(q, extra->target), extra);
        assert_int_equal(queue_size(q), 3);

        queue_remove(q, extra);
        for (size_t i = 0; i < 3; i++) {
                queue_remove(q, jobs[i]);
                job_free(jobs[i]);
        }
        assert_int_equal(queue_size(q), 0);
}

static void test_zero_limit(void **state) {
        _cleanup_(queue_freep) Queue *q = NULL;
        _cleanup_(job_freep) Job *a = new_job(1, "/a.pyc");

        assert_int_equal(queue_new(0, &q), 0);
        assert_int_equal(queue_add(q, a), -ENOSPC);
        assert_int_equal(queue_size(q), 0);
}

#define MANY 5000

static void test_growth(void **state) {
        _cleanup_(queue_freep) Queue *q = NULL;
        _cleanup_free_ Job **jobs = calloc(MANY, sizeof(Job *));

        assert_non_null(jobs);
        assert_int_equal(queue_new(MANY, &q), 0);
        for (size_t i = 0; i < MANY; i++) {
                char target[128];

                snprintf(target, sizeof(target),
                         "/usr/lib/python3/dist-packages/pkg%zu/__pycache__/m.cpython-311.pyc", i);
                jobs[i] = new_job(i, target);
                assert_int_equal(queue_add(q, jobs[i]), 0);
                assert_int_equal(queue_size(q), i + 1);
        }
        /* the table grew past its initial 1024 buckets several times; every job is still found */
        for (size_t i = 0; i < MANY; i++)
                assert_ptr_equal(queue_lookup(q, jobs[i]->target), jobs[i]);
        /* full */
        {
                _cleanup_(job_freep) Job *extra = new_job(2 * MANY, "/extra.pyc");
                assert_int_equal(queue_add(q, extra), -ENOSPC);
        }
        /* remove every other job; the rest remain findable */
        for (size_t i = 0; i < MANY; i += 2)
                queue_remove(q, jobs[i]);
        assert_int_equal(queue_size(q), MANY / 2);
        for (size_t i = 0; i < MANY; i++)
                if (i % 2 == 0)
                        assert_null(queue_lookup(q, jobs[i]->target));
                else
                        assert_ptr_equal(queue_lookup(q, jobs[i]->target), jobs[i]);
        /* duplicates are still detected after growth (with room left, so that
         * the limit does not answer first) */
        for (size_t i = 1; i < MANY; i += 2) {
                _cleanup_(job_freep) Job *dup = new_job(i + MANY, jobs[i]->target);
                assert_int_equal(queue_add(q, dup), -EEXIST);
        }
        assert_int_equal(queue_size(q), MANY / 2);

        for (size_t i = 0; i < MANY; i++)
                job_free(jobs[i]);
}

static void test_coalesce(void **state) {
        _cleanup_(queue_freep) Queue *q = NULL;
        _cleanup_(job_freep) Job *a = new_job(1, "/x/__pycache__/a.cpython-311.pyc");
        int error = 12345;

        assert_int_equal(queue_new(16, &q), 0);

        /* unknown target: NULL, no error, nothing queued */
        assert_null(queue_coalesce(q, a->target, REQUEST(0), &error));
        assert_int_equal(error, 0);
        assert_int_equal(queue_size(q), 0);

        /* the creating request is a plain waiter */
        assert_int_equal(job_add_waiter(a, REQUEST(0), false), 0);
        assert_int_equal(queue_add(q, a), 0);

        error = 12345;
        assert_ptr_equal(queue_coalesce(q, "/x/__pycache__/a.cpython-311.pyc", REQUEST(1), &error), a);
        assert_int_equal(error, 0);
        assert_ptr_equal(queue_coalesce(q, a->target, REQUEST(2), &error), a);
        assert_int_equal(error, 0);

        assert_int_equal(a->n_waiters, 3);
        assert_ptr_equal(a->waiters[0].request, REQUEST(0));
        assert_false(a->waiters[0].coalesced);
        assert_ptr_equal(a->waiters[1].request, REQUEST(1));
        assert_true(a->waiters[1].coalesced);
        assert_ptr_equal(a->waiters[2].request, REQUEST(2));
        assert_true(a->waiters[2].coalesced);
        /* coalescing adds no job */
        assert_int_equal(queue_size(q), 1);

        /* another target stays unknown */
        error = 12345;
        assert_null(queue_coalesce(q, "/x/__pycache__/b.cpython-311.pyc", REQUEST(3), &error));
        assert_int_equal(error, 0);
        assert_int_equal(a->n_waiters, 3);

        /* once removed, the target no longer coalesces */
        queue_remove(q, a);
        assert_null(queue_coalesce(q, a->target, REQUEST(4), &error));
        assert_int_equal(a->n_waiters, 3);
}

static void test_queue_free_null(void **state) {
        assert_null(queue_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_job_new),
                cmocka_unit_test(test_job_new_copies_strings),
                cmocka_unit_test(test_job_waiters),
                cmocka_unit_test(test_add_lookup_remove),
                cmocka_unit_test(test_add_duplicate_target),
                cmocka_unit_test(test_add_limit),
                cmocka_unit_test(test_zero_limit),
                cmocka_unit_test(test_growth),
                cmocka_unit_test(test_coalesce),
                cmocka_unit_test(test_queue_free_null),
        };

        return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
