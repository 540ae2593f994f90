/* SPDX-License-Identifier: MIT */
/* A client connection: a framed transport and nothing else.
 *
 * Reads are assembled into frames in a buffer bounded by the largest frame
 * the peer's class may send (root may send a large compile request, other
 * users only small read-only ones); writes go out from a queue of frames
 * bounded per class too. The peer's credentials (uid, gid, pid, and its
 * supplementary groups, so that work done for it can take its filesystem
 * identity) are taken once, at accept. Every complete frame goes to the
 * dispatcher (dispatch.c), which alone decides what it may do; the request
 * it starts binds itself to the connection (ConnectionUser) to hear of the
 * peer leaving or reading, so this file knows no kind of request.
 *
 * A frame that has only partly arrived must be completed within
 * frame_timeout, else the connection is closed: a peer cannot pin a buffer
 * by sending half a frame. A malformed frame gets one MSG_ERROR and the
 * connection is closed right after it is flushed, or at once when the peer
 * does not read, so that it stops counting against the peer's limits. */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "protocol.h"
#include "util.h"

#define CONNECTION_READ_CHUNK 65536u
/* Output a peer may leave unread: a privileged client gets a compile's
 * per-file results; others get streamed records, so less is plenty. */
#define CONNECTION_MAX_OUTPUT_PRIVILEGED (32u * 1024u * 1024u)
#define CONNECTION_MAX_OUTPUT_LOCAL (2u * 1024u * 1024u)
/* The largest frame of a peer that may not mutate: a read-only request
 * names a few paths, never megabytes of them. */
#define CONNECTION_MAX_FRAME_LOCAL (1u * 1024u * 1024u)
/* A closing connection whose peer neither reads nor hangs up is dropped
 * after this long. */
#define CONNECTION_LINGER_USEC (2 * 1000000ULL)

static size_t connection_max_output(const Connection *c) {
        return c->caller == CALLER_PRIVILEGED ? CONNECTION_MAX_OUTPUT_PRIVILEGED
                                              : CONNECTION_MAX_OUTPUT_LOCAL;
}

size_t connection_pending_output(const Connection *c) {
        return c->out_bytes;
}

/* Buffers held by unprivileged peers: all of them, or (@uid not -1) one
 * uid's. */
static size_t connection_memory(const Manager *m, uid_t uid) {
        size_t n = 0;

        for (const Connection *c = m->connections; c; c = c->next)
                if (c->caller != CALLER_PRIVILEGED && (uid == (uid_t)-1 || c->uid == uid))
                        n += c->rallocated + c->out_bytes;
        return n;
}

static int connection_on_frame_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Connection *c = userdata;

        if (c->closing) {
                connection_free(c);
                return 0;
        }
        if (c->rsize == 0 && c->user)
                return 0; /* serving a request (bounded on its own); re-armed when it ends */
        if (c->rsize > 0)
                log_debug("Client pid %d left a frame incomplete for too long; closing", (int)c->pid);
        else
                log_debug("Client pid %d asked nothing for too long; closing", (int)c->pid);
        connection_free(c);
        return 0;
}

/* Arms (or disarms) the one timer of the connection: the partial-frame
 * deadline while reading, the linger deadline while closing. */
static void connection_arm_timer(Connection *c, bool on, uint64_t usec) {
        if (!on) {
                if (c->frame_timer)
                        (void)sd_event_source_set_enabled(c->frame_timer, SD_EVENT_OFF);
                return;
        }
        if (!c->frame_timer) {
                if (sd_event_add_time_relative(c->manager->event, &c->frame_timer, CLOCK_MONOTONIC, usec,
                                               100000, connection_on_frame_timer, c) < 0)
                        c->frame_timer = NULL;
                return;
        }
        (void)sd_event_source_set_time_relative(c->frame_timer, usec);
        (void)sd_event_source_set_enabled(c->frame_timer, SD_EVENT_ONESHOT);
}

/* Between requests, an unprivileged peer's connection may idle for
 * connection_idle_timeout, the privileged caller's for as long as it likes:
 * connections are a bounded resource, not a place to park. */
static void connection_arm_idle(Connection *c) {
        bool idle = c->caller != CALLER_PRIVILEGED && !c->user && c->rsize == 0;

        connection_arm_timer(c, idle, c->manager->config->connection_idle_usec);
}

static int connection_flush(Connection *c) {
        while (c->out_head) {
                OutFrame *f = c->out_head;
                ssize_t n = send(c->fd, f->data + f->pos, f->size - f->pos, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return negative_errno();
                }
                f->pos += (size_t)n;
                c->out_bytes -= (size_t)n;
                if (f->pos < f->size)
                        continue;
                c->out_head = f->next;
                if (!c->out_head)
                        c->out_tail = NULL;
                free(f->data);
                free(f);
        }
        if (c->user && c->user->drained)
                c->user->drained(c->user_data);
        return sd_event_source_set_io_events(c->source,
                                             (c->closing ? 0 : EPOLLIN) | (c->out_head ? EPOLLOUT : 0));
}

