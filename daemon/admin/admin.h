/* SPDX-License-Identifier: MIT */
#pragma once

/* The administration verbs: why, history, verify, repair, clean, audit
 * (see admin.c). */

#include <stdbool.h>

#include "protocol.h"

typedef struct Manager Manager;
typedef struct Connection Connection;
typedef struct Admin Admin;
typedef struct Pool Pool;

/* True for the message types this module serves. */
bool admin_handles(uint16_t type);
/* True for the ones that change files (repair, clean). */
bool admin_mutates(uint16_t type);
/* Parses and starts serving @msg for @c. On a bad request returns a
 * negative errno and a message for the client. */
int admin_start(Manager *m, Connection *c, const MsgReader *msg, char **ret_message);
/* The client went away: finish quietly. */
void admin_detach(Admin *a);
/* A pool an admin request waits for changed state. */
void admin_pools_changed(Manager *m, Pool *p);
Admin *admin_free(Admin *a);
