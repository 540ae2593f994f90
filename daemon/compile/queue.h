/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's queue of jobs, keyed by target .pyc path, and the order
 * between compiles and cleans of the same sources (see queue.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

typedef struct Queue Queue;
typedef struct QueueBarrier QueueBarrier;

int queue_new(size_t max_jobs, Queue **ret);
/* Frees the table, not the jobs. NULL is fine. */
Queue *queue_free(Queue *q);

Job *queue_lookup(Queue *q, const char *target);
/* Adds @j under j->target; -EEXIST when a job for that target exists,
 * -ENOSPC when the queue holds max_jobs already. The job counts for the
 * order (below) from now until queue_job_retired(). */
int queue_add(Queue *q, Job *j);
/* Removes @j if it is the job stored under its target. */
void queue_remove(Queue *q, Job *j);
size_t queue_size(const Queue *q);

/* Joins @r onto the job already queued or in flight for @target, marking it
 * coalesced. Returns the job, or NULL when no such job exists (the caller
 * then creates one), or sets *ret_error on allocation failure. */
Job *queue_coalesce(Queue *q, const char *target, Request *r, int *ret_error);

/* ---- order between compiles and cleans ---------------------------------- */

/* The next number in the order of arrival (compile requests and cleans). */
uint64_t queue_next_seq(Queue *q);

/* A clean that arrived as number @seq: until its cover is known it covers
 * every source. */
int queue_barrier_new(Queue *q, uint64_t seq, QueueBarrier **ret);
/* The canonical paths (sources, or directories covering what is under
 * them) the clean removes the compiled files of; copied. */
int queue_barrier_set_cover(Queue *q, QueueBarrier *b, char *const *paths, size_t n);
/* Ends the barrier: jobs it held may go (queue_pop_released()). NULL is fine. */
QueueBarrier *queue_barrier_free(Queue *q, QueueBarrier *b);
uint64_t queue_barrier_seq(const QueueBarrier *b);
/* True when its cover is known and no job that came before it and
 * compiles a source it covers is left (queued, in flight or undelivered). */
bool queue_barrier_clear(const QueueBarrier *b);
bool queue_has_barriers(const Queue *q);

/* True when a clean that covers @source arrived after @lo and before @hi. */
bool queue_barrier_between(Queue *q, const char *source, uint64_t lo, uint64_t hi);
/* Moves @j earlier in the order (a request that came before a clean joined
 * it); the barriers' counts follow. */
void queue_job_set_seq(Queue *q, Job *j, uint64_t seq);
/* True when a clean that came before @j covers its source: @j must wait. */
bool queue_job_blocked(Queue *q, const Job *j);
/* Keeps @j (in the table, not in any pool) until no clean blocks it. */
void queue_hold(Queue *q, Job *j);
/* The first held job no clean blocks any more, taken off the held list;
 * NULL when there is none. */
Job *queue_pop_released(Queue *q);
/* True when any job is held. */
bool queue_holds_any(const Queue *q);
/* True when a held job would run on @p. */
bool queue_holds_pool(const Queue *q, const Pool *p);
/* @j's result has reached its requests: it no longer counts for the order. */
void queue_job_retired(Queue *q, Job *j);
