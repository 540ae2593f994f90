/* SPDX-License-Identifier: MIT */
/* The queue: at most one job per target .pyc, ever.
 *
 * A chained hash table from target path to Job. A job is in the table from
 * the moment a request creates it until its result has been delivered; any
 * request for the same target in that window coalesces onto it instead of
 * creating a second writer. Ordering (FIFO per interpreter) lives in the
 * pools; this file only answers "is someone already doing this target?". */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "queue.h"

typedef struct Entry {
        Job *job;
        struct Entry *next;
} Entry;

struct Queue {
        Entry **buckets;
        size_t n_buckets;
        size_t size;
        size_t max_jobs;
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
