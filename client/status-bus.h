/* SPDX-License-Identifier: MIT */
#pragma once

/* What wakes `status --watch` up on the system bus (see status-bus.c). */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

typedef struct StatusBus StatusBus;

/* Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else the usual
 * socket) and subscribes to the daemon's Manager properties and to its
 * name coming and going. Each bus call waits a bounded time. Returns 0, or
 * a negative errno when there is no usable bus (-ENOMEM, -ECONNREFUSED,
 * -ETIMEDOUT, ...); the caller then polls. */
int status_bus_open(StatusBus **ret);
StatusBus *status_bus_free(StatusBus *b);
DEFINE_CLEANUP(StatusBus *, status_bus_free);

/* Waits for a change of the daemon's state for at most @usec: returns 1 at
 * the first change, 0 when the time ran out without one. With @absorb it
 * always waits the whole time, and returns 1 if a change came meanwhile.
 * -ENOTCONN when the bus went away: @b is then of no more use. */
int status_bus_wait(StatusBus *b, uint64_t usec, bool absorb);
