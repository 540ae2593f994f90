/* SPDX-License-Identifier: MIT */
/* The audit: every .pyc created or written under the audit roots by a
 * process other than this daemon is recorded with that process's pid,
 * executable, command line and parent chain.
 *
 * fanotify reports FAN_CLOSE_WRITE for the mount of each root, with the
 * writer's pid and an fd of the file. Events outside the roots, of files
 * that are not .pyc files (or the "NAME.pyc.NNN" temporaries py_compile
 * renames into place), and of our own process are ignored. The writer is
 * identified from /proc right away, while it most likely still runs; a
 * process that is already gone is recorded with its pid alone. Records go
 * to the database on an I/O thread. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "audit.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "peer.h"
#include "provdb.h"
#include "recorder.h"
#include "safepath.h"
#include "util.h"

#define AUDIT_MAX_ROOTS 32

typedef struct AuditRecord {
        IoWork io;
        ProvDb *db;
        uint64_t time_usec;
        char *path;
        pid_t pid;
        char *exe, *cmdline, *parents;
} AuditRecord;

struct Audit {
        Manager *manager;
        int fd;
        sd_event_source *source;
        char *roots[AUDIT_MAX_ROOTS];
        size_t n_roots;
};

static void record_run(IoWork *w) {
        AuditRecord *r = (AuditRecord *)w;
        (void)provdb_audit_add(r->db, r->time_usec, r->path, r->pid, r->exe, r->cmdline, r->parents, NULL);
}

static void record_done(IoWork *w) {
        AuditRecord *r = (AuditRecord *)w;
        free(r->path);
        free(r->exe);
        free(r->cmdline);
        free(r->parents);
        free(r);
}

static bool under_roots(Audit *a, const char *path) {
        for (size_t i = 0; i < a->n_roots; i++) {
                size_t n = strlen(a->roots[i]);
                if (strncmp(path, a->roots[i], n) == 0 && (path[n] == '/' || path[n] == '\0' || n == 1))
                        return true;
        }
        return false;
}

/* "…/__pycache__/X.pyc" or py_compile's temporary "…/__pycache__/X.pyc.123":
 * returns the final .pyc name's length, or 0 when not a .pyc. */
static size_t pyc_name_length(const char *path) {
        const char *p = strstr(path, ".pyc");

        if (!strstr(path, "/"
                          "__pycache__"
                          "/"))
                return 0;
        for (; p; p = strstr(p + 1, ".pyc")) {
                const char *q = p + 4;
                if (*q == '\0')
                        return (size_t)(q - path);
                if (*q == '.') {
                        const char *d = q + 1;
                        while (*d >= '0' && *d <= '9')
                                d++;
                        if (d > q + 1 && *d == '\0')
                                return (size_t)(q - path);
                }
        }
        return 0;
}

static void audit_event(Audit *a, const struct fanotify_event_metadata *ev) {
        Recorder *rec = a->manager->recorder;
        char proc[64], path[4096];
        PeerInfo info;
        AuditRecord *r;
        ssize_t n;
        size_t len;

        if (ev->fd < 0)
                return;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ev->fd);
        n = readlink(proc, path, sizeof(path) - 1);
        if (n <= 0)
                return;
        path[n] = '\0';
        if (ev->pid == getpid() || !under_roots(a, path))
                return;
        len = pyc_name_length(path);
        if (len == 0)
                return;
        path[len] = '\0';

        peer_info_read(ev->pid, 0, 0, &info);
        log_notice("Audit: %s written by pid %d (%s), not by pycqueued", path, (int)ev->pid,
                   info.self.exe ? info.self.exe : "exited");
        if (!rec || !recorder_db(rec)) {
                peer_info_done(&info);
                return;
        }
        r = calloc(1, sizeof(*r));
        if (!r) {
                peer_info_done(&info);
                return;
        }
        r->io = (IoWork){ .run = record_run, .done = record_done };
        r->db = recorder_db(rec);
        r->time_usec = now_usec(CLOCK_REALTIME);
        r->path = strdup(path);
        r->pid = ev->pid;
        r->exe = info.self.exe ? strdup(info.self.exe) : NULL;
        r->cmdline = info.self.cmdline ? strdup(info.self.cmdline) : NULL;
        r->parents = peer_info_parents_text(&info);
        peer_info_done(&info);
        iopool_submit(a->manager->iopool, &r->io);
}

static int audit_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Audit *a = userdata;
        char buf[8192] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));

        for (;;) {
                ssize_t n = read(a->fd, buf, sizeof(buf));
                struct fanotify_event_metadata *ev;

                if (n <= 0)
                        return 0;
                for (ev = (struct fanotify_event_metadata *)buf; FAN_EVENT_OK(ev, n);
                     ev = FAN_EVENT_NEXT(ev, n)) {
                        if (ev->vers == FANOTIFY_METADATA_VERSION && !(ev->mask & FAN_Q_OVERFLOW))
                                audit_event(a, ev);
                        if (ev->fd >= 0)
                                close(ev->fd);
                }
        }
}

int audit_new(Manager *m, const char *roots, Audit **ret) {
        _cleanup_free_ char *copy = strdup(roots);
        char *save = NULL;
        Audit *a;
        int r;

        if (!copy)
                return -ENOMEM;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->manager = m;
        a->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK,
                              O_RDONLY | O_LARGEFILE | O_CLOEXEC);
        if (a->fd < 0) {
                r = negative_errno();
                free(a);
                return r;
        }
        for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
                char *real = NULL;

                if (a->n_roots >= AUDIT_MAX_ROOTS)
                        break;
                r = safepath_canonicalize(t, &real);
                if (r < 0) {
                        log_error_errno(r, "Audit root %s: %m", t);
                        audit_free(a);
                        return r;
                }
                /* The whole file system, not the mount: in a private mount
                 * namespace (the unit's sandbox) a mount mark sees only
                 * writes made through our copy of the mount. Events outside
                 * the roots are filtered by under_roots(). */
                if (fanotify_mark(a->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CLOSE_WRITE, AT_FDCWD,
                                  real) < 0 &&
                    (errno != EINVAL || fanotify_mark(a->fd, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE,
                                                      AT_FDCWD, real) < 0)) {
                        r = negative_errno();
                        log_error_errno(r, "Cannot watch %s: %m", real);
                        free(real);
                        audit_free(a);
                        return r;
                }
                a->roots[a->n_roots++] = real;
        }
        r = sd_event_add_io(m->event, &a->source, a->fd, EPOLLIN, audit_on_io, a);
        if (r < 0) {
                audit_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

Audit *audit_free(Audit *a) {
        if (!a)
                return NULL;
        sd_event_source_disable_unref(a->source);
        safe_close(a->fd);
        for (size_t i = 0; i < a->n_roots; i++)
                free(a->roots[i]);
        free(a);
        return NULL;
}
