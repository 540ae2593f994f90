/* SPDX-License-Identifier: MIT */
#pragma once

/* One warm interpreter process that compiles for us (see worker.c). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "protocol.h"
#include "worker-message.h"
#include "macro.h"

typedef struct Worker Worker;

/* WorkerInfo and WorkerReply are in worker-message.h. Pointers in a
 * WorkerReply are valid only during the callback. */

typedef struct WorkerCallbacks {
        void (*on_ready)(Worker *w, const WorkerInfo *info, void *userdata);
        void (*on_reply)(Worker *w, const WorkerReply *reply, void *userdata);
        /* The worker is gone or being killed: -ETIMEDOUT (job or handshake
         * took too long), -EBADMSG (malformed frame), -ECHILD (it exited),
         * -EPIPE (its pipe broke). Called once; the owner then frees it. */
        void (*on_dead)(Worker *w, int reason, void *userdata);
} WorkerCallbacks;

typedef struct WorkerOptions {
        uid_t uid;                /* (uid_t)-1: keep ours */
        gid_t gid;
        uint64_t memory_limit;    /* RLIMIT_AS, bytes; 0 = none */
        uint64_t handshake_timeout_usec;
        size_t max_reply;
        const char *root; /* run chrooted here (rootpath.h); @interpreter is below it */
} WorkerOptions;

int worker_spawn(sd_event *event, const char *interpreter, const WorkerOptions *opts,
                 const WorkerCallbacks *callbacks, void *userdata, Worker **ret);
/* Kills the process (if alive) and frees everything. NULL is fine. */
Worker *worker_free(Worker *w);
DEFINE_CLEANUP(Worker *, worker_free);

/* Sends one job; the reply or on_dead follows. The source is copied. */
int worker_send_job(Worker *w, uint64_t job_id, const char *display_path, uint32_t mtime, uint32_t size,
                    unsigned opt_level, InvalidationMode mode, const uint8_t *source, size_t source_size,
                    uint64_t timeout_usec);
bool worker_is_busy(const Worker *w);
pid_t worker_pid(const Worker *w);
