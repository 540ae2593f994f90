/* SPDX-License-Identifier: MIT */
#pragma once

/* The loop-side of provenance: collects records and has them written in
 * batches on an I/O thread (see recorder.c). */

#include <stdbool.h>
#include <stdint.h>

#include "iopool.h"
#include "provdb.h"
#include "forward.h"

typedef void (*recorder_done_fn)(int error, const char *message, void *userdata);

/* With @enabled false nothing is recorded and durable queueing fails. */
int recorder_new(Manager *m, const char *state_dir, bool enabled, Recorder **ret);
/* Writes what is pending (blocking; at exit only). NULL is fine. */
Recorder *recorder_free(Recorder *r);

bool recorder_enabled(const Recorder *r);
uint64_t recorder_next_request_id(Recorder *r);
/* Take ownership of the record's strings. */
void recorder_add_request(Recorder *r, ProvRequest *req);
void recorder_add_job(Recorder *r, ProvJob *job);

/* Durable queue: the callback runs on the loop once the row is committed
 * (@error 0) or could not be (@error < 0, @message says why). The
 * request's own record (@request, whose strings are taken; its id is the
 * queue entry's) is committed with it. */
void recorder_queue_add(Recorder *r, ProvRequest *request, uid_t uid, const char *peer_root,
                        const uint8_t *spec, size_t size, recorder_done_fn done, void *userdata);
/* A finished request leaves the queue with the next batch, in the same
 * transaction as its last records. */
void recorder_queue_remove(Recorder *r, uint64_t request_id);

/* The failures of --no-wait requests: @fn runs on the loop with the oldest
 * @limit of them, once everything recorded so far is written; the array is
 * freed after @fn returns. Clearing removes those up to @max_id. */
typedef void (*recorder_failures_fn)(int error, const ProvFailure *failures, size_t n, void *userdata);
/* @root: only the failures of requests that worked in that root (a chroot
 * client's), NULL for the daemon's own: each root's dpkg collects its own. */
void recorder_failures_read(Recorder *r, uint64_t limit, const char *root, recorder_failures_fn fn, void *userdata);
void recorder_failures_clear(Recorder *r, uint64_t max_id, const char *root);
/* Replays the stored queue through @fn; at startup, before serving. */
int recorder_queue_load(Recorder *r, int (*fn)(const ProvQueued *q, void *userdata), void *userdata);

/* Calls @fn once everything recorded so far has been written (or the
 * attempt failed): readers then see it. */
void recorder_sync(Recorder *r, void (*fn)(void *userdata), void *userdata);

bool recorder_degraded(const Recorder *r);
const char *recorder_degraded_reason(const Recorder *r);
const char *recorder_path(const Recorder *r);
uint64_t recorder_rows(const Recorder *r);
uint64_t recorder_dropped(const Recorder *r);
ProvDb *recorder_db(Recorder *r);
