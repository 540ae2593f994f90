/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's queue of jobs, keyed by target .pyc path (see queue.c). */

#include <stddef.h>

#include "job.h"

typedef struct Queue Queue;

int queue_new(size_t max_jobs, Queue **ret);
/* Frees the table, not the jobs. NULL is fine. */
Queue *queue_free(Queue *q);

Job *queue_lookup(Queue *q, const char *target);
/* Adds @j under j->target; -EEXIST when a job for that target exists,
 * -ENOSPC when the queue holds max_jobs already. */
int queue_add(Queue *q, Job *j);
/* Removes @j if it is the job stored under its target. */
void queue_remove(Queue *q, Job *j);
size_t queue_size(const Queue *q);

/* Joins @r onto the job already queued or in flight for @target, marking it
 * coalesced. Returns the job, or NULL when no such job exists (the caller
 * then creates one), or sets *ret_error on allocation failure. */
Job *queue_coalesce(Queue *q, const char *target, Request *r, int *ret_error);
