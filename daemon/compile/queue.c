/* SPDX-License-Identifier: MIT */
/* The queue: at most one job per target .pyc, ever, and no compile of a
 * source on the wrong side of a clean of it.
 *
 * A chained hash table from target path to Job. A job is in the table from
 * the moment a request creates it until its result has been delivered; any
 * request for the same target in that window coalesces onto it instead of
 * creating a second writer. Ordering among compiles (FIFO per interpreter)
 * lives in the pools.
 *
 * Cleans are ordered with compiles by arrival. Every compile request and
 * every clean takes a number (queue_next_seq()); a job carries the number
 * of the earliest request it serves. A clean is a barrier over the sources
 * it covers (the files it names, everything under the directories it
 * names, or everything while it has not yet said which):
 *
 *   - it runs only when no job numbered before it compiles a covered
 *     source (a count kept per barrier as jobs come and go, so checking
 *     costs nothing) and no compile request numbered before it is still
 *     walking its paths (its jobs do not exist yet; manager.c checks that);
 *   - a job numbered after it that compiles a covered source is held (kept
 *     in the table, so later requests still coalesce onto it, but in no
 *     pool) until the clean has finished;
 *   - a request never takes another request's result across a clean: one
 *     that comes after a clean and finds a job from before it waits for
 *     that job and takes the target again (request.c's requeue), and one
 *     that comes before a clean and finds a held job from after it moves
 *     the job before the clean and sends the later waiters round again.
 *
 * Every wait is for something numbered earlier, so nothing waits in a
 * circle. The result: no .pyc a compile ordered before a clean wrote
 * survives the clean, and no compile ordered after it is undone by it. */

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "queue.h"

typedef struct Entry {
        Job *job;
        struct Entry *next;
} Entry;

struct QueueBarrier {
        uint64_t seq;
        bool known;      /* cover set; until then it covers everything */
        bool everything; /* "/" is among its paths */
        char **paths;    /* sorted */
        size_t n_paths;
        uint64_t n_before; /* live jobs numbered before it on covered sources */
        QueueBarrier *next, *prev;
};

struct Queue {
        Entry **buckets;
        size_t n_buckets;
        size_t size;
        size_t max_jobs;
        uint64_t next_seq;
        Job *live;      /* every job from queue_add() to queue_job_retired() */
        Job *held_head; /* held jobs, in order of arrival */
        QueueBarrier *barriers;
};

static uint64_t hash_string(const char *s) {
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (; *s; s++) {
                h ^= (uint8_t)*s;
                h *= 1099511628211ULL;
        }
        return h;
}

int queue_new(size_t max_jobs, Queue **ret) {
        Queue *q = calloc(1, sizeof(*q));

        if (!q)
                return -ENOMEM;
        q->n_buckets = 1024;
        q->buckets = calloc(q->n_buckets, sizeof(Entry *));
        if (!q->buckets) {
                free(q);
                return -ENOMEM;
        }
        q->max_jobs = max_jobs;
        *ret = q;
        return 0;
}

Queue *queue_free(Queue *q) {
        if (!q)
                return NULL;
        while (q->barriers)
                queue_barrier_free(q, q->barriers);
        /* At exit: a held job is in no pool, so nobody else frees it. */
        while (q->held_head) {
                Job *j = q->held_head;
                q->held_head = j->next;
                job_free(j);
        }
        for (size_t i = 0; i < q->n_buckets; i++)
                for (Entry *e = q->buckets[i], *n; e; e = n) {
                        n = e->next;
                        free(e);
                }
        free(q->buckets);
        free(q);
        return NULL;
}

static Entry **queue_find(Queue *q, const char *target) {
        Entry **p = &q->buckets[hash_string(target) & (q->n_buckets - 1)];

        for (; *p; p = &(*p)->next)
                if (strcmp((*p)->job->target, target) == 0)
                        return p;
        return p;
}

Job *queue_lookup(Queue *q, const char *target) {
        Entry **p = queue_find(q, target);
        return *p ? (*p)->job : NULL;
}

static void queue_grow(Queue *q) {
        size_t n = q->n_buckets * 2;
        Entry **nb = calloc(n, sizeof(Entry *));

        if (!nb)
                return; /* stay at the current size: slower, still correct */
        for (size_t i = 0; i < q->n_buckets; i++)
                for (Entry *e = q->buckets[i], *next; e; e = next) {
                        size_t k = hash_string(e->job->target) & (n - 1);
                        next = e->next;
                        e->next = nb[k];
                        nb[k] = e;
                }
        free(q->buckets);
        q->buckets = nb;
        q->n_buckets = n;
}

static void barriers_count(Queue *q, const Job *j, int delta);

int queue_add(Queue *q, Job *j) {
        Entry **p, *e;

        if (q->size >= q->max_jobs)
                return -ENOSPC;
        p = queue_find(q, j->target);
        if (*p)
                return -EEXIST;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->job = j;
        *p = e;
        q->size++;
        if (!j->live) {
                j->live = true;
                j->live_prev = NULL;
                j->live_next = q->live;
                if (q->live)
                        q->live->live_prev = j;
                q->live = j;
                barriers_count(q, j, +1);
        }
        if (q->size > q->n_buckets)
                queue_grow(q);
        return 0;
}

void queue_remove(Queue *q, Job *j) {
        Entry **p = queue_find(q, j->target), *e = *p;

        if (!e || e->job != j)
                return;
        *p = e->next;
        free(e);
        q->size--;
}

size_t queue_size(const Queue *q) {
        return q->size;
}

