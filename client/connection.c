/* SPDX-License-Identifier: MIT */
/* Connection to pycqueued, and its autostart where no init runs.
 *
 * Framing: the stream is a sequence of frames (protocol.h). Received bytes
 * collect in one buffer that grows to the frame's announced size, never past
 * PROTOCOL_MAX_FRAME; bytes beyond the current frame stay for the next call.
 *
 * Autostart: when connect() finds nothing listening (ENOENT, ECONNREFUSED),
 * the client
 *   1. creates the socket's directory if missing (0755),
 *   2. takes flock(LOCK_EX) on "<socket>.lock" (0600, O_CLOEXEC so the daemon
 *      never inherits it); while another client holds it, it keeps trying
 *      to connect too, since that client's daemon may already listen,
 *   3. holding the lock, connects once more (the previous holder may just
 *      have started one) and otherwise starts the daemon: double fork and
 *      setsid so it belongs to no client's session and is reparented at
 *      once, cwd "/", stdio on /dev/null, every other fd closed, default
 *      signal handling, "DAEMON --socket=PATH --idle-exit=60" with
 *      PYCQUEUE_STARTED_BY=autostart in its environment (for its status),
 *   4. polls connect() every 10–50 ms for up to 10 s, failing early when the
 *      daemon's pid is gone, then drops the lock.
 * So N racing clients start exactly one daemon: only the lock holder spawns,
 * and every later holder finds it listening. A status pipe (close-on-exec)
 * carries the daemon's pid and, if execve() failed, its errno back to the
 * client, so a missing binary is reported at once, not after 10 s. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "connection.h"
#include "util.h"

#ifndef SBINDIR
#define SBINDIR "/usr/sbin"
#endif

const char *connection_daemon_path(void) {
        const char *e = getenv("PYCQUEUE_DAEMON");
        return e && *e ? e : SBINDIR "/pycqueued";
}

/* connect() on a blocking socket interrupted by a signal goes on in the
 * background; wait for it and fetch its result. */
static int wait_connected(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        socklen_t len = sizeof(int);
        int error = 0;

        for (;;) {
                int n = poll(&p, 1, -1);
                if (n > 0)
                        break;
                if (n < 0 && errno != EINTR)
                        return negative_errno();
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                return negative_errno();
        return -error;
}

static int socket_connect(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(path);
        _cleanup_close_ int fd = -1;
        int r = 0;

        if (len == 0)
                return -EINVAL;
        if (len >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, len);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (const struct sockaddr *)&sa,
                    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1)) < 0) {
                r = errno == EINTR ? wait_connected(fd) : negative_errno();
                if (r < 0)
                        return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static bool errno_is_not_listening(int r) {
        return r == -ENOENT || r == -ECONNREFUSED;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t)(usec / 1000000u),
                               .tv_nsec = (long)(usec % 1000000u) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Creates the directory that holds @socket_path and its missing parents,
 * mode 0755 whatever the umask; existing directories are left alone. */
static int mkdir_socket_parent(const char *socket_path) {
        _cleanup_free_ char *dir = strdup(socket_path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0; /* relative name in cwd, or directly in "/" */
        *slash = '\0';

        for (char *p = dir + 1;; p++) {
                bool end = *p == '\0';
                if (*p != '/' && !end)
                        continue;
                *p = '\0';
                if (mkdir(dir, 0755) == 0) {
                        if (chmod(dir, 0755) < 0)
                                return negative_errno();
                } else if (errno != EEXIST)
                        return negative_errno();
                if (end)
                        return 0;
                *p = '/';
        }
}

/* Takes the autostart lock, or returns 1 with *@ret_fd connected when the
 * daemon started by the lock's holder listens meanwhile. */
static int autostart_lock(const char *socket_path, int *ret_lock_fd, int *ret_fd) {
        _cleanup_free_ char *lock_path = NULL;
        _cleanup_close_ int lock_fd = -1;
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + AUTOSTART_LOCK_TIMEOUT_USEC, delay = 10000;

        if (asprintf(&lock_path, "%s.lock", socket_path) < 0)
                return -ENOMEM;
        lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (lock_fd < 0)
                return negative_errno();

        for (;;) {
                int r;

                if (flock(lock_fd, LOCK_EX | LOCK_NB) == 0) {
                        *ret_lock_fd = TAKE_FD(lock_fd);
                        return 0;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EWOULDBLOCK)
                        return negative_errno();
                r = socket_connect(socket_path, ret_fd);
                if (r >= 0)
                        return 1;
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        return -ETIMEDOUT;
                sleep_usec(delay);
                delay = MIN(delay * 2, 50000u);
        }
}

/* Status pipe records, written by the intermediate child (the daemon's pid)
 * and by the daemon's process if execve() fails (its errno). */
typedef struct SpawnReport {
        int kind; /* 'p' or 'e' */
        int value;
} SpawnReport;

static void spawn_report(int fd, int kind, int value) {
        SpawnReport m = { .kind = kind, .value = value };
        (void)!write(fd, &m, sizeof(m)); /* smaller than PIPE_BUF: atomic */
}

/* Closes every fd above 2 except @keep. */
static void close_other_fds(int keep) {
        unsigned k = (unsigned)keep;
        long max;

        if ((k <= 3 || close_range(3, k - 1, 0) == 0) && close_range(MAX(k + 1, 3u), ~0U, 0) == 0)
                return;
        max = sysconf(_SC_OPEN_MAX); /* close_range() needs Linux 5.9 */
        if (max < 0 || max > 65536)
                max = 65536;
        for (int fd = 3; fd < max; fd++)
                if (fd != keep)
                        (void)close(fd);
}

/* In the daemon's process, after the second fork: never returns. Only
 * async-signal-safe calls from here on. */
_noreturn_ static void daemon_exec(const char *daemon, char *const *argv, char *const *envp, int report_fd) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t none;
        int null_fd;

        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < _NSIG; sig++)
                (void)sigaction(sig, &sa, NULL); /* SIGPIPE was ignored by the client */

        null_fd = open("/dev/null", O_RDWR | O_NOCTTY);
        if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0 ||
            chdir("/") < 0) {
                spawn_report(report_fd, 'e', errno);
                _exit(127);
        }
        close_other_fds(report_fd); /* report_fd itself is close-on-exec */

        execve(daemon, argv, envp);
        spawn_report(report_fd, 'e', errno);
        _exit(127);
}

