/* SPDX-License-Identifier: MIT */
/* A worker: one long-lived `python -I -S -c CODE` process (CODE is
 * worker.py, compiled into the daemon), started by the sandboxed-child
 * spawner (spawn.c) and speaking length-prefixed frames over its two pipes
 * (parsed by worker-message.c). The daemon side is fully non-blocking:
 * frames out are buffered
 * and written when the pipe is writable, frames in are assembled in a
 * bounded buffer. Anything unexpected from the worker — a frame too large,
 * a wrong type, a reply to a job it was not given, silence past the job
 * timeout — makes it untrusted: it is killed and its owner told once. The
 * untrusted side never gets to crash or stall the daemon. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "rootpath.h"
#include "safepath.h"
#include "util.h"
#include "spawn.h"
#include "worker.h"
#include "worker-code.h"

typedef enum WorkerState {
        WORKER_STARTING,
        WORKER_IDLE,
        WORKER_BUSY,
        WORKER_DEAD,
} WorkerState;

struct Worker {
        sd_event *event;
        WorkerState state;
        pid_t pid;
        int in_fd;   /* we write jobs here */
        int out_fd;  /* we read replies here */
        sd_event_source *in_source, *out_source, *child_source, *timer_source;
        WorkerOptions opts;
        const WorkerCallbacks *cb;
        void *userdata;

        uint8_t *wbuf;
        size_t wsize, wpos;
        uint8_t *rbuf;
        size_t rsize, rallocated;

        uint64_t job_id;
        WorkerInfo info;
};

bool worker_is_busy(const Worker *w) {
        return w->state != WORKER_IDLE;
}

pid_t worker_pid(const Worker *w) {
        return w->pid;
}

static void worker_kill(Worker *w) {
        if (w->pid > 0 && w->child_source)
                (void)sd_event_source_send_child_signal(w->child_source, SIGKILL, NULL, 0);
        else if (w->pid > 0)
                (void)kill(w->pid, SIGKILL);
}

/* Marks the worker dead and tells the owner exactly once. */
static void worker_die(Worker *w, int reason) {
        if (w->state == WORKER_DEAD)
                return;
        w->state = WORKER_DEAD;
        worker_kill(w);
        sd_event_source_set_enabled(w->in_source, SD_EVENT_OFF);
        sd_event_source_set_enabled(w->out_source, SD_EVENT_OFF);
        sd_event_source_set_enabled(w->timer_source, SD_EVENT_OFF);
        w->cb->on_dead(w, reason, w->userdata);
}

static int worker_on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;

        w->child_source = sd_event_source_unref(w->child_source);
        w->pid = 0;
        worker_die(w, -ECHILD);
        return 0;
}

static int worker_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        worker_die(userdata, -ETIMEDOUT);
        return 0;
}

static int worker_arm_timer(Worker *w, uint64_t timeout_usec) {
        int r;

        if (!w->timer_source)
                return sd_event_add_time_relative(w->event, &w->timer_source, CLOCK_MONOTONIC, timeout_usec,
                                                  10000, worker_on_timer, w);
        r = sd_event_source_set_time_relative(w->timer_source, timeout_usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(w->timer_source, SD_EVENT_ONESHOT);
}

static int handle_frame(Worker *w, const uint8_t *p, size_t n) {
        WorkerMessage msg;
        int r;

        if (w->state != WORKER_STARTING && w->state != WORKER_BUSY)
                return -EBADMSG; /* nothing asked */
        r = worker_parse_message(p, n, w->state == WORKER_STARTING, w->job_id, &msg);
        if (r < 0)
                return r;
        w->state = WORKER_IDLE;
        sd_event_source_set_enabled(w->timer_source, SD_EVENT_OFF);
        if (msg.hello) {
                w->info = msg.info; /* ours now */
                msg.info = (WorkerInfo){};
                w->cb->on_ready(w, &w->info, w->userdata);
        } else
                w->cb->on_reply(w, &msg.reply, w->userdata);
        worker_message_done(&msg);
        return 0;
}

static int worker_on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;

        for (;;) {
                ssize_t n;
                if (w->rallocated - w->rsize < 65536) {
                        size_t na = MAX(w->rallocated * 2, (size_t)131072);
                        uint8_t *nb;

                        if (na > w->opts.max_reply + 4 + 65536)
                                na = w->opts.max_reply + 4 + 65536;
                        if (na <= w->rallocated) {
                                worker_die(w, -EBADMSG);
                                return 0;
                        }
                        nb = realloc(w->rbuf, na);
                        if (!nb) {
                                worker_die(w, -ENOMEM);
                                return 0;
                        }
                        w->rbuf = nb;
                        w->rallocated = na;
                }
                n = read(w->out_fd, w->rbuf + w->rsize, w->rallocated - w->rsize);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        worker_die(w, -EPIPE);
                        return 0;
                }
                if (n == 0) {
                        worker_die(w, -EPIPE);
                        return 0;
                }
                w->rsize += (size_t)n;

                /* Take every complete frame. */
                for (;;) {
                        size_t len, whole;
                        int r;

                        r = worker_frame_next(w->rbuf, w->rsize, w->opts.max_reply, &len);
                        if (r < 0) {
                                worker_die(w, r);
                                return 0;
                        }
                        if (r == 0)
                                break;
                        whole = len + WORKER_FRAME_HEADER;
                        r = handle_frame(w, w->rbuf + WORKER_FRAME_HEADER, len);
                        if (w->state == WORKER_DEAD)
                                return 0;
                        if (r < 0) {
                                worker_die(w, r);
                                return 0;
                        }
                        memmove(w->rbuf, w->rbuf + whole, w->rsize - whole);
                        w->rsize -= whole;
                }
                /* Do not keep a huge buffer around after a huge reply. */
                if (w->rsize == 0 && w->rallocated > (4u << 20)) {
                        free(w->rbuf);
                        w->rbuf = NULL;
                        w->rallocated = 0;
                }
        }
}

