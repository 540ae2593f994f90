/* SPDX-License-Identifier: MIT */
#pragma once

/* One client connection (see connection.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "peer.h"

typedef struct Manager Manager;
typedef struct Request Request;
typedef struct Admin Admin;
struct ucred;

typedef struct OutFrame {
        uint8_t *data;
        size_t size, pos;
        struct OutFrame *next;
} OutFrame;

typedef struct Connection {
        Manager *manager;
        int fd;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        sd_event_source *source;
        struct Connection *next, *prev;

        uint8_t *rbuf;
        size_t rsize, rallocated;
        OutFrame *out_head, *out_tail;
        size_t out_bytes;
        bool closing;            /* close once the output is flushed */

        Request *request;        /* the request being served, if any */
        Admin *admin;            /* or the administration request */
        int pidfd;               /* the peer, pinned at accept */
        PeerInfo peer;           /* read from /proc when a request first needs it */
        bool have_peer;
} Connection;

/* Takes ownership of @fd; @cred is its peer's SO_PEERCRED, read by the caller. */
int connection_new(Manager *m, int fd, const struct ucred *cred, Connection **ret);
Connection *connection_free(Connection *c);
/* Queues a frame (ownership of @frame passes) for sending. Frames beyond the
 * output limit are dropped when @droppable, else the connection is closed. */
void connection_send(Connection *c, uint8_t *frame, size_t size, bool droppable);
/* Sends MSG_ERROR. */
void connection_send_error(Connection *c, int error, const char *message);
/* The connection's request has been answered. */
void connection_request_finished(Connection *c, Request *r);
/* True when @c's peer may change files (compile/repair/clean). */
bool connection_may_mutate(const Connection *c);
/* The peer's process information, read from /proc on first use. */
const PeerInfo *connection_peer(Connection *c);