Job *queue_coalesce(Queue *q, const char *target, Request *r, int *ret_error) {
        Job *j = queue_lookup(q, target);
        int k;

        *ret_error = 0;
        if (!j)
                return NULL;
        k = job_add_waiter(j, r, true);
        if (k < 0) {
                *ret_error = k;
                return NULL;
        }
        return j;
}

/* ---- order between compiles and cleans ---------------------------------- */

uint64_t queue_next_seq(Queue *q) {
        return ++q->next_seq;
}

static int path_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @source is one of @b's paths or lies under one of them. */
static bool barrier_covers(const QueueBarrier *b, const char *source) {
        char buf[PATH_MAX];
        size_t n = strlen(source);

        if (!b->known || b->everything)
                return true;
        if (n >= sizeof(buf))
                return true; /* cannot tell: be careful */
        memcpy(buf, source, n + 1);
        /* The path itself, then each directory above it. */
        for (;;) {
                const char *key = buf;
                char *slash;

                if (bsearch(&key, b->paths, b->n_paths, sizeof(char *), path_cmp))
                        return true;
                slash = strrchr(buf, '/');
                if (!slash || slash == buf)
                        return false;
                *slash = '\0';
        }
}

static bool barrier_counts(const QueueBarrier *b, const Job *j) {
        return b->known && j->seq < b->seq && barrier_covers(b, j->source);
}

static void barriers_count(Queue *q, const Job *j, int delta) {
        for (QueueBarrier *b = q->barriers; b; b = b->next)
                if (barrier_counts(b, j)) {
                        assert(delta > 0 || b->n_before > 0);
                        b->n_before += delta;
                }
}

int queue_barrier_new(Queue *q, uint64_t seq, QueueBarrier **ret) {
        QueueBarrier *b = calloc(1, sizeof(*b));

        if (!b)
                return -ENOMEM;
        b->seq = seq;
        b->next = q->barriers;
        if (q->barriers)
                q->barriers->prev = b;
        q->barriers = b;
        *ret = b;
        return 0;
}

int queue_barrier_set_cover(Queue *q, QueueBarrier *b, char *const *paths, size_t n) {
        char **v;

        assert(!b->known);
        v = calloc(MAX(n, (size_t)1), sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(paths[i]);

                v[i] = strdup(paths[i]);
                if (!v[i]) {
                        while (i > 0)
                                free(v[--i]);
                        free(v);
                        return -ENOMEM;
                }
                /* Compared as canonical paths: no trailing slash. */
                while (len > 1 && v[i][len - 1] == '/')
                        v[i][--len] = '\0';
                if (strcmp(v[i], "/") == 0)
                        b->everything = true;
        }
        qsort(v, n, sizeof(char *), path_cmp);
        b->paths = v;
        b->n_paths = n;
        b->known = true;
        b->n_before = 0;
        for (Job *j = q->live; j; j = j->live_next)
                if (barrier_counts(b, j))
                        b->n_before++;
        return 0;
}

QueueBarrier *queue_barrier_free(Queue *q, QueueBarrier *b) {
        if (!b)
                return NULL;
        if (b->prev)
                b->prev->next = b->next;
        else
                q->barriers = b->next;
        if (b->next)
                b->next->prev = b->prev;
        for (size_t i = 0; i < b->n_paths; i++)
                free(b->paths[i]);
        free(b->paths);
        free(b);
        return NULL;
}

uint64_t queue_barrier_seq(const QueueBarrier *b) {
        return b->seq;
}

bool queue_barrier_clear(const QueueBarrier *b) {
        return b->known && b->n_before == 0;
}

bool queue_has_barriers(const Queue *q) {
        return q->barriers != NULL;
}

bool queue_barrier_between(Queue *q, const char *source, uint64_t lo, uint64_t hi) {
        for (QueueBarrier *b = q->barriers; b; b = b->next)
                if (b->seq > lo && b->seq < hi && barrier_covers(b, source))
                        return true;
        return false;
}

void queue_job_set_seq(Queue *q, Job *j, uint64_t seq) {
        if (j->live)
                barriers_count(q, j, -1);
        j->seq = seq;
        if (j->live)
                barriers_count(q, j, +1);
}

bool queue_job_blocked(Queue *q, const Job *j) {
        return queue_barrier_between(q, j->source, 0, j->seq);
}

void queue_hold(Queue *q, Job *j) {
        Job **p = &q->held_head;

        while (*p)
                p = &(*p)->next;
        j->next = NULL;
        j->held = true;
        *p = j;
}

Job *queue_pop_released(Queue *q) {
        for (Job **p = &q->held_head; *p; p = &(*p)->next) {
                Job *j = *p;

                if (queue_job_blocked(q, j))
                        continue;
                *p = j->next;
                j->next = NULL;
                j->held = false;
                return j;
        }
        return NULL;
}

bool queue_holds_any(const Queue *q) {
        return q->held_head != NULL;
}

bool queue_holds_pool(const Queue *q, const Pool *p) {
        for (const Job *j = q->held_head; j; j = j->next)
                if (j->pool == p)
                        return true;
        return false;
}

void queue_job_retired(Queue *q, Job *j) {
        if (!j->live)
                return;
        barriers_count(q, j, -1);
        if (j->live_prev)
                j->live_prev->live_next = j->live_next;
        else
                q->live = j->live_next;
        if (j->live_next)
                j->live_next->live_prev = j->live_prev;
        j->live = false;
        j->live_next = j->live_prev = NULL;
}
