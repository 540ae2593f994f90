/* SPDX-License-Identifier: MIT */
#pragma once

/* The user the daemon's interpreters run as: one that no other process on
 * the system runs as (see workeruser.c). */

#include <stdbool.h>
#include <sys/types.h>

/* The system user the package creates. */
#define WORKER_USER_DEFAULT "_pycqueue"
/* The configuration value that asks for a transient uid even when the
 * system user exists. */
#define WORKER_USER_DYNAMIC "dynamic"

/* Transient uids come from here: far above the ranges distributions give
 * to users and system users, above systemd's dynamic users (61184–65519)
 * and its container ranges (0x00080000–0x6fffffff, 524288 per container),
 * below 2^31 so that no tool takes it for a negative number. */
#define WORKER_UID_FIRST 0x7ff00000u
#define WORKER_UID_LAST 0x7ff0ffffu

typedef struct WorkerUser {
        uid_t uid;
        gid_t gid;
        bool transient; /* allocated for this daemon's lifetime */
        bool in_use;    /* a named user that some process already runs as */
        int lock_fd;    /* transient: the lock that keeps it ours; else -1 */
} WorkerUser;

#define WORKER_USER_NULL ((WorkerUser){ .uid = (uid_t)-1, .gid = (gid_t)-1, .lock_fd = -1 })

/* Resolves @name (NULL: WORKER_USER_DEFAULT). A user that exists is used as
 * it is. When WORKER_USER_DEFAULT does not exist, or @name is
 * WORKER_USER_DYNAMIC, a transient uid (and the gid of the same number) is
 * allocated: one that neither the user nor the group database knows, that
 * no process runs as, and whose lock file in @lock_dir (created 0700) no
 * other daemon holds; the lock is kept in @ret->lock_fd until
 * worker_user_release(). Returns 0, or -EPERM for a user that must never
 * run untrusted code (root, group root, nobody, the overflow uid), -ENOENT
 * for another user that does not exist, -EADDRINUSE when no transient uid
 * is free, -ERANGE when our user namespace does not map the transient
 * range, or another negative errno. */
int worker_user_acquire(const char *name, const char *lock_dir, WorkerUser *ret);
/* Gives a transient uid back (closes the lock). Fine on WORKER_USER_NULL. */
void worker_user_release(WorkerUser *u);

/* 1 when a process runs with @uid (real, effective, saved or filesystem)
 * or @gid likewise, 0 when none does, or a negative errno. */
int worker_user_ids_in_use(uid_t uid, gid_t gid);
