/* SPDX-License-Identifier: MIT */
#pragma once

/* The one way the daemon starts an interpreter: a sandboxed child with two
 * pipes, and blocking framed I/O with it under a deadline (see spawn.c). */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

/* Frames in both directions: a little-endian u32 length, then the payload. */
#define SPAWN_FRAME_HEADER 4

typedef struct SandboxChild {
        pid_t pid;  /* 0 once reaped */
        int in_fd;  /* we write the child's stdin here; non-blocking */
        int out_fd; /* we read the child's stdout here; non-blocking */
} SandboxChild;

#define SANDBOX_CHILD_NULL ((SandboxChild){ .pid = 0, .in_fd = -1, .out_fd = -1 })

/* Forks and execs @path with @argv and @envp in the sandbox of @o. The
 * caller owns the result: either it takes pid and fds over (a worker
 * watches them from the event loop) or it calls sandbox_child_done(). */
int sandbox_spawn(const SandboxOptions *o, const char *path, char **argv, char **envp, SandboxChild *ret);

/* SIGKILLs the child if it still runs, reaps it and closes both pipes.
 * Bounded: the child has no descriptor but its pipes, so it cannot sit in
 * an uninterruptible wait. */
void sandbox_child_done(SandboxChild *c);

/* Supplies the next frame to send: returns 1 with a malloc'd complete frame
 * (header included) in @ret_frame/@ret_size, 0 when there is nothing more
 * (the child's stdin is then closed), or a negative errno. */
typedef int (*sandbox_feed_fn)(void *userdata, uint8_t **ret_frame, size_t *ret_size);
/* Takes one received frame's payload; returns 0 for more, 1 when every
 * expected frame has come, or a negative errno (-EBADMSG) to give up. */
typedef int (*sandbox_frame_fn)(void *userdata, const uint8_t *payload, size_t size);

/* Writes what @feed supplies and hands each frame the child sends to
 * @on_frame, both at once (so neither side can fill its pipe and wait for
 * the other), until @on_frame returns 1. Never waits past @deadline_usec
 * (CLOCK_MONOTONIC): returns -ETIMEDOUT then. -EPIPE when the child closed
 * its stdout early, -EBADMSG for a frame over @max_frame. On any error the
 * caller should sandbox_child_done() it. */
int sandbox_exchange(SandboxChild *c, sandbox_feed_fn feed, sandbox_frame_fn on_frame, void *userdata,
                     size_t max_frame, uint64_t deadline_usec);
