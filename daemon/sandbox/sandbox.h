/* SPDX-License-Identifier: MIT */
#pragma once

/* The child side of every interpreter the daemon starts (see sandbox.c).
 * The parent side, fork and the framed pipes, is spawn.h. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef struct SandboxOptions {
        uid_t uid; /* (uid_t)-1: keep ours */
        gid_t gid;
        uint64_t memory_limit; /* RLIMIT_AS, bytes; 0 = none */
        uint64_t cpu_limit;    /* RLIMIT_CPU, seconds; 0 = none */
        bool chroot;           /* run chrooted into @root_fd (an installer's target) */
        int root_fd;
} SandboxOptions;

/* In a freshly forked child of @parent (the daemon's pid, taken before the
 * fork): makes @in_fd stdin and @out_fd stdout, closes every other
 * descriptor, sets the limits, drops privileges, arranges to die with
 * @parent, unblocks signals and execs @path. Async-signal-safe; never
 * returns (exit status 126 when the setup fails or @parent is already gone,
 * 127 when the exec does). */
_noreturn_ void sandbox_exec(pid_t parent, int in_fd, int out_fd, const SandboxOptions *o, const char *path,
                             char **argv, char **envp);
