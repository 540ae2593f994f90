/* SPDX-License-Identifier: MIT */
#pragma once

/* pycqueued on the system bus (see bus.c): optional, never blocking. */

#include "forward.h"

#define BUS_NAME "org.pycqueue.PyCQueue1"
#define BUS_PATH "/org/pycqueue/PyCQueue1"
#define BUS_REQUEST_PATH_PREFIX BUS_PATH "/request/"
#define BUS_MANAGER_INTERFACE BUS_NAME ".Manager"
#define BUS_REQUEST_INTERFACE BUS_NAME ".Request"

/* Sets up the bus front end of @m and tries to connect (to
 * $DBUS_SYSTEM_BUS_ADDRESS, else the system bus's default address); when no
 * bus is there yet it tries again later. Returns 0 or -ENOMEM. */
int bus_new(Manager *m, Bus **ret);
Bus *bus_free(Bus *b);
/* The daemon stops: gives up the name (and takes it no more), so that the
 * bus activates a new daemon for the next caller. */
void bus_release_name(Bus *b);
/* The status changed: properties are sent, at most every 100 ms. */
void bus_status_changed(Bus *b);
