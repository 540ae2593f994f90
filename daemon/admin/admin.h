/* SPDX-License-Identifier: MIT */
#pragma once

/* The administration verbs: why, history, verify, repair, clean, audit
 * (see admin.c). */

#include <stdbool.h>
#include <sys/types.h>

#include "protocol.h"
#include "spec.h"
#include "forward.h"
#include "macro.h"


/* The message type of an administration verb. */
uint16_t admin_message_type(Verb verb);
/* Starts serving the authorised @spec (consumed, whatever happens) for @c.
 * On a bad request returns a negative errno and a message for the client. */
int admin_start(Manager *m, Connection *c, Spec *spec, char **ret_message);
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
