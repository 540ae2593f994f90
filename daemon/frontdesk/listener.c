/* SPDX-License-Identifier: MIT */
/* The listening socket: the one systemd passes (socket activation), or one
 * we bind ourselves at --socket with mode 0666 — access control is by peer
 * credentials per request, not by file mode, so every local user can ask
 * for status. A socket file left by a dead daemon is replaced; one that
 * still answers means another daemon runs there, and we refuse to start.
 * Accepting enforces the connection limits, in total and per uid. */

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
#include "listener.h"
#include "log.h"
#include "macro.h"
#include "manager.h"

struct Listener {
        Manager *manager;
        int fd;
        bool activated;
        char *path;     /* set when we bound it and must remove it */
        dev_t dev;
        ino_t ino;
        sd_event_source *source;
};

static unsigned connections_of(Manager *m, uid_t uid) {
        unsigned n = 0;
        for (Connection *c = m->connections; c; c = c->next)
                if (c->uid == uid)
                        n++;
        return n;
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
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning_errno(-errno, "Failed to accept a connection: %m");
                        return 0;
                }
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                        safe_close(cfd);
                        continue;
                }
                if (m->n_connections >= m->config->max_connections ||
                    connections_of(m, cred.uid) >= m->config->max_connections_per_uid) {
                        log_warning("Refusing a connection from uid %u pid %d: too many connections",
                                    (unsigned)cred.uid, (int)cred.pid);
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
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
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