/* Reads the status pipe until every writer is gone. */
static int spawn_collect(int fd, pid_t *ret_pid) {
        SpawnReport m;
        pid_t pid = -1;
        int exec_errno = 0;

        for (;;) {
                ssize_t n = loop_read(fd, &m, sizeof(m));
                if (n < 0)
                        return (int)n;
                if (n < (ssize_t)sizeof(m))
                        break;
                if (m.kind == 'p')
                        pid = m.value;
                else if (m.kind == 'e')
                        exec_errno = m.value > 0 ? m.value : EIO;
        }
        if (exec_errno)
                return -exec_errno;
        if (pid <= 0)
                return -ECHILD; /* the intermediate child died before forking */
        *ret_pid = pid;
        return 0;
}

/* Our environment plus AUTOSTART_ENVIRONMENT (replacing any value of that
 * variable), built before fork(): the child may only make async-signal-safe
 * calls. The strings are borrowed; free the array only. */
static char **autostart_environment(void) {
        size_t name_len = strcspn(AUTOSTART_ENVIRONMENT, "=") + 1, n = 0, k = 0;
        char **envp;

        while (environ[n])
                n++;
        envp = calloc(n + 2, sizeof(char *));
        if (!envp)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], AUTOSTART_ENVIRONMENT, name_len) != 0)
                        envp[k++] = environ[i];
        envp[k] = (char *)AUTOSTART_ENVIRONMENT;
        return envp;
}

