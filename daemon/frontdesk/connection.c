/* SPDX-License-Identifier: MIT */
/* A client connection: non-blocking reads assembled into frames in a
 * buffer bounded by PROTOCOL_MAX_FRAME, non-blocking writes from a queue of
 * frames bounded by CONNECTION_MAX_OUTPUT. The peer's credentials are taken
 * once, at accept, from SO_PEERCRED. A malformed frame, an unknown message
 * type or a second request while one is running closes this connection and
 * nothing else: the daemon goes on serving everyone else. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "connection.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "protocol.h"
#include "request.h"

#define CONNECTION_MAX_OUTPUT (32u * 1024u * 1024u)
#define CONNECTION_READ_CHUNK 65536u

static void connection_close(Connection *c) {
        connection_free(c);
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
        return sd_event_source_set_io_events(c->source, EPOLLIN | (c->out_head ? EPOLLOUT : 0));
}

void connection_send(Connection *c, uint8_t *frame, size_t size, bool droppable) {
        OutFrame *f;

        if (c->out_bytes + size > CONNECTION_MAX_OUTPUT) {
                free(frame);
                if (droppable)
                        return;
                log_warning("Client pid %d does not read its replies; closing its connection", (int)c->pid);
                c->closing = true;
                (void)sd_event_source_set_io_events(c->source, EPOLLOUT);
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
                c->closing = true;
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

void connection_request_finished(Connection *c, Request *r) {
        if (c->request == r)
                c->request = NULL;
        manager_check_idle(c->manager);
}

const PeerInfo *connection_peer(Connection *c) {
        if (!c->have_peer) {
                peer_info_read_pidfd(c->pid, c->pidfd, c->uid, c->gid, &c->peer);
                c->have_peer = true;
        }
        return &c->peer;
}

bool connection_may_mutate(const Connection *c) {
        uid_t self = geteuid();

        /* Running as root we serve root only; unprivileged (tests, a user's
         * own daemon) we serve our own uid only. */
        return self == 0 ? c->uid == 0 : c->uid == self;
}

static void connection_handle(Connection *c, const MsgReader *msg) {
        Manager *m = c->manager;
        _cleanup_free_ char *message = NULL;
        Request *r;
        int k;

        switch (msg->type) {
        case MSG_STATUS: {
                uint8_t *frame;
                size_t size;

                k = manager_status_reply(m, &frame, &size);
                if (k < 0)
                        connection_send_error(c, k, "cannot build the status reply");
                else
                        connection_send(c, frame, size, false);
                return;
        }
        case MSG_COMPILE:
                if (c->request || c->admin) {
                        connection_send_error(c, -EBUSY, "a request is already running on this connection");
                        return;
                }
                if (m->stopping) {
                        connection_send_error(c, -ESHUTDOWN, "pycqueued is shutting down");
                        return;
                }
                if (!connection_may_mutate(c)) {
                        connection_send_error(c, -EPERM,
                                              geteuid() == 0
                                                      ? "only root may compile through the system pycqueued"
                                                      : "only the daemon's own user may compile through this pycqueued");
                        return;
                }
                k = request_new_compile(m, c, msg, &r, &message);
                if (k < 0) {
                        connection_send_error(c, k, message);
                        return;
                }
                c->request = r;
                request_start(r);
                return;
        case MSG_WAIT:
                if (c->request || c->admin) {
                        connection_send_error(c, -EBUSY, "a request is already running on this connection");
                        return;
                }
                k = request_new_wait(m, c, msg, &r);
                if (k < 0) {
                        connection_send_error(c, k, "invalid wait request");
                        return;
                }
                c->request = r;
                request_start(r);
                return;
        default:
                if (admin_handles(msg->type)) {
                        if (c->request || c->admin) {
                                connection_send_error(c, -EBUSY, "a request is already running on this connection");
                                return;
                        }
                        if (admin_mutates(msg->type) && !connection_may_mutate(c)) {
                                connection_send_error(c, -EPERM,
                                                      geteuid() == 0 ? "only root may change files through the "
                                                                       "system pycqueued"
                                                                     : "only the daemon's own user may change "
                                                                       "files through this pycqueued");
                                return;
                        }
                        if (admin_mutates(msg->type) && m->stopping) {
                                connection_send_error(c, -ESHUTDOWN, "pycqueued is shutting down");
                                return;
                        }
                        k = admin_start(m, c, msg, &message);
                        if (k < 0)
                                connection_send_error(c, k, message);
                        return;
                }
                log_debug("Client pid %d sent unknown message type %u; closing", (int)c->pid, msg->type);
                connection_send_error(c, -EBADMSG, "unknown message type");
                c->closing = true;
        }
}

