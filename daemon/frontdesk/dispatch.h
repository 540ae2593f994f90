/* SPDX-License-Identifier: MIT */
#pragma once

/* The front desk's door: who may do what, decided before anything is done
 * (see dispatch.c). Every front end (the socket, and later the bus) comes
 * through here. */

#include <stdbool.h>
#include <sys/types.h>

#include "forward.h"
#include "protocol.h"
#include "spec.h"

/* Who is asking. */
typedef enum CallerClass {
        CALLER_PRIVILEGED,   /* may change files: root (or, for a daemon running
                              * as an ordinary user, that user) */
        CALLER_LOCAL,        /* any other local user */
        _CALLER_CLASS_MAX,
} CallerClass;

typedef enum Access {
        ACCESS_DENIED,
        ACCESS_ALLOWED,           /* with the daemon's own rights */
        ACCESS_AS_CALLER,         /* allowed; file access with the caller's rights */
} Access;

/* The class of a caller with uid @uid, for this daemon. */
CallerClass dispatch_caller_class(uid_t uid);
/* The authorisation table: may @class ask for @verb? */
Access dispatch_access(Verb verb, CallerClass class);

/* The whole decision on a parsed request, for any front end: the table,
 * the interpreters a non-privileged caller may name, and its capacity.
 * Returns 0, or a negative errno (EPERM, ESHUTDOWN, EUSERS) with a message
 * for the caller. Has no effect. The socket calls it below; the system bus
 * front end calls it the same way. */
int dispatch_authorize(Manager *m, CallerClass caller, uid_t uid, const Spec *s, char **ret_message);

/* One frame from a client of the socket: parse, authorise, then start the
 * verb. Errors are answered on @c. */
void dispatch_frame(Connection *c, const MsgReader *msg);