/* From now on nothing more is read; the connection goes once its output is
 * out, or after CONNECTION_LINGER_USEC. */
static void connection_start_closing(Connection *c) {
        c->closing = true;
        c->rsize = 0;
        if (connection_flush(c) < 0 || !c->out_head) {
                /* Nothing left to say: go now (deferred, the caller may
                 * still use @c). */
                (void)shutdown(c->fd, SHUT_RDWR);
                connection_arm_timer(c, true, 0);
                return;
        }
        connection_arm_timer(c, true, CONNECTION_LINGER_USEC);
}

void connection_send(Connection *c, uint8_t *frame, size_t size, bool droppable) {
        OutFrame *f;

        if (c->closing) {
                free(frame);
                return;
        }
        /* Unread output counts against the unprivileged peers' shared
         * buffer memory too, not only against this connection's bound. */
        if (c->out_bytes + size > connection_max_output(c) ||
            (c->caller != CALLER_PRIVILEGED &&
             connection_memory(c->manager, (uid_t)-1) + size > c->manager->config->max_buffer_memory)) {
                free(frame);
                if (droppable)
                        return;
                log_warning("Client pid %d does not read its replies; closing its connection", (int)c->pid);
                connection_start_closing(c);
                return;
        }
        f = calloc(1, sizeof(*f));
        if (!f) {
                free(frame);
                return;
        }
        f->data = frame;
        f->size = size;
        if (c->out_tail)
                c->out_tail->next = f;
        else
                c->out_head = f;
        c->out_tail = f;
        c->out_bytes += size;
        if (connection_flush(c) < 0)
                connection_start_closing(c);
}

void connection_send_error(Connection *c, int error, const char *message) {
        MsgWriter w;
        uint8_t *frame;
        size_t size;

        if (msg_writer_init(&w, MSG_ERROR) < 0)
                return;
        msg_put_u64(&w, TAG_ERRNO, (uint64_t)(error < 0 ? -error : error));
        msg_put_string(&w, TAG_ERROR_MESSAGE, message ? message : strerror(error < 0 ? -error : error));
        if (msg_writer_finish(&w, &frame, &size) < 0)
                return;
        connection_send(c, frame, size, false);
}

void connection_fail(Connection *c, int error, const char *message) {
        connection_send_error(c, error, message);
        if (!c->closing)
                connection_start_closing(c);
}

void connection_bind(Connection *c, const ConnectionUser *user, void *userdata) {
        assert(!c->user);
        c->user = user;
        c->user_data = userdata;
}

void connection_unbind(Connection *c, void *userdata) {
        if (c->user_data == userdata) {
                c->user = NULL;
                c->user_data = NULL;
                if (!c->closing)
                        connection_arm_idle(c);
        }
        manager_check_idle(c->manager);
}

bool connection_busy(const Connection *c) {
        return c->user != NULL;
}

const PeerInfo *connection_peer(Connection *c) {
        if (!c->have_peer) {
                peer_info_read_pidfd(c->pid, c->pidfd, c->uid, c->gid, &c->peer);
                c->have_peer = true;
        }
        return &c->peer;
}

/* Makes room for one more read chunk, within the peer's frame bound and the
 * daemon's total buffer budget. */
static int connection_grow(Connection *c) {
        Manager *m = c->manager;
        size_t na;
        uint8_t *nb;

        if (c->rallocated - c->rsize >= CONNECTION_READ_CHUNK)
                return 0;
        na = MIN(MAX(c->rallocated * 2, (size_t)CONNECTION_READ_CHUNK * 2),
                 c->max_frame + CONNECTION_READ_CHUNK);
        if (na <= c->rallocated)
                return -EMSGSIZE;
        /* Unprivileged peers share max_buffer_memory, and one uid may take
         * a quarter of it: a user who fills the budget shuts out neither
         * root (not counted) nor the other users. */
        if (c->caller != CALLER_PRIVILEGED &&
            (connection_memory(m, (uid_t)-1) + (na - c->rallocated) > m->config->max_buffer_memory ||
             connection_memory(m, c->uid) + (na - c->rallocated) > m->config->max_buffer_memory / 4))
                return -ENOBUFS;
        nb = realloc(c->rbuf, na);
        if (!nb)
                return -ENOMEM;
        c->rbuf = nb;
        c->rallocated = na;
        return 0;
}

