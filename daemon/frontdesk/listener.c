/* SPDX-License-Identifier: MIT */
/* The listening socket: the one systemd passes (socket activation), or one
 * we bind ourselves at --socket with mode 0666 — access control is by peer
 * credentials per request, not by file mode, so every local user can ask
 * for status. A socket file left by a dead daemon is replaced; one that
 * still answers means another daemon runs there, and we refuse to start.
 * Accepting enforces the connection limits, in total and per uid.
 *
 * Running out of descriptors: accept4() then fails with EMFILE (or ENFILE,
 * ENOBUFS, ENOMEM) and leaves the connection in the backlog, so the
 * level-triggered socket stays readable and the loop would call us again at
 * once, forever. Instead the listener pauses: its io source goes off and a
 * timer turns it back on LISTENER_PAUSE_USEC later. A pause lasts until an
 * accept no longer fails for want of resources; it is logged when it starts
 * and when it ends, never per failed accept. Waiting clients stay queued in
 * the kernel's backlog meanwhile.
 *
 * A client can make the daemon log at will (connect beyond its limit, or
 * keep the descriptors at the edge so that pauses start and end in turn),
 * so those messages are also limited in time: at most one per
 * LISTENER_LOG_INTERVAL_USEC, the next one counting what was left out. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "connection.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "macro.h"
#include "manager.h"

#define LISTENER_PAUSE_USEC (200 * 1000ULL)
#define LISTENER_LOG_INTERVAL_USEC (10 * 1000000ULL)

typedef struct LogLimit {
        uint64_t last_usec; /* 0: never logged */
        unsigned suppressed;
} LogLimit;

/* Connections the privileged caller may open beyond max_connections. */
#define LISTENER_PRIVILEGED_RESERVE 16u

struct Listener {
        Manager *manager;
        int fd;
        bool activated;
        char *path; /* set when we bound it and must remove it */
        dev_t dev;
        ino_t ino;
        sd_event_source *source;
        sd_event_source *pause_source; /* turns the listener back on */
        bool paused;                   /* out of descriptors since paused_usec */
        bool pause_logged;             /* its start was logged, so its end is too */
        uint64_t paused_usec;
        unsigned n_paused_failures;
        LogLimit pause_log, refuse_log;
};

static unsigned connections_of(Manager *m, uid_t uid) {
        unsigned n = 0;
        for (Connection *c = m->connections; c; c = c->next)
                if (c->uid == uid)
                        n++;
        return n;
}

static uint64_t listener_now(Listener *l) {
        uint64_t now = 0;

        (void)sd_event_now(l->manager->event, CLOCK_MONOTONIC, &now);
        return now;
}

/* True when a message may be logged now; otherwise counts it as left out. */
static bool log_limit_allow(LogLimit *ll, uint64_t now) {
        if (ll->last_usec != 0 && now - ll->last_usec < LISTENER_LOG_INTERVAL_USEC) {
                ll->suppressed++;
                return false;
        }
        ll->last_usec = now;
        return true;
}

/* The number left out since the last message; call after logging one. */
static unsigned log_limit_take(LogLimit *ll) {
        unsigned n = ll->suppressed;

        ll->suppressed = 0;
        return n;
}

static bool errno_is_exhaustion(int error) {
        return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

static int listener_on_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        Listener *l = userdata;

        /* Try again; the next accept decides whether the pause is over. */
        (void)sd_event_source_set_enabled(l->source, SD_EVENT_ON);
        return 0;
}

/* Turns the io source off for LISTENER_PAUSE_USEC. Returns 0, or a negative
 * errno when the timer cannot be armed (then the caller keeps accepting). */
