/* SPDX-License-Identifier: MIT */
#pragma once

/* The listening socket (see listener.c). */

#include <stdbool.h>
#include "forward.h"


/* Uses the socket passed by systemd if there is one, else binds @path. */
int listener_new(Manager *m, const char *path, Listener **ret);
/* Stops accepting; removes the socket file if we created it. */
Listener *listener_free(Listener *l);
bool listener_is_activated(const Listener *l);
