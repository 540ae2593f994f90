/* SPDX-License-Identifier: MIT */
/* Per-thread filesystem identity.
 *
 * Work done on behalf of an unprivileged caller (the walks and reads of a
 * read-only verb, the read of a source reached through a symlink that
 * someone else owns) must reveal nothing that caller could not see itself.
 * Rather than re-implementing permission checks, the thread that does the
 * work takes the caller's identity for the kernel's permission checks:
 * setfsuid(2) and setfsgid(2) are per thread, and so is the raw setgroups
 * system call (glibc's setgroups() wrapper would broadcast the change to
 * every thread of the process, so it is not used here). Only the
 * filesystem identity changes: the thread keeps its real and effective
 * uid, so it can switch back. */

#include <errno.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsid.h"
#include "log.h"

static int thread_setgroups(size_t n, const gid_t *groups) {
        if (syscall(SYS_setgroups, n, groups) < 0)
                return negative_errno();
        return 0;
}

bool fsid_is_self(const FsId *id) {
        return id->uid == geteuid() && id->gid == getegid() && id->n_groups == 0;
}

int fsid_enter(const FsId *id) {
        int r;

        if (id->n_groups > FSID_MAX_GROUPS)
                return -E2BIG;
        r = thread_setgroups(id->n_groups, id->groups);
        if (r < 0)
                return r;
        /* setfsgid/setfsuid return the previous value and cannot report
         * errors directly: a second call tells whether the first took. */
        (void)setfsgid(id->gid);
        if ((gid_t)setfsgid((gid_t)-1) != id->gid) {
                fsid_leave();
                return -EPERM;
        }
        (void)setfsuid(id->uid);
        if ((uid_t)setfsuid((uid_t)-1) != id->uid) {
                fsid_leave();
                return -EPERM;
        }
        return 0;
}

void fsid_leave(void) {
        uid_t uid = geteuid();
        gid_t gid = getegid();

        (void)setfsuid(uid);
        (void)setfsgid(gid);
        if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid ||
            thread_setgroups(0, NULL) < 0) {
                log_error("Cannot return a thread to the daemon's own identity; aborting");
                abort();
        }
}
