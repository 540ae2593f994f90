/* SPDX-License-Identifier: MIT */
#pragma once

/* The administration verbs: why, history, verify, repair, clean, audit
 * (see admin.c). */

#include <stdbool.h>
#include <sys/types.h>

#include "dispatch.h"
#include "forward.h"
#include "fsid.h"
#include "macro.h"
#include "protocol.h"
#include "spec.h"

/* The message type of an administration verb. */
uint16_t admin_message_type(Verb verb);
/* Starts serving the authorised @spec (consumed, whatever happens) for @c.
 * On a bad request returns a negative errno and a message for the client. */
int admin_start(Manager *m, Connection *c, Spec *spec, char **ret_message);

/* A caller that comes with no Connection (the system bus): who it is, as
 * its front end vouches. */
typedef struct AdminCaller {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        CallerClass caller;
        const FsId *fsid; /* its filesystem identity, for read-only verbs */
        /* What @fsid lacks, to be read from the user database of its uid
         * when the request first takes the caller's identity: a lookup
         * that may wait on a directory service, so on the I/O thread. */
        bool resolve_gid;
        bool resolve_groups;
} AdminCaller;

/* Where such a caller's reply goes, instead of a socket's frames. */
typedef struct AdminHooks {
        /* One record: a MSG_RECORD frame, which passes to the callee. */
        void (*on_record)(uint8_t *frame, size_t size, void *userdata);
        /* The end, exactly once, also when the daemon stops first: @error < 0
         * with @message (may be NULL), else the closing MSG_DONE frame
         * (borrowed). Runs on the loop; the request is gone after it. */
        void (*on_done)(int error, const char *message, const uint8_t *done, size_t size, void *userdata);
} AdminHooks;

/* admin_start() for @caller, authorised (dispatch_authorize()) by the
 * front end; @spec is consumed whatever happens. On an error no hook runs;
 * on 0, on_done() runs once, possibly before this returns. */
int admin_start_hooked(Manager *m, const AdminCaller *caller, Spec *spec, const AdminHooks *hooks,
                       void *userdata, char **ret_message);
/* True when @a waits for or uses pool @p. */
bool admin_uses_pool(const Admin *a, const Pool *p);
/* The next in the manager's list of administration requests. */
Admin *admin_next(const Admin *a);
/* The uid of the caller @a serves. */
uid_t admin_uid(const Admin *a);
/* A pool an admin request waits for changed state. */
void admin_pools_changed(Manager *m, Pool *p);
/* Cleans waiting for the compiles that came before them run once those
 * are done (manager_order_changed()). */
void admin_order_changed(Manager *m);
Admin *admin_free(Admin *a);
DEFINE_CLEANUP(Admin *, admin_free);
