/* SPDX-License-Identifier: MIT */
/* Peer process information for provenance records.
 *
 * The connection's credentials come from SO_PEERCRED at accept, and so
 * does a pidfd of the peer. The executable and command line come from
 * /proc/PID, read later, when a request needs them: /proc names a process
 * only for as long as it lives, and the pid may have been reused by then.
 * So after reading we ask the pidfd taken at accept whether that process
 * still exists; if not, what we read may belong to someone else and is
 * discarded. Ancestors are
 * read the same way, each with its own pidfd, up to pid 1 or
 * PEER_MAX_PARENTS. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "peer.h"
#include "util.h"

static int pidfd_open_compat(pid_t pid) {
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

static bool pidfd_alive(int pidfd) {
#ifdef SYS_pidfd_send_signal
        return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 || errno == EPERM;
#else
        return true;
#endif
}

int peer_root_read(pid_t pid, int pidfd, char **ret) {
        char path[64], buf[PATH_MAX];
        _cleanup_close_ int fd = -1;
        struct stat st, own, at;
        ssize_t n;

        *ret = NULL;
        snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || stat("/", &own) < 0)
                return 0;
        if (st.st_dev == own.st_dev && st.st_ino == own.st_ino)
                return 0;
        n = readlink(path, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        if (pidfd >= 0 && !pidfd_alive(pidfd))
                return 0; /* the pid may name another process by now */
        /* The path is the kernel's name for the directory; it counts only if
         * it still leads there from our side. */
        if (buf[0] != '/' || stat(buf, &at) < 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino)
                return -EREMOTE;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static char *read_cmdline(pid_t pid) {
        char path[64], buf[PEER_MAX_CMDLINE];
        _cleanup_close_ int fd = -1;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        n = loop_read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return NULL;
        while (n > 0 && buf[n - 1] == '\0')
                n--;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        buf[n] = '\0';
        return strdup(buf);
}

static char *read_exe(pid_t pid) {
        char path[64], buf[4096];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        n = readlink(path, buf, sizeof(buf) - 1);
        if (n < 0)
                return NULL;
        buf[n] = '\0';
        return strdup(buf);
}

static pid_t read_ppid(pid_t pid) {
        char path[64], buf[1024], *p;
        _cleanup_close_ int fd = -1;
        ssize_t n;
        int ppid;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = loop_read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        /* "pid (comm) state ppid": comm may hold spaces and parentheses. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
                return -1;
        return ppid;
}

int peer_pidfd_open(pid_t pid) {
        return pidfd_open_compat(pid);
}

/* Fills @ret for @pid, checked against @pidfd (taken by the caller, or
 * here when -1); returns its parent's pid, or -1. */
static pid_t read_process_with(pid_t pid, int given_pidfd, PeerProcess *ret) {
        _cleanup_close_ int own = given_pidfd < 0 ? pidfd_open_compat(pid) : -1;
        int pidfd = given_pidfd >= 0 ? given_pidfd : own;
        PeerProcess p = { .pid = pid };
        pid_t ppid;

        p.exe = read_exe(pid);
        p.cmdline = read_cmdline(pid);
        ppid = read_ppid(pid);
        if (pidfd >= 0 && !pidfd_alive(pidfd)) {
                free(p.exe);
                free(p.cmdline);
                p.exe = p.cmdline = NULL;
                ppid = -1;
        }
        *ret = p;
        return ppid;
}

static pid_t read_process(pid_t pid, PeerProcess *ret) {
        return read_process_with(pid, -1, ret);
}

void peer_info_read_pidfd(pid_t pid, int pidfd, uid_t uid, gid_t gid, PeerInfo *ret) {
        PeerInfo info = { .uid = uid, .gid = gid };
        pid_t next;

        next = pid > 0 ? read_process_with(pid, pidfd, &info.self) : -1;
        while (next > 0 && info.n_parents < PEER_MAX_PARENTS) {
                PeerProcess *p = &info.parents[info.n_parents++];
                pid_t cur = next;

                next = read_process(cur, p);
                if (cur == 1)
                        break;
        }
        *ret = info;
}

void peer_info_read(pid_t pid, uid_t uid, gid_t gid, PeerInfo *ret) {
        peer_info_read_pidfd(pid, -1, uid, gid, ret);
}

void peer_info_done(PeerInfo *info) {
        free(info->self.exe);
        free(info->self.cmdline);
        for (size_t i = 0; i < info->n_parents; i++) {
                free(info->parents[i].exe);
                free(info->parents[i].cmdline);
        }
        *info = (PeerInfo){};
}

char *peer_info_parents_text(const PeerInfo *info) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < info->n_parents; i++) {
                const PeerProcess *p = &info->parents[i];
                /* Tabs and newlines inside fields would break the format. */
                fprintf(f, "%d\t", (int)p->pid);
                for (const char *s = p->exe ? p->exe : ""; *s; s++)
                        fputc(*s == '\t' || *s == '\n' ? ' ' : *s, f);
                fputc('\t', f);
                for (const char *s = p->cmdline ? p->cmdline : ""; *s; s++)
                        fputc(*s == '\t' || *s == '\n' ? ' ' : *s, f);
                fputc('\n', f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