static int spawn_daemon(const char *daemon, const char *socket_path, pid_t *ret_pid) {
        _cleanup_free_ char *exe = NULL, *abs_socket = NULL, *socket_arg = NULL;
        _cleanup_free_ char **envp = NULL;
        _cleanup_close_ int read_fd = -1, write_fd = -1;
        int fds[2], status, r;
        pid_t child;

        /* The daemon runs in "/": relative paths would change meaning. */
        r = client_path_absolute(daemon, &exe);
        if (r < 0)
                return r;
        r = client_path_absolute(socket_path, &abs_socket);
        if (r < 0)
                return r;
        if (asprintf(&socket_arg, "--socket=%s", abs_socket) < 0)
                return -ENOMEM;
        char *argv[] = { exe, socket_arg, (char *)"--idle-exit=" AUTOSTART_IDLE_EXIT, NULL };
        envp = autostart_environment();
        if (!envp)
                return -ENOMEM;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        read_fd = fds[0];
        write_fd = fds[1];

        child = fork();
        if (child < 0)
                return negative_errno();
        if (child == 0) {
                pid_t grandchild;

                (void)close(read_fd);
                if (setsid() < 0) {
                        spawn_report(write_fd, 'e', errno);
                        _exit(1);
                }
                grandchild = fork();
                if (grandchild < 0) {
                        spawn_report(write_fd, 'e', errno);
                        _exit(1);
                }
                if (grandchild == 0)
                        daemon_exec(exe, argv, envp, write_fd);
                spawn_report(write_fd, 'p', (int)grandchild);
                _exit(0);
        }

        write_fd = safe_close(write_fd);
        while (waitpid(child, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return spawn_collect(read_fd, ret_pid);
}

/* Polls connect() until the daemon listens, it exits, or time runs out. */
static int wait_listening(const char *socket_path, pid_t pid, int *ret_fd) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + AUTOSTART_TIMEOUT_USEC, delay = 10000;

        for (;;) {
                int r = socket_connect(socket_path, ret_fd);
                if (r >= 0)
                        return 0;
                if (!errno_is_not_listening(r))
                        return r;
                if (kill(pid, 0) < 0 && errno == ESRCH)
                        return -ESRCH;
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        return -ETIMEDOUT;
                sleep_usec(delay);
                delay = MIN(delay * 2, 50000u);
        }
}

static int autostart(const char *socket_path, const char *daemon, ConnectStep *ret_step, int *ret_fd) {
        _cleanup_close_ int lock_fd = -1; /* closing it releases the lock for the next client */
        pid_t pid = -1;
        int r;

        *ret_step = CONNECT_STEP_MKDIR;
        r = mkdir_socket_parent(socket_path);
        if (r < 0)
                return r;

        *ret_step = CONNECT_STEP_LOCK;
        r = autostart_lock(socket_path, &lock_fd, ret_fd);
        if (r != 0)
                return r < 0 ? r : 0;

        *ret_step = CONNECT_STEP_CONNECT;
        r = socket_connect(socket_path, ret_fd);
        if (r >= 0 || !errno_is_not_listening(r))
                return r;

        *ret_step = CONNECT_STEP_SPAWN;
        r = spawn_daemon(daemon, socket_path, &pid);
        if (r < 0)
                return r;

        *ret_step = CONNECT_STEP_STARTUP;
        return wait_listening(socket_path, pid, ret_fd);
}

int connection_open(const char *socket_path, const char *daemon, ConnectStep *ret_step, Connection **ret) {
        _cleanup_(connection_freep) Connection *c = NULL;
        ConnectStep step = CONNECT_STEP_CONNECT;
        int fd = -1, r;

        r = socket_connect(socket_path, &fd);
        if (r < 0 && daemon && errno_is_not_listening(r))
                r = autostart(socket_path, daemon, &step, &fd);
        if (r < 0) {
                *ret_step = step;
                return r;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                *ret_step = CONNECT_STEP_CONNECT;
                return -ENOMEM;
        }
        c->fd = fd;
        *ret = TAKE_PTR(c);
        return 0;
}

Connection *connection_free(Connection *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        free(c->buf);
        free(c);
        return NULL;
}

int connection_send(Connection *c, MsgWriter *w) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size, done = 0;
        int r;

        r = msg_writer_finish(w, &frame, &size);
        if (r < 0)
                return r;
        while (done < size) {
                ssize_t n = send(c->fd, frame + done, size - done, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EPIPE || errno == ECONNRESET)
                                return 0; /* the reply, or EOF, says why */
                        return negative_errno();
                }
                done += (size_t)n;
        }
        return 0;
}

static int buffer_reserve(Connection *c, size_t want) {
        size_t a;
        uint8_t *b;

        if (c->allocated >= want)
                return 0;
        a = MAX(want, MAX(c->allocated * 2, (size_t)CONNECTION_BUFFER_MIN));
        a = MIN(a, (size_t)PROTOCOL_MAX_FRAME);
        if (a < want)
                return -EMSGSIZE;
        b = realloc(c->buf, a);
        if (!b)
                return -ENOMEM;
        c->buf = b;
        c->allocated = a;
        return 0;
}

int connection_receive(Connection *c, MsgReader *ret) {
        if (c->consumed > 0) {
                memmove(c->buf, c->buf + c->consumed, c->size - c->consumed);
                c->size -= c->consumed;
                c->consumed = 0;
        }

        for (;;) {
                int64_t need = frame_size(c->buf, c->size);
                ssize_t n;
                int r;

                if (need < 0)
                        return (int)need;
                if ((uint64_t)need > PROTOCOL_MAX_FRAME)
                        return -EMSGSIZE;
                if (need > 0 && c->size >= (size_t)need) {
                        r = msg_parse(c->buf, (size_t)need, ret);
                        if (r < 0)
                                return r;
                        c->consumed = (size_t)need;
                        return 0;
                }

                r = buffer_reserve(c, need > 0 ? (size_t)need : c->size + PROTOCOL_HEADER_SIZE);
                if (r < 0)
                        return r;
                n = recv(c->fd, c->buf + c->size, c->allocated - c->size, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EPIPE ? -ECONNRESET : negative_errno();
                }
                if (n == 0)
                        return -ECONNRESET;
                c->size += (size_t)n;
        }
}
