/* SPDX-License-Identifier: MIT */
#pragma once

/* A filesystem identity: whom the kernel checks file permissions against
 * (see fsid.c). */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define FSID_MAX_GROUPS 256

typedef struct FsId {
        uid_t uid;
        gid_t gid;
        gid_t groups[FSID_MAX_GROUPS];   /* supplementary groups */
        size_t n_groups;
} FsId;

/* Switches the *calling thread's* filesystem identity to @id: supplementary
 * groups, fsgid, fsuid, in that order. The other threads keep theirs. The
 * kernel drops the filesystem capabilities (CAP_DAC_OVERRIDE,
 * CAP_DAC_READ_SEARCH, CAP_FOWNER, ...) from the thread while its fsuid is
 * not 0, so every open, stat and walk is checked as @id would be checked.
 * Returns 0, or a negative errno with the thread's identity unchanged. */
int fsid_enter(const FsId *id);
/* Returns the calling thread to the process's own identity. Aborts if that
 * fails: a thread stuck with a foreign identity must never go on. */
void fsid_leave(void);
/* True when @id is the process's own (nothing to switch). */
bool fsid_is_self(const FsId *id);