/* Hands every complete frame in the buffer to the dispatcher. */
static void connection_process(Connection *c) {
        bool consumed = false;

        for (;;) {
                int64_t want = frame_size(c->rbuf, c->rsize);
                MsgReader msg;

                if (want > (int64_t)c->max_frame) {
                        connection_fail(c, -EMSGSIZE, "the frame is larger than this client may send");
                        return;
                }
                if (want < 0 ||
                    (want > 0 && (size_t)want <= c->rsize && msg_parse(c->rbuf, (size_t)want, &msg) < 0)) {
                        log_debug("Client pid %d sent a malformed frame; closing", (int)c->pid);
                        connection_fail(c, -EBADMSG, "malformed frame");
                        return;
                }
                if (want == 0 || (size_t)want > c->rsize)
                        break;
                dispatch_frame(c, &msg);
                if (c->closing)
                        return;
                memmove(c->rbuf, c->rbuf + want, c->rsize - (size_t)want);
                c->rsize -= (size_t)want;
                consumed = true;
        }
        /* A frame must be complete within frame_timeout of its first byte:
         * the deadline is set when a frame begins, and a peer trickling
         * bytes does not move it. An empty buffer waits freely, and a large
         * one that was needed once is given back. */
        if (c->rsize == 0)
                c->frame_begun = false;
        else if (!c->frame_begun || consumed) {
                c->frame_begun = true;
                connection_arm_timer(c, true, c->manager->config->frame_timeout_usec);
        }
        if (!c->frame_begun)
                connection_arm_idle(c);
        if (c->rsize == 0 && c->rallocated > 4 * CONNECTION_READ_CHUNK) {
                free(c->rbuf);
                c->rbuf = NULL;
                c->rallocated = 0;
        }
}

static int connection_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;

        if (c->closing) {
                if ((revents & (EPOLLHUP | EPOLLERR)) || connection_flush(c) < 0 || !c->out_head)
                        connection_free(c);
                return 0;
        }
        if ((revents & EPOLLOUT) && connection_flush(c) < 0) {
                connection_free(c);
                return 0;
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        for (;;) {
                ssize_t n;
                int r = connection_grow(c);

                if (r < 0) {
                        connection_fail(c, r,
                                        r == -ENOBUFS
                                                ? "the daemon is short of buffer memory; try again later"
                                                : "the frame is too large");
                        return 0;
                }
                n = recv(c->fd, c->rbuf + c->rsize, c->rallocated - c->rsize, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        connection_free(c);
                        return 0;
                }
                if (n == 0) {
                        connection_free(c);
                        return 0;
                }
                c->rsize += (size_t)n;
                connection_process(c);
                if (c->closing)
                        return 0;
        }
        return 0;
}

/* The peer's supplementary groups (SO_PEERGROUPS), for its filesystem
 * identity. A peer with more groups than we keep gets none of them, never
 * a subset chosen by accident: fewer rights, never more. */
static void connection_read_groups(Connection *c) {
        socklen_t len = sizeof(c->fsid.groups);

        c->fsid.n_groups = 0;
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, c->fsid.groups, &len) == 0)
                c->fsid.n_groups = len / sizeof(gid_t);
}

int connection_new(Manager *m, int fd, const struct ucred *cred, Connection **ret) {
        Connection *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->manager = m;
        c->fd = fd;
        c->uid = cred->uid;
        c->gid = cred->gid;
        c->pid = cred->pid;
        c->caller = dispatch_caller_class(c->uid);
        c->max_frame = c->caller == CALLER_PRIVILEGED ? PROTOCOL_MAX_FRAME : CONNECTION_MAX_FRAME_LOCAL;
        c->fsid.uid = c->uid;
        c->fsid.gid = c->gid;
        connection_read_groups(c);
        /* The pidfd pins the peer's identity now; /proc is read only when a
         * request needs it (connection_peer()), off the accept path. */
        c->pidfd = peer_pidfd_open(c->pid);
        /* A client in a chroot names paths of its own tree; which tree
         * is decided now, against the pinned peer. */
        c->root_error = peer_root_read(c->pid, c->pidfd, &c->root);
        r = sd_event_add_io(m->event, &c->source, fd, EPOLLIN, connection_on_io, c);
        if (r < 0) {
                safe_close(c->pidfd);
                safe_close(fd);
                free(c->root);
                free(c);
                return r;
        }
        LIST_PREPEND(m->connections, c);
        connection_arm_idle(c);
        m->n_connections++;
        *ret = c;
        return 0;
}

Connection *connection_free(Connection *c) {
        Manager *m;

        if (!c)
                return NULL;
        m = c->manager;
        if (c->user) {
                const ConnectionUser *user = c->user;
                void *data = c->user_data;

                c->user = NULL;
                c->user_data = NULL;
                user->detach(data);
        }
        LIST_REMOVE(m->connections, c);
        m->n_connections--;
        while (c->out_head) {
                OutFrame *f = c->out_head;
                c->out_head = f->next;
                free(f->data);
                free(f);
        }
        sd_event_source_disable_unref(c->source);
        sd_event_source_disable_unref(c->frame_timer);
        safe_close(c->fd);
        peer_info_done(&c->peer);
        safe_close(c->pidfd);
        free(c->root);
        free(c->rbuf);
        free(c);
        manager_check_idle(m);
        return NULL;
}
