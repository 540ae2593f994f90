/* SPDX-License-Identifier: MIT */
#pragma once

/* Who is on the other end of a connection: credentials plus what /proc says
 * about the process and its ancestors (see peer.c). */

#include <stddef.h>
#include <sys/types.h>

#define PEER_MAX_PARENTS 32
#define PEER_MAX_CMDLINE 4096

typedef struct PeerProcess {
        pid_t pid;
        char *exe;       /* may be NULL when unreadable */
        char *cmdline;   /* arguments joined by spaces; NULL when unreadable */
} PeerProcess;

typedef struct PeerInfo {
        uid_t uid;
        gid_t gid;
        PeerProcess self;
        PeerProcess parents[PEER_MAX_PARENTS]; /* [0] is the parent */
        size_t n_parents;
} PeerInfo;

/* Reads /proc for @pid and its ancestors. A pidfd taken first and checked
 * last makes sure the data is the peer's and not a later process that
 * reused its pid; when the peer is already gone the process fields stay
 * empty rather than wrong. */
void peer_info_read(pid_t pid, uid_t uid, gid_t gid, PeerInfo *ret);
/* The same, for a peer whose pidfd was taken earlier (at connect): what is
 * read is kept only if that very process still runs. @pidfd is not
 * consumed; -1 means none. */
void peer_info_read_pidfd(pid_t pid, int pidfd, uid_t uid, gid_t gid, PeerInfo *ret);
/* The peer's root directory, read from /proc/PID/root at accept: NULL in
 * @ret when it is the daemon's own, else its canonical host path (a chroot
 * the client runs in). -EREMOTE when the root exists but is not where its
 * path says from the daemon's side (another mount namespace, a deleted
 * directory): paths of such a peer cannot be resolved. A root that cannot
 * be read at all (the peer is gone, or a daemon that is not root may not
 * look) counts as the daemon's own: such a peer's requests are resolved
 * with its own rights or not served at all. */
int peer_root_read(pid_t pid, int pidfd, char **ret);
/* pidfd_open(2); -1 where unsupported. */
int peer_pidfd_open(pid_t pid);
void peer_info_done(PeerInfo *info);
/* The parent chain as "pid\texe\tcmdline" lines, outermost last. */
char *peer_info_parents_text(const PeerInfo *info);
