/* SPDX-License-Identifier: MIT */
/* The front desk's one door: every request, from every front end, is
 * parsed into a Spec (spec.c), authorised on that Spec, and only then
 * started. Nothing a caller sends has any effect before the decision: no
 * interpreter is looked up, no pool started, no path touched, no row
 * written.
 *
 * The rule has three parts:
 *   1. The table below: which verbs each class of caller may ask for. Verbs
 *      that change files (compile, repair, clean) belong to the privileged
 *      caller alone, and so does collecting the failures of queued
 *      requests (`wait --failures`), which reads and clears what root
 *      queued. Read-only verbs are open to every local user of a root
 *      daemon, and run with that user's own filesystem identity, so they
 *      show nothing the user could not see. A daemon running as an ordinary
 *      user cannot take another user's identity, so it serves only its own
 *      user beyond status and wait.
 *   2. Interpreters: only the privileged may name an interpreter the daemon
 *      does not run yet. Anyone else may name only one that already has a
 *      pool or that the configuration lists — compared as the literal path,
 *      so that refusing costs not even a stat.
 *   3. Bounds: a caller who may not mutate has a number of concurrent
 *      requests; the privileged caller's capacity is separate and never
 *      taken by others. */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "connection.h"
#include "dispatch.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "request.h"

static const Access access_table[_VERB_MAX][_CALLER_CLASS_MAX] = {
        /*                 privileged       local user of a root daemon */
        [VERB_STATUS] = { ACCESS_ALLOWED, ACCESS_ALLOWED },
        [VERB_WAIT] = { ACCESS_ALLOWED, ACCESS_ALLOWED },
        [VERB_COMPILE] = { ACCESS_ALLOWED, ACCESS_DENIED },
        [VERB_REPAIR] = { ACCESS_ALLOWED, ACCESS_DENIED },
        [VERB_CLEAN] = { ACCESS_ALLOWED, ACCESS_DENIED },
        [VERB_WHY] = { ACCESS_ALLOWED, ACCESS_AS_CALLER },
        [VERB_HISTORY] = { ACCESS_ALLOWED, ACCESS_AS_CALLER },
        [VERB_VERIFY] = { ACCESS_ALLOWED, ACCESS_AS_CALLER },
        [VERB_AUDIT] = { ACCESS_ALLOWED, ACCESS_AS_CALLER },
        /* The failures of --no-wait requests are the privileged callers'
         * (dpkg's trigger): reading them shows what root compiled, and
         * reading clears them. */
        [VERB_COLLECT_FAILURES] = { ACCESS_ALLOWED, ACCESS_DENIED },
};

CallerClass dispatch_caller_class(uid_t uid) {
        /* Running as root we let root change files; running as an ordinary
         * user (tests, a user's own daemon), that user. */
        return uid == geteuid() ? CALLER_PRIVILEGED : CALLER_LOCAL;
}

Access dispatch_access(Verb verb, CallerClass class) {
        assert(verb >= 0 && verb < _VERB_MAX && class >= 0 && class < _CALLER_CLASS_MAX);
        if (class == CALLER_LOCAL && access_table[verb][class] == ACCESS_AS_CALLER && geteuid() != 0)
                /* Only root can take another user's filesystem identity. */
                return ACCESS_DENIED;
        return access_table[verb][class];
}

static const char *denial_message(Verb verb) {
        if (verb == VERB_COLLECT_FAILURES)
                return geteuid() == 0
                               ? "only root may collect the failures of queued requests"
                               : "only the daemon's own user may collect the failures of queued requests";
        if (verb_mutates(verb))
                return geteuid() == 0 ? "only root may change files through the system pycqueued"
                                      : "only the daemon's own user may change files through this pycqueued";
        return "only the daemon's own user may ask this pycqueued about files";
}

/* Rule 2: a caller who may not mutate names only interpreters that run
 * already or that the configuration lists. */
static int check_interpreters(Manager *m, CallerClass caller, const Spec *s, char **ret_message) {
        if (caller == CALLER_PRIVILEGED)
                return 0;
        for (size_t i = 0; i < s->n_pythons; i++)
                if (!manager_interpreter_known(m, s->pythons[i])) {
                        if (asprintf(ret_message,
                                     "interpreter %s: not one this pycqueued runs or is configured with; "
                                     "only root "
                                     "may name a new interpreter",
                                     s->pythons[i]) < 0)
                                *ret_message = NULL;
                        return -EPERM;
                }
        return 0;
}

