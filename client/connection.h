/* SPDX-License-Identifier: MIT */
#pragma once

/* The client's side of the socket: connect (starting the daemon when nothing
 * listens), send one request frame, read reply frames. Nothing here prints. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "protocol.h"

#define AUTOSTART_TIMEOUT_USEC (10u * 1000000u)      /* for the daemon to listen */
#define AUTOSTART_LOCK_TIMEOUT_USEC (30u * 1000000u) /* for another client's autostart */
#define AUTOSTART_IDLE_EXIT "60"                     /* --idle-exit of a daemon we start */
/* Tells a daemon we start that it was autostarted (daemon/status.h,
 * STATUS_STARTED_BY_ENV); an older daemon ignores it. */
#define AUTOSTART_ENVIRONMENT "PYCQUEUE_STARTED_BY=autostart"
#define CONNECTION_BUFFER_MIN (64u * 1024u)

typedef struct Connection {
        int fd;
        uint8_t *buf; /* received bytes; the frame last returned is at the start */
        size_t size;
        size_t allocated;
        size_t consumed; /* size of the frame last returned, dropped at the next receive */
} Connection;

/* Which step of connection_open() failed, for the caller's message. */
typedef enum ConnectStep {
        CONNECT_STEP_CONNECT, /* connect() itself: -ENOENT/-ECONNREFUSED mean nothing listens */
        CONNECT_STEP_MKDIR,   /* creating the socket's directory */
        CONNECT_STEP_LOCK,    /* the autostart lock; -ETIMEDOUT when another client held it too long */
        CONNECT_STEP_SPAWN,   /* fork/setsid/exec of the daemon; the errno is exec's */
        CONNECT_STEP_STARTUP, /* -ETIMEDOUT: never listened; -ESRCH: exited before listening */
} ConnectStep;

/* The daemon to autostart: $PYCQUEUE_DAEMON, else SBINDIR "/pycqueued". */
const char *connection_daemon_path(void);

/* Connects to @socket_path. When nothing listens and @daemon is not NULL,
 * starts @daemon (see connection.c) and connects to it. On failure returns
 * a negative errno and sets *@ret_step; -ENAMETOOLONG when the path does not
 * fit a sockaddr_un. */
int connection_open(const char *socket_path, const char *daemon, ConnectStep *ret_step, Connection **ret);
Connection *connection_free(Connection *c);
DEFINE_CLEANUP(Connection *, connection_free);

/* Finishes @w and sends the frame. A peer that already closed its end is not
 * an error here (0 is returned): the next receive returns its reply or
 * -ECONNRESET. Other failures return a negative errno. */
int connection_send(Connection *c, MsgWriter *w);

/* Reads the next frame and parses it into @ret, which borrows the
 * connection's buffer until the next call. Returns 0; -ECONNRESET when the
 * connection ended (before or inside a frame); -EMSGSIZE or -EBADMSG for a
 * malformed frame; another negative errno for a failed read. */
int connection_receive(Connection *c, MsgReader *ret);
