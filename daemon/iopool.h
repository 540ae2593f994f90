/* SPDX-License-Identifier: MIT */
#pragma once

/* A small pool of threads for the blocking file work (walking trees,
 * reading sources, fsync) so that the event loop never waits on a disk. */

#include <systemd/sd-event.h>

typedef struct IoWork IoWork;
typedef void (*io_work_fn)(IoWork *w);

/* Embed an IoWork in the object the work is about. @run executes on a pool
 * thread and may touch only what the submitter handed over; @done runs
 * afterwards on the event loop thread. */
struct IoWork {
        io_work_fn run;
        io_work_fn done;
        IoWork *next;
};

typedef struct IoPool IoPool;

int iopool_new(sd_event *event, unsigned n_threads, IoPool **ret);
/* Waits for every submitted work item to run; their @done callbacks are not
 * called. NULL is fine. */
IoPool *iopool_free(IoPool *p);
void iopool_submit(IoPool *p, IoWork *w);
/* Work items submitted and not yet completed on the loop thread (0 for
 * NULL, as during teardown). */
unsigned iopool_pending(IoPool *p);
