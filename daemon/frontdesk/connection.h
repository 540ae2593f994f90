/* SPDX-License-Identifier: MIT */
#pragma once

/* One client connection: a framed transport (see connection.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "dispatch.h"
#include "forward.h"
#include "fsid.h"
#include "peer.h"
#include "macro.h"

/* What a connection tells the request it serves, whatever kind it is. */
typedef struct ConnectionUser {
        void (*detach)(void *userdata);  /* the connection is going away */
        void (*drained)(void *userdata); /* the peer took some output */
} ConnectionUser;

typedef struct OutFrame {
        uint8_t *data;
        size_t size, pos;
        struct OutFrame *next;
} OutFrame;

struct Connection {
        Manager *manager;
        int fd;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        CallerClass caller;      /* decided once, at accept */
        FsId fsid;               /* the peer's filesystem identity, groups included */
        sd_event_source *source;
        sd_event_source *frame_timer; /* armed while a frame is partly read */
        struct Connection *next, *prev;

        uint8_t *rbuf;
        size_t rsize, rallocated;
        size_t max_frame;        /* by caller class */
        bool frame_begun;        /* part of a frame is here: its deadline runs */
        OutFrame *out_head, *out_tail;
        size_t out_bytes;
        bool closing;            /* close once the output is flushed */

        const ConnectionUser *user; /* the request being served, if any */
        void *user_data;
        int pidfd;               /* the peer, pinned at accept */
        PeerInfo peer;           /* read from /proc when a request first needs it */
        char *root;     /* the peer's root when not ours: a chroot (rootpath.h) */
        int root_error; /* negative: the peer's root cannot be resolved from here */
        bool have_peer;
};

/* Takes ownership of @fd; @cred are its SO_PEERCRED credentials. */
int connection_new(Manager *m, int fd, const struct ucred *cred, Connection **ret);
Connection *connection_free(Connection *c);
DEFINE_CLEANUP(Connection *, connection_free);
/* Queues a frame (ownership of @frame passes) for sending. Frames beyond the
 * output limit are dropped when @droppable, else the connection is closed. */
void connection_send(Connection *c, uint8_t *frame, size_t size, bool droppable);
/* Sends MSG_ERROR. */
void connection_send_error(Connection *c, int error, const char *message);
/* Sends MSG_ERROR, then closes the connection once it is flushed (or at once
 * when the peer does not read). */
void connection_fail(Connection *c, int error, const char *message);
/* Bytes queued for sending and not yet taken by the peer. */
size_t connection_pending_output(const Connection *c);
/* Binds the request now served to @c; one at a time. */
void connection_bind(Connection *c, const ConnectionUser *user, void *userdata);
/* The request @userdata is done with @c (nothing if it is not the bound one). */
void connection_unbind(Connection *c, void *userdata);
/* True while a request is bound. */
bool connection_busy(const Connection *c);
/* The peer's process information, read from /proc on first use. */
const PeerInfo *connection_peer(Connection *c);