static int connection_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;

        if (revents & EPOLLOUT) {
                if (connection_flush(c) < 0) {
                        connection_close(c);
                        return 0;
                }
                if (c->closing && !c->out_head) {
                        connection_close(c);
                        return 0;
                }
        }
        if (c->closing) {
                if (!c->out_head || connection_flush(c) < 0 || !c->out_head ||
                    (revents & (EPOLLHUP | EPOLLERR)))
                        connection_close(c);
                return 0;
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        for (;;) {
                ssize_t n;

                if (c->rallocated - c->rsize < CONNECTION_READ_CHUNK) {
                        size_t na = MIN(MAX(c->rallocated * 2, (size_t)CONNECTION_READ_CHUNK * 2),
                                        (size_t)PROTOCOL_MAX_FRAME + CONNECTION_READ_CHUNK);
                        uint8_t *nb;

                        if (na <= c->rallocated) {
                                connection_close(c);
                                return 0;
                        }
                        nb = realloc(c->rbuf, na);
                        if (!nb) {
                                connection_close(c);
                                return 0;
                        }
                        c->rbuf = nb;
                        c->rallocated = na;
                }
                n = recv(c->fd, c->rbuf + c->rsize, c->rallocated - c->rsize, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        connection_close(c);
                        return 0;
                }
                if (n == 0) {
                        connection_close(c);
                        return 0;
                }
                c->rsize += (size_t)n;

                for (;;) {
                        int64_t want = frame_size(c->rbuf, c->rsize);
                        MsgReader msg;

                        if (want < 0 || (want > 0 && (size_t)want <= c->rsize && msg_parse(c->rbuf, (size_t)want, &msg) < 0)) {
                                log_debug("Client pid %d sent a malformed frame; closing", (int)c->pid);
                                connection_send_error(c, -EBADMSG, "malformed frame");
                                c->closing = true;
                                c->rsize = 0;
                                return 0;
                        }
                        if (want == 0 || (size_t)want > c->rsize)
                                break;
                        connection_handle(c, &msg);
                        memmove(c->rbuf, c->rbuf + want, c->rsize - (size_t)want);
                        c->rsize -= (size_t)want;
                        if (c->closing)
                                return 0;
                }
        }
        return 0;
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
        /* The pidfd pins the peer's identity now; /proc is read only when a
         * request needs it (connection_peer()), off the accept path. */
        c->pidfd = peer_pidfd_open(c->pid);
        r = sd_event_add_io(m->event, &c->source, fd, EPOLLIN, connection_on_io, c);
        if (r < 0) {
                safe_close(c->pidfd);
                safe_close(fd);
                free(c);
                return r;
        }
        c->next = m->connections;
        if (m->connections)
                m->connections->prev = c;
        m->connections = c;
        m->n_connections++;
        *ret = c;
        return 0;
}

Connection *connection_free(Connection *c) {
        Manager *m;

        if (!c)
                return NULL;
        m = c->manager;
        if (c->request) {
                Request *r = c->request;
                c->request = NULL;
                request_detach(r);
        }
        if (c->admin) {
                admin_detach(c->admin);
                c->admin = NULL;
        }
        if (c->prev)
                c->prev->next = c->next;
        else if (m->connections == c)
                m->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        m->n_connections--;
        while (c->out_head) {
                OutFrame *f = c->out_head;
                c->out_head = f->next;
                free(f->data);
                free(f);
        }
        sd_event_source_disable_unref(c->source);
        safe_close(c->fd);
        peer_info_done(&c->peer);
        safe_close(c->pidfd);
        free(c->rbuf);
        free(c);
        manager_check_idle(m);
        return NULL;
}
