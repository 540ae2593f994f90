/* SPDX-License-Identifier: MIT */
/* The sandboxed-child spawner: both kinds of interpreter the daemon runs —
 * the long-lived compile workers and verify's short-lived marshal checker —
 * start here, so every one gets the same sandbox (sandbox.c) and the same
 * pipes: the child's stdin and stdout, nothing else.
 *
 * The workers are driven from the event loop (worker.c watches the pipes
 * and the pid). The checker runs on an I/O thread, which may block, but
 * only until a deadline: sandbox_exchange() is a poll() loop over both
 * pipes that writes input while it reads output and gives up at the
 * deadline. No read, write or waitpid here can wait longer than that —
 * the pipes are non-blocking and the child is reaped only after SIGKILL
 * or after it answered everything. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "spawn.h"
#include "util.h"

int sandbox_spawn(const SandboxOptions *o, const char *path, char **argv, char **envp, SandboxChild *ret) {
        int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 };
        pid_t parent = getpid(), pid;
        int r;

        if (pipe2(in_pipe, O_CLOEXEC) < 0)
                return negative_errno();
        if (pipe2(out_pipe, O_CLOEXEC) < 0) {
                r = negative_errno();
                safe_close(in_pipe[0]);
                safe_close(in_pipe[1]);
                return r;
        }

        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                safe_close(in_pipe[0]);
                safe_close(in_pipe[1]);
                safe_close(out_pipe[0]);
                safe_close(out_pipe[1]);
                return r;
        }
        if (pid == 0)
                sandbox_exec(parent, in_pipe[0], out_pipe[1], o, path, argv, envp);

        safe_close(in_pipe[0]);
        safe_close(out_pipe[1]);
        if (fcntl(in_pipe[1], F_SETFL, O_NONBLOCK) < 0 || fcntl(out_pipe[0], F_SETFL, O_NONBLOCK) < 0) {
                SandboxChild c = { .pid = pid, .in_fd = in_pipe[1], .out_fd = out_pipe[0] };
                r = negative_errno();
                sandbox_child_done(&c);
                return r;
        }
        *ret = (SandboxChild){ .pid = pid, .in_fd = in_pipe[1], .out_fd = out_pipe[0] };
        return 0;
}

void sandbox_child_done(SandboxChild *c) {
        if (c->pid > 0) {
                (void)kill(c->pid, SIGKILL);
                while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                c->pid = 0;
        }
        c->in_fd = safe_close(c->in_fd);
        c->out_fd = safe_close(c->out_fd);
}

typedef struct Exchange {
        uint8_t *wbuf; /* the frame being written */
        size_t wsize, wpos;
        bool fed_all;
        uint8_t *rbuf;
        size_t rsize, rallocated;
} Exchange;

/* Writes as much as the pipe takes now. */
static int exchange_write(SandboxChild *c, Exchange *x, sandbox_feed_fn feed, void *userdata) {
        for (;;) {
                ssize_t n;
                int r;

                if (!x->wbuf) {
                        r = feed(userdata, &x->wbuf, &x->wsize);
                        if (r < 0)
                                return r;
                        if (r == 0) {
                                x->fed_all = true;
                                c->in_fd = safe_close(c->in_fd); /* EOF: the child finishes */
                                return 0;
                        }
                        x->wpos = 0;
                }
                n = write(c->in_fd, x->wbuf + x->wpos, x->wsize - x->wpos);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        /* The child stopped reading: what it answered so far
                         * still comes, or its stdout's EOF tells. */
                        x->fed_all = true;
                        c->in_fd = safe_close(c->in_fd);
                        return 0;
                }
                x->wpos += (size_t)n;
                if (x->wpos == x->wsize) {
                        free(x->wbuf);
                        x->wbuf = NULL;
                }
        }
}

/* Reads what is there and hands over every complete frame; 1 when
 * @on_frame said it had everything. */
static int exchange_read(SandboxChild *c, Exchange *x, sandbox_frame_fn on_frame, void *userdata,
                         size_t max_frame) {
        for (;;) {
                ssize_t n;

                if (x->rallocated - x->rsize < 4096) {
                        size_t cap = max_frame + SPAWN_FRAME_HEADER + 4096;
                        size_t na = MIN(MAX(x->rallocated * 2, (size_t)16384), cap);
                        uint8_t *nb;

                        if (na <= x->rallocated)
                                return -EBADMSG;
                        nb = realloc(x->rbuf, na);
                        if (!nb)
                                return -ENOMEM;
                        x->rbuf = nb;
                        x->rallocated = na;
                }
                n = read(c->out_fd, x->rbuf + x->rsize, x->rallocated - x->rsize);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -EPIPE;
                }
                if (n == 0)
                        return -EPIPE;
                x->rsize += (size_t)n;

                for (;;) {
                        uint32_t len;
                        size_t whole;
                        int r;

                        if (x->rsize < SPAWN_FRAME_HEADER)
                                break;
                        len = unaligned_read_le32(x->rbuf);
                        if (len > max_frame)
                                return -EBADMSG;
                        whole = (size_t)len + SPAWN_FRAME_HEADER;
                        if (x->rsize < whole)
                                break;
                        r = on_frame(userdata, x->rbuf + SPAWN_FRAME_HEADER, len);
                        if (r != 0)
                                return r;
                        memmove(x->rbuf, x->rbuf + whole, x->rsize - whole);
                        x->rsize -= whole;
                }
        }
}

int sandbox_exchange(SandboxChild *c, sandbox_feed_fn feed, sandbox_frame_fn on_frame, void *userdata,
                     size_t max_frame, uint64_t deadline_usec) {
        Exchange x = {};
        int r;

        if (c->pid <= 0 || c->out_fd < 0)
                return -EINVAL;
        if (c->in_fd < 0)
                x.fed_all = true;

        r = x.fed_all ? 0 : exchange_write(c, &x, feed, userdata);
        while (r >= 0) {
                struct pollfd p[2];
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                int n = 0, k;

                if (now >= deadline_usec) {
                        r = -ETIMEDOUT;
                        break;
                }
                p[n++] = (struct pollfd){ .fd = c->out_fd, .events = POLLIN };
                if (!x.fed_all)
                        p[n++] = (struct pollfd){ .fd = c->in_fd, .events = POLLOUT };
                /* Round up, so that we never wake just before the deadline. */
                k = poll(p, (nfds_t)n, (int)MIN((deadline_usec - now + 999) / 1000, (uint64_t)INT32_MAX));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        break;
                }
                if (n > 1 && p[1].revents)
                        r = exchange_write(c, &x, feed, userdata);
                if (r >= 0 && p[0].revents) {
                        r = exchange_read(c, &x, on_frame, userdata, max_frame);
                        if (r == 1) {
                                r = 0;
                                break;
                        }
                }
        }
        free(x.wbuf);
        free(x.rbuf);
        return r;
}