static int listener_pause(Listener *l, int error) {
        Manager *m = l->manager;
        int r;

        if (!l->pause_source)
                r = sd_event_add_time_relative(m->event, &l->pause_source, CLOCK_MONOTONIC,
                                               LISTENER_PAUSE_USEC, 50 * 1000ULL, listener_on_resume, l);
        else {
                r = sd_event_source_set_time_relative(l->pause_source, LISTENER_PAUSE_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(l->pause_source, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                return r;
        (void)sd_event_source_set_enabled(l->source, SD_EVENT_OFF);

        l->n_paused_failures++;
        if (!l->paused) {
                l->paused = true;
                l->paused_usec = listener_now(l);
                l->pause_logged = log_limit_allow(&l->pause_log, l->paused_usec);
                if (l->pause_logged)
                        log_warning_errno(
                                error,
                                "Cannot accept connections (%m); pausing the listener, retrying every "
                                "%llu ms (%u connections open, %u more pauses since the last message)",
                                (unsigned long long)(LISTENER_PAUSE_USEC / 1000), m->n_connections,
                                log_limit_take(&l->pause_log));
        }
        return 0;
}

static void listener_resumed(Listener *l) {
        if (!l->paused)
                return;
        if (l->pause_logged)
                log_notice("Accepting connections again after %llu ms (%u failed accepts)",
                           (unsigned long long)((listener_now(l) - l->paused_usec) / 1000),
                           l->n_paused_failures);
        l->paused = false;
        l->n_paused_failures = 0;
}

static int listener_on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Listener *l = userdata;
        Manager *m = l->manager;

        for (unsigned i = 0; i < 64; i++) {
                Connection *c;
                struct ucred cred;
                socklen_t len = sizeof(cred);
                int cfd, r;

                cfd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (cfd < 0) {
                        r = -errno;
                        if (errno_is_exhaustion(-r) && listener_pause(l, r) >= 0)
                                return 0;
                        if (r == -EAGAIN)
                                listener_resumed(l);
                        else if (r != -EINTR && r != -ECONNABORTED)
                                log_warning_errno(r, "Failed to accept a connection: %m");
                        return 0;
                }
                listener_resumed(l);
                /* The credentials are read once, here: the limits below and
                 * the connection both use them. */
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                        safe_close(cfd);
                        continue;
                }
                /* The privileged caller has a reserve beyond the total, so
                 * that other users holding every connection cannot lock root
                 * out; it is still bounded. */
                if (m->n_connections >= m->config->max_connections +
                                                (dispatch_caller_class(cred.uid) == CALLER_PRIVILEGED
                                                         ? LISTENER_PRIVILEGED_RESERVE
                                                         : 0) ||
                    connections_of(m, cred.uid) >= m->config->max_connections_per_uid) {
                        if (log_limit_allow(&l->refuse_log, listener_now(l)))
                                log_warning("Refusing a connection from uid %u pid %d: too many connections "
                                            "(%u more refused since the last message)",
                                            (unsigned)cred.uid, (int)cred.pid,
                                            log_limit_take(&l->refuse_log));
                        safe_close(cfd);
                        continue;
                }
                r = connection_new(m, cfd, &cred, &c);
                if (r < 0)
                        log_warning_errno(r, "Failed to set up a connection: %m");
                manager_check_idle(m);
        }
        return 0;
}

static int socket_in_use(const struct sockaddr_un *sa, socklen_t len) {
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return negative_errno();
        return connect(fd, (const struct sockaddr *)sa, len) == 0;
}

static int make_parent_dir(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = '\0';
        if (mkdir(dir, 0755) < 0) {
                if (errno != EEXIST)
                        return negative_errno();
                return 0;
        }
        /* 0755 whatever the umask (the unit's is 0077): every user connects. */
        if (chmod(dir, 0755) < 0)
                return negative_errno();
        return 0;
}

static int bind_socket(Listener *l, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len;
        struct stat st;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);

        r = make_parent_dir(path);
        if (r < 0)
                return r;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (socket_in_use(&sa, len) > 0)
                        return -EADDRINUSE;
                (void)unlink(path);
        }

        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (l->fd < 0)
                return negative_errno();
        if (bind(l->fd, (struct sockaddr *)&sa, len) < 0)
                return negative_errno();
        if (chmod(path, 0666) < 0)
                return negative_errno();
        if (listen(l->fd, SOMAXCONN) < 0)
                return negative_errno();
        if (stat(path, &st) == 0) {
                l->dev = st.st_dev;
                l->ino = st.st_ino;
        }
        l->path = strdup(path);
        return l->path ? 0 : -ENOMEM;
}

int listener_new(Manager *m, const char *path, Listener **ret) {
        Listener *l;
        int n, r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->manager = m;
        l->fd = -1;

        n = sd_listen_fds(true);
        if (n < 0) {
                r = n;
                goto fail;
        }
        if (n > 1) {
                r = -E2BIG;
                log_error("Expected one socket from systemd, got %d", n);
                goto fail;
        }
        if (n == 1) {
                if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
                        r = -ENOTSOCK;
                        log_error("The socket passed by systemd is not a listening AF_UNIX stream socket");
                        goto fail;
                }
                l->fd = SD_LISTEN_FDS_START;
                l->activated = true;
                (void)fcntl(l->fd, F_SETFD, FD_CLOEXEC);
                (void)fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
        } else {
                r = bind_socket(l, path);
                if (r < 0) {
                        if (r == -EADDRINUSE)
                                log_error("Another pycqueued is already listening on %s", path);
                        else
                                log_error_errno(r, "Failed to listen on %s: %m", path);
                        goto fail;
                }
        }
        r = sd_event_add_io(m->event, &l->source, l->fd, EPOLLIN, listener_on_accept, l);
        if (r < 0)
                goto fail;
        *ret = l;
        return 0;
fail:
        listener_free(l);
        return r;
}

Listener *listener_free(Listener *l) {
        struct stat st;

        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->source);
        sd_event_source_disable_unref(l->pause_source);
        /* Remove the socket file only if it is still the one we made. */
        if (l->path && stat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
                (void)unlink(l->path);
        safe_close(l->fd);
        free(l->path);
        free(l);
        return NULL;
}

bool listener_is_activated(const Listener *l) {
        return l->activated;
}