/* Rule 3: concurrent requests of a caller who may not mutate. */
static int check_capacity(Manager *m, CallerClass caller, uid_t uid, const Spec *s, char **ret_message) {
        unsigned n;

        if (caller == CALLER_PRIVILEGED || s->verb == VERB_STATUS)
                return 0;
        n = manager_requests_of_uid(m, uid);
        if (n < m->config->max_requests_per_uid)
                return 0;
        if (asprintf(ret_message,
                     "too many requests of uid %u at once (max_requests_per_uid = %u); try again later",
                     (unsigned)uid, m->config->max_requests_per_uid) < 0)
                *ret_message = NULL;
        return -EUSERS;
}

int dispatch_authorize(Manager *m, CallerClass caller, uid_t uid, const Spec *s, char **ret_message) {
        int k;

        *ret_message = NULL;
        if (dispatch_access(s->verb, caller) == ACCESS_DENIED) {
                *ret_message = strdup(denial_message(s->verb));
                return -EPERM;
        }
        if (verb_mutates(s->verb) && m->stopping) {
                *ret_message = strdup("pycqueued is shutting down");
                return -ESHUTDOWN;
        }
        k = check_interpreters(m, caller, s, ret_message);
        if (k < 0)
                return k;
        return check_capacity(m, caller, uid, s, ret_message);
}

static void dispatch_status(Connection *c) {
        uint8_t *frame;
        size_t size;
        int r;

        r = manager_status_reply(c->manager, c->caller == CALLER_PRIVILEGED, &frame, &size);
        if (r < 0)
                connection_send_error(c, r, "cannot build the status reply");
        else
                connection_send(c, frame, size, false);
}

/* Starts the verb; @s is consumed, whatever happens. */
static int dispatch_start(Connection *c, const MsgReader *msg, Spec *s, char **ret_message) {
        Manager *m = c->manager;
        Request *r;
        int k;

        switch (s->verb) {
        case VERB_STATUS:
                spec_free(s);
                dispatch_status(c);
                return 0;
        case VERB_COMPILE:
                k = request_new_compile(m, c, s, msg, &r, ret_message);
                if (k < 0)
                        return k;
                request_start(r);
                return 0;
        case VERB_WAIT:
        case VERB_COLLECT_FAILURES:
                k = request_new_wait(m, c, s, &r);
                if (k < 0)
                        return k;
                request_start(r);
                return 0;
        default:
                return admin_start(m, c, s, ret_message);
        }
}

void dispatch_frame(Connection *c, const MsgReader *msg) {
        Manager *m = c->manager;
        _cleanup_free_ char *message = NULL;
        _cleanup_(spec_freep) Spec *s = NULL;
        int k;

        k = spec_parse(msg, &m->spec_limits, &s, &message);
        if (k < 0) {
                /* A frame that is not what any client sends (an unknown
                 * type, a field of the wrong size) ends the connection; a
                 * well-formed request that asks for something invalid gets
                 * its error and the connection stays. */
                if (k == -EBADMSG) {
                        log_debug("Client pid %d sent a malformed %s frame; closing", (int)c->pid,
                                  verb_to_string(verb_from_message_type(msg->type)));
                        connection_fail(c, k, message);
                } else
                        connection_send_error(c, k, message);
                return;
        }

        k = dispatch_authorize(m, c->caller, c->uid, s, &message);
        if (k < 0) {
                log_debug("Refused %s from uid %u pid %d: %s", verb_to_string(s->verb), (unsigned)c->uid,
                          (int)c->pid, strerror(-k));
                connection_send_error(c, k, message);
                return;
        }
        if (s->verb != VERB_STATUS && connection_busy(c)) {
                connection_send_error(c, -EBUSY, "a request is already running on this connection");
                return;
        }
        /* The Spec passes to the request, which frees it. */
        k = dispatch_start(c, msg, TAKE_PTR(s), &message);
        if (k < 0)
                connection_send_error(c, k, message);
}