static int worker_flush(Worker *w) {
        while (w->wpos < w->wsize) {
                ssize_t n = write(w->in_fd, w->wbuf + w->wpos, w->wsize - w->wpos);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return sd_event_source_set_enabled(w->in_source, SD_EVENT_ON);
                        return -EPIPE;
                }
                w->wpos += (size_t)n;
        }
        free(w->wbuf);
        w->wbuf = NULL;
        w->wsize = w->wpos = 0;
        return sd_event_source_set_enabled(w->in_source, SD_EVENT_OFF);
}

static int worker_on_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;

        if (worker_flush(w) < 0)
                worker_die(w, -EPIPE);
        return 0;
}

int worker_send_job(Worker *w, uint64_t job_id, const char *display_path, uint32_t mtime, uint32_t size,
                    unsigned opt_level, InvalidationMode mode, const uint8_t *source, size_t source_size,
                    uint64_t timeout_usec) {
        size_t plen = strlen(display_path), len = 23 + plen + source_size;
        uint8_t *b;
        int r;

        if (w->state != WORKER_IDLE || w->wbuf)
                return -EBUSY;
        if (len > UINT32_MAX)
                return -EFBIG;
        b = malloc(4 + len);
        if (!b)
                return -ENOMEM;
        unaligned_write_le32(b, (uint32_t)len);
        b[4] = 'J';
        unaligned_write_le64(b + 5, job_id);
        unaligned_write_le32(b + 13, mtime);
        unaligned_write_le32(b + 17, size);
        b[21] = (uint8_t)opt_level;
        b[22] = (uint8_t)mode;
        unaligned_write_le32(b + 23, (uint32_t)plen);
        memcpy(b + 27, display_path, plen);
        if (source_size > 0)
                memcpy(b + 27 + plen, source, source_size);
        w->wbuf = b;
        w->wsize = 4 + len;
        w->wpos = 0;
        w->job_id = job_id;
        w->state = WORKER_BUSY;

        r = worker_arm_timer(w, timeout_usec);
        if (r < 0)
                return r;
        r = worker_flush(w);
        if (r < 0) {
                worker_die(w, -EPIPE);
                return 0; /* reported through on_dead */
        }
        return 0;
}

int worker_spawn(sd_event *event, const char *interpreter, const WorkerOptions *opts,
                 const WorkerCallbacks *callbacks, void *userdata, Worker **ret) {
        static char *envp[] = { (char *)"PATH=/usr/local/bin:/usr/bin:/bin", (char *)"LC_ALL=C.UTF-8",
                                NULL };
        /* Inside its root, the interpreter is named as the root sees it. */
        const char *exe = rootpath_inside(opts->root, interpreter);
        char *argv[] = { (char *)exe, (char *)"-I", (char *)"-S", (char *)"-c", (char *)worker_code, NULL };
        SandboxOptions so = { .uid = opts->uid, .gid = opts->gid, .memory_limit = opts->memory_limit };
        _cleanup_close_ int root_fd = -1;
        SandboxChild child;
        Worker *w;
        int r;

        if (opts->root) {
                r = safepath_open_dir(opts->root, &root_fd);
                if (r < 0)
                        return r;
                so.chroot = true;
                so.root_fd = root_fd;
        }
        r = sandbox_spawn(&so, exe, argv, envp, &child);
        if (r < 0)
                return r;

        w = calloc(1, sizeof(*w));
        if (!w) {
                sandbox_child_done(&child);
                return -ENOMEM;
        }
        w->event = event;
        w->pid = child.pid;
        w->in_fd = child.in_fd;
        w->out_fd = child.out_fd;
        w->opts = *opts;
        w->opts.root = NULL; /* the caller's string; only needed above */
        w->cb = callbacks;
        w->userdata = userdata;
        w->state = WORKER_STARTING;

        r = sd_event_add_child(event, &w->child_source, w->pid, WEXITED, worker_on_child, w);
        if (r >= 0)
                r = sd_event_add_io(event, &w->out_source, w->out_fd, EPOLLIN, worker_on_readable, w);
        if (r >= 0)
                r = sd_event_add_io(event, &w->in_source, w->in_fd, EPOLLOUT, worker_on_writable, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->in_source, SD_EVENT_OFF);
        if (r >= 0)
                r = worker_arm_timer(w, opts->handshake_timeout_usec);
        if (r < 0) {
                w->state = WORKER_DEAD;
                worker_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        if (w->pid > 0) {
                worker_kill(w);
                /* Reap it now: the child source goes away with us. */
                (void)waitpid(w->pid, NULL, 0);
        }
        sd_event_source_disable_unref(w->child_source);
        sd_event_source_disable_unref(w->in_source);
        sd_event_source_disable_unref(w->out_source);
        sd_event_source_disable_unref(w->timer_source);
        safe_close(w->in_fd);
        safe_close(w->out_fd);
        free(w->wbuf);
        free(w->rbuf);
        worker_info_done(&w->info);
        free(w);
        return NULL;
}
