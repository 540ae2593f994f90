/* SPDX-License-Identifier: MIT */
/* The system bus front end: a libdbus-1 connection hosted on the
 * Manager's sd-event loop.
 *
 * The bus is optional. The daemon serves its socket whether or not a bus
 * runs (chroots, installers, early boot); without one it tries to connect
 * again on a timer, first after 250 ms and then less and less often, up to
 * every 5 s, which also covers a bus that is restarted: a lost connection
 * is dropped and the same timer reconnects and takes the name again. A
 * timer rather than an inotify watch on the socket's directory, because
 * the address may be any address libdbus takes, and because the directory
 * itself (/run/dbus) is often absent where no bus runs.
 *
 * Nothing here blocks the loop on the bus. libdbus's watches and timeouts
 * become sd-event sources, and dispatching runs from a defer source a few
 * messages at a time. Hello, RequestName, GetConnectionCredentials and
 * polkit's CheckAuthorization are sent with pending-call notifications,
 * never with the blocking helpers (dbus_bus_register(), dbus_bus_get(),
 * ..._send_with_reply_and_block()). The one wait is the connect(2) to a
 * local socket in dbus_connection_open_private(), and the flush of
 * ReleaseName when the daemon stops.
 *
 * Every method call goes the same way: the signature is checked, the
 * caller's uid, pid and supplementary groups are asked from the bus
 * (GetConnectionCredentials: the sender cannot lie about them), a mutating call from a caller who is
 * not privileged asks polkit, and only then does the handler build its
 * request and pass it through dispatch_authorize(), the socket's door. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-private.h"
#include "dispatch.h"
#include "list.h"
#include "log.h"
#include "manager.h"

#define BUS_RETRY_MIN_USEC (250 * 1000ULL)
#define BUS_RETRY_MAX_USEC (5 * 1000000ULL)
#define BUS_DISPATCH_BATCH 32
/* Calls waiting for the bus or polkit at once: more are refused. */
#define BUS_MAX_CALLS 256u
#define BUS_CALL_TIMEOUT_MSEC (25 * 1000)
/* An interactive polkit check waits for a person to type a password. */
#define BUS_POLKIT_INTERACTIVE_TIMEOUT_MSEC (5 * 60 * 1000)

/* The system bus where $DBUS_SYSTEM_BUS_ADDRESS does not say otherwise. */
#define BUS_DEFAULT_ADDRESS "unix:path=/run/dbus/system_bus_socket"
#define DBUS_SERVICE "org.freedesktop.DBus"
#define DBUS_OBJECT "/org/freedesktop/DBus"
#define POLKIT_SERVICE "org.freedesktop.PolicyKit1"
#define POLKIT_OBJECT "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"

typedef struct BusWatch {
        Bus *bus;
        DBusWatch *watch;
        sd_event_source *source;
} BusWatch;

typedef struct BusTimeout {
        Bus *bus;
        DBusTimeout *timeout;
        sd_event_source *source;
} BusTimeout;

static void bus_schedule_retry(Bus *b, uint64_t usec);
static void bus_disconnect(Bus *b);

/* --- the loop ----------------------------------------------------------- */

static uint32_t watch_events(DBusWatch *w) {
        unsigned flags = dbus_watch_get_flags(w);

        return (flags & DBUS_WATCH_READABLE ? EPOLLIN : 0) | (flags & DBUS_WATCH_WRITABLE ? EPOLLOUT : 0);
}

static void bus_schedule_dispatch(Bus *b) {
        if (b->dispatch_source)
                (void)sd_event_source_set_enabled(b->dispatch_source, SD_EVENT_ONESHOT);
}

static int bus_on_watch(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BusWatch *bw = userdata;
        Bus *b = bw->bus; /* @bw may go inside dbus_watch_handle() */
        unsigned flags = (revents & EPOLLIN ? DBUS_WATCH_READABLE : 0) |
                         (revents & EPOLLOUT ? DBUS_WATCH_WRITABLE : 0) |
                         (revents & EPOLLHUP ? DBUS_WATCH_HANGUP : 0) |
                         (revents & EPOLLERR ? DBUS_WATCH_ERROR : 0);

        (void)dbus_watch_handle(bw->watch, flags);
        if (b->conn && dbus_connection_get_dispatch_status(b->conn) == DBUS_DISPATCH_DATA_REMAINS)
                bus_schedule_dispatch(b);
        return 0;
}

/* libdbus may watch one socket twice (reading, writing) while epoll takes
 * a file description once per descriptor: each watch gets a dup of its own. */
static dbus_bool_t bus_add_watch(DBusWatch *w, void *data) {
        Bus *b = data;
        BusWatch *bw = calloc(1, sizeof(*bw));
        int fd;

        if (!bw)
                return FALSE;
        fd = fcntl(dbus_watch_get_unix_fd(w), F_DUPFD_CLOEXEC, 3);
        if (fd < 0 ||
            sd_event_add_io(b->manager->event, &bw->source, fd, watch_events(w), bus_on_watch, bw) < 0) {
                if (fd >= 0)
                        close(fd);
                free(bw);
                return FALSE;
        }
        (void)sd_event_source_set_io_fd_own(bw->source, true);
        (void)sd_event_source_set_enabled(bw->source,
                                          dbus_watch_get_enabled(w) ? SD_EVENT_ON : SD_EVENT_OFF);
        bw->bus = b;
        bw->watch = w;
        dbus_watch_set_data(w, bw, NULL);
        return TRUE;
}

static void bus_remove_watch(DBusWatch *w, void *data) {
        BusWatch *bw = dbus_watch_get_data(w);

        if (!bw)
                return;
        sd_event_source_disable_unref(bw->source);
        dbus_watch_set_data(w, NULL, NULL);
        free(bw);
}

static void bus_toggle_watch(DBusWatch *w, void *data) {
        BusWatch *bw = dbus_watch_get_data(w);

        if (!bw)
                return;
        (void)sd_event_source_set_io_events(bw->source, watch_events(w));
        (void)sd_event_source_set_enabled(bw->source,
                                          dbus_watch_get_enabled(w) ? SD_EVENT_ON : SD_EVENT_OFF);
}

static int bus_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        BusTimeout *bt = userdata;
        Bus *b = bt->bus;

        /* A libdbus timeout repeats while enabled; re-armed first, since
         * handling it may remove it. */
        (void)sd_event_source_set_time_relative(s, (uint64_t)dbus_timeout_get_interval(bt->timeout) * 1000u);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        (void)dbus_timeout_handle(bt->timeout);
        if (b->conn && dbus_connection_get_dispatch_status(b->conn) == DBUS_DISPATCH_DATA_REMAINS)
                bus_schedule_dispatch(b);
        return 0;
}

static void bus_arm_timeout(BusTimeout *bt) {
        if (!dbus_timeout_get_enabled(bt->timeout)) {
                (void)sd_event_source_set_enabled(bt->source, SD_EVENT_OFF);
                return;
        }
        (void)sd_event_source_set_time_relative(bt->source,
                                                (uint64_t)dbus_timeout_get_interval(bt->timeout) * 1000u);
        (void)sd_event_source_set_enabled(bt->source, SD_EVENT_ONESHOT);
}

static dbus_bool_t bus_add_timeout(DBusTimeout *t, void *data) {
        Bus *b = data;
        BusTimeout *bt = calloc(1, sizeof(*bt));

        if (!bt)
                return FALSE;
        if (sd_event_add_time_relative(b->manager->event, &bt->source, CLOCK_MONOTONIC,
                                       (uint64_t)dbus_timeout_get_interval(t) * 1000u, 1000, bus_on_timeout,
                                       bt) < 0) {
                free(bt);
                return FALSE;
        }
        bt->bus = b;
        bt->timeout = t;
        dbus_timeout_set_data(t, bt, NULL);
        bus_arm_timeout(bt);
        return TRUE;
}

static void bus_remove_timeout(DBusTimeout *t, void *data) {
        BusTimeout *bt = dbus_timeout_get_data(t);

        if (!bt)
                return;
        sd_event_source_disable_unref(bt->source);
        dbus_timeout_set_data(t, NULL, NULL);
        free(bt);
}

static void bus_toggle_timeout(DBusTimeout *t, void *data) {
        BusTimeout *bt = dbus_timeout_get_data(t);

        if (bt)
                bus_arm_timeout(bt);
}

static void bus_on_dispatch_status(DBusConnection *c, DBusDispatchStatus status, void *data) {
        if (status == DBUS_DISPATCH_DATA_REMAINS)
                bus_schedule_dispatch(data);
}

/* A few messages per iteration: a busy bus does not starve the workers. */
static int bus_on_dispatch(sd_event_source *s, void *userdata) {
        Bus *b = userdata;
        DBusConnection *c = b->conn;

        if (!c)
                return 0;
        dbus_connection_ref(c);
        for (unsigned i = 0; i < BUS_DISPATCH_BATCH; i++)
                if (dbus_connection_dispatch(c) != DBUS_DISPATCH_DATA_REMAINS)
                        break;
        if (b->conn == c && dbus_connection_get_dispatch_status(c) == DBUS_DISPATCH_DATA_REMAINS)
                bus_schedule_dispatch(b);
        dbus_connection_unref(c);
        return 0;
}

/* --- replies ------------------------------------------------------------ */

void bus_send(Bus *b, DBusMessage *m) {
        if (b->conn && m)
                (void)dbus_connection_send(b->conn, m, NULL);
}

void bus_call_reply(BusCall *call, DBusMessage *reply) {
        if (!reply)
                reply = dbus_message_new_error(call->message, DBUS_ERROR_NO_MEMORY, "out of memory");
        if (reply && dbus_connection_get_is_connected(call->conn))
                (void)dbus_connection_send(call->conn, reply, NULL);
        if (reply)
                dbus_message_unref(reply);
}

void bus_call_return_error(BusCall *call, int error, const char *message) {
        bus_call_reply(call, bus_error_reply(call->message, error, message));
}

void bus_call_hold(BusCall *call) {
        LIST_PREPEND(call->bus->held, call);
        call->held = true;
}

void bus_call_release(BusCall *call) {
        if (!call->held)
                return;
        LIST_REMOVE(call->bus->held, call);
        call->held = false;
}

bool bus_call_unlink(BusCall *call) {
        if (!call->linked)
                return false;
        LIST_REMOVE(call->bus->calls, call);
        call->bus->n_calls--;
        call->linked = false;
        return true;
}

void bus_call_free(BusCall *call) {
        if (!call)
                return;
        (void)bus_call_unlink(call);
        bus_call_release(call);
        if (call->pending) {
                dbus_pending_call_cancel(call->pending);
                dbus_pending_call_unref(call->pending);
        }
        dbus_message_unref(call->message);
        dbus_connection_unref(call->conn);
        free(call->groups);
        free(call);
}

/* --- the steps of a call ----------------------------------------------------- */

static void bus_call_run(BusCall *call) {
        /* From here the handler owns the call: it answers and frees it, now
         * or once its work is done. */
        (void)bus_call_unlink(call);
        call->method->handler(call);
}

static DBusMessage *bus_take_reply(BusCall *call) {
        DBusMessage *reply = dbus_pending_call_steal_reply(call->pending);

        dbus_pending_call_unref(call->pending);
        call->pending = NULL;
        return reply;
}

static void bus_on_polkit(DBusPendingCall *pending, void *userdata) {
        BusCall *call = userdata;
        DBusMessage *reply = bus_take_reply(call);
        DBusMessageIter it, st;
        dbus_bool_t authorized = FALSE;

        if (reply && dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_METHOD_RETURN &&
            dbus_message_iter_init(reply, &it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_STRUCT) {
                dbus_message_iter_recurse(&it, &st);
                if (dbus_message_iter_get_arg_type(&st) == DBUS_TYPE_BOOLEAN)
                        dbus_message_iter_get_basic(&st, &authorized);
        }
        if (!authorized) {
                /* No polkit on the bus, an error, or a refusal: all deny. */
                log_debug("polkit did not authorise %s for uid %u%s%s", call->method->polkit_action,
                          (unsigned)call->uid, reply && dbus_message_get_error_name(reply) ? ": " : "",
                          reply && dbus_message_get_error_name(reply) ? dbus_message_get_error_name(reply)
                                                                      : "");
                bus_call_return_error(call, -EPERM,
                                      "not authorised: this needs root, or an administrator's consent "
                                      "through polkit");
                bus_call_free(call);
        } else {
                call->caller = CALLER_PRIVILEGED;
                call->via_polkit = true;
                bus_call_run(call);
        }
        if (reply)
                dbus_message_unref(reply);
}

/* CheckAuthorization((sa{sv}) subject, s action, a{ss} details, u flags,
 * s cancellation_id): the subject is the caller's unique name, which
 * polkit resolves itself, so no pid can be raced. */
static int bus_check_polkit(BusCall *call) {
        Bus *b = call->bus;
        DBusMessage *m;
        DBusMessageIter it, st, dict, entry, variant, details;
        const char *kind = "system-bus-name", *key = "name",
                   *sender = dbus_message_get_sender(call->message);
        const char *cancel = "";
        bool interactive = dbus_message_get_allow_interactive_authorization(call->message);
        uint32_t flags = interactive ? 1 : 0;
        bool ok;

        m = dbus_message_new_method_call(POLKIT_SERVICE, POLKIT_OBJECT, POLKIT_INTERFACE,
                                         "CheckAuthorization");
        if (!m)
                return -ENOMEM;
        dbus_message_iter_init_append(m, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_STRUCT, NULL, &st) &&
             dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &kind) &&
             dbus_message_iter_open_container(&st, DBUS_TYPE_ARRAY, "{sv}", &dict) &&
             dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
             dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
             dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &variant) &&
             dbus_message_iter_append_basic(&variant, DBUS_TYPE_STRING, &sender) &&
             dbus_message_iter_close_container(&entry, &variant) &&
             dbus_message_iter_close_container(&dict, &entry) &&
             dbus_message_iter_close_container(&st, &dict) && dbus_message_iter_close_container(&it, &st) &&
             dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &call->method->polkit_action) &&
             dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{ss}", &details) &&
             dbus_message_iter_close_container(&it, &details) &&
             dbus_message_iter_append_basic(&it, DBUS_TYPE_UINT32, &flags) &&
             dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &cancel);
        if (ok && interactive)
                dbus_message_set_allow_interactive_authorization(m, TRUE);
        ok = ok &&
             dbus_connection_send_with_reply(b->conn, m, &call->pending,
                                             interactive ? BUS_POLKIT_INTERACTIVE_TIMEOUT_MSEC
                                                         : BUS_CALL_TIMEOUT_MSEC) &&
             call->pending && dbus_pending_call_set_notify(call->pending, bus_on_polkit, call, NULL);
        dbus_message_unref(m);
        return ok ? 0 : -ENOMEM;
}

/* The caller's supplementary groups (au), for the filesystem identity of
 * its read-only requests. More than a FsId holds are kept as too many:
 * bus-admin.c then gives it none. */
static void bus_call_take_groups(BusCall *call, DBusMessageIter *variant) {
        DBusMessageIter a;
        const uint32_t *v = NULL;
        int n = 0;

        if (dbus_message_iter_get_arg_type(variant) != DBUS_TYPE_ARRAY ||
            dbus_message_iter_get_element_type(variant) != DBUS_TYPE_UINT32)
                return;
        dbus_message_iter_recurse(variant, &a);
        dbus_message_iter_get_fixed_array(&a, &v, &n);
        free(call->groups);
        call->groups = NULL;
        call->n_groups = n > 0 ? (size_t)n : 0;
        call->have_groups = true;
        if (call->n_groups > FSID_MAX_GROUPS)
                return;
        if (call->n_groups > 0) {
                call->groups = calloc(call->n_groups, sizeof(gid_t));
                if (!call->groups) {
                        /* Without them, no group at all: fewer rights. */
                        call->n_groups = 0;
                        return;
                }
                for (size_t i = 0; i < call->n_groups; i++)
                        call->groups[i] = (gid_t)v[i];
        }
}

static void bus_on_credentials(DBusPendingCall *pending, void *userdata) {
        BusCall *call = userdata;
        DBusMessage *reply = bus_take_reply(call);
        DBusMessageIter it, dict, entry, variant;
        bool have_uid = false;
        int r;

        if (reply && dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_METHOD_RETURN &&
            dbus_message_iter_init(reply, &it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_ARRAY) {
                for (dbus_message_iter_recurse(&it, &dict);
                     dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
                     dbus_message_iter_next(&dict)) {
                        const char *key;
                        uint32_t v;

                        dbus_message_iter_recurse(&dict, &entry);
                        if (dbus_message_iter_get_arg_type(&entry) != DBUS_TYPE_STRING)
                                continue;
                        dbus_message_iter_get_basic(&entry, &key);
                        dbus_message_iter_next(&entry);
                        dbus_message_iter_recurse(&entry, &variant);
                        if (strcmp(key, "UnixGroupIDs") == 0) {
                                bus_call_take_groups(call, &variant);
                                continue;
                        }
                        if (dbus_message_iter_get_arg_type(&variant) != DBUS_TYPE_UINT32)
                                continue;
                        dbus_message_iter_get_basic(&variant, &v);
                        if (strcmp(key, "UnixUserID") == 0) {
                                call->uid = (uid_t)v;
                                have_uid = true;
                        } else if (strcmp(key, "ProcessID") == 0)
                                call->pid = (pid_t)v;
                }
        }
        if (reply)
                dbus_message_unref(reply);
        if (!have_uid) {
                bus_call_return_error(call, -EPERM, "the bus did not say who the caller is");
                bus_call_free(call);
                return;
        }
        call->caller = dispatch_caller_class(call->uid);
        if (call->method->polkit_action && call->caller != CALLER_PRIVILEGED) {
                r = bus_check_polkit(call);
                if (r < 0) {
                        bus_call_return_error(call, r, NULL);
                        bus_call_free(call);
                }
                return;
        }
        bus_call_run(call);
}

/* Starts a call of @method: asks the bus who the caller is. */
static DBusHandlerResult bus_start_call(Bus *b, DBusConnection *c, DBusMessage *m, const BusMethod *method,
                                        uint64_t object) {
        _cleanup_free_ BusCall *call = NULL;
        const char *sender = dbus_message_get_sender(m);
        DBusMessage *q;
        DBusMessage *reply;
        bool ok;

        if (!dbus_message_has_signature(m, method->signature)) {
                reply = bus_error_reply(m, -EINVAL, "wrong arguments for this method");
                if (reply) {
                        (void)dbus_connection_send(c, reply, NULL);
                        dbus_message_unref(reply);
                }
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (!sender || b->n_calls >= BUS_MAX_CALLS) {
                reply = dbus_message_new_error(m, DBUS_ERROR_LIMITS_EXCEEDED,
                                               "too many calls at once; try again later");
                if (reply) {
                        (void)dbus_connection_send(c, reply, NULL);
                        dbus_message_unref(reply);
                }
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        call = calloc(1, sizeof(*call));
        if (!call)
                return DBUS_HANDLER_RESULT_NEED_MEMORY;
        q = dbus_message_new_method_call(DBUS_SERVICE, DBUS_OBJECT, DBUS_SERVICE,
                                         "GetConnectionCredentials");
        if (!q)
                return DBUS_HANDLER_RESULT_NEED_MEMORY;
        ok = dbus_message_append_args(q, DBUS_TYPE_STRING, &sender, DBUS_TYPE_INVALID) &&
             dbus_connection_send_with_reply(c, q, &call->pending, BUS_CALL_TIMEOUT_MSEC) && call->pending;
        dbus_message_unref(q);
        if (!ok)
                return DBUS_HANDLER_RESULT_NEED_MEMORY;
        call->bus = b;
        call->conn = dbus_connection_ref(c);
        call->message = dbus_message_ref(m);
        call->method = method;
        call->object = object;
        call->uid = (uid_t)-1;
        if (!dbus_pending_call_set_notify(call->pending, bus_on_credentials, call, NULL)) {
                bus_call_free(TAKE_PTR(call));
                return DBUS_HANDLER_RESULT_NEED_MEMORY;
        }
        LIST_PREPEND(b->calls, call);
        b->n_calls++;
        call->linked = true;
        TAKE_PTR(call);
        return DBUS_HANDLER_RESULT_HANDLED;
}

static const BusMethod *bus_find_method(const BusMethod *table, DBusMessage *m) {
        for (const BusMethod *x = table; x->member; x++)
                if (dbus_message_is_method_call(m, x->interface, x->member))
                        return x;
        return NULL;
}

DBusHandlerResult bus_call_method(Bus *b, DBusConnection *c, DBusMessage *m, const BusMethod *table,
                                  uint64_t object) {
        const BusMethod *method = bus_find_method(table, m);

        if (!method)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        return bus_start_call(b, c, m, method, object);
}

/* --- objects ------------------------------------------------------------- */

static DBusHandlerResult bus_on_object(DBusConnection *c, DBusMessage *m, void *userdata) {
        Bus *b = userdata;
        const char *path = dbus_message_get_path(m);

        if (!path)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        if (strcmp(path, BUS_PATH) == 0 || strcmp(path, BUS_PATH "/request") == 0)
                return bus_manager_message(b, c, m);
        if (strncmp(path, BUS_REQUEST_PATH_PREFIX, strlen(BUS_REQUEST_PATH_PREFIX)) == 0)
                return bus_request_message(b, c, m);
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

static const DBusObjectPathVTable bus_vtable = {
        .message_function = bus_on_object,
};

/* --- the connection and the name ------------------------------------------------ */

static void bus_request_name(Bus *b);

static void bus_on_name_reply(DBusPendingCall *pending, void *userdata) {
        DBusMessage *reply = dbus_pending_call_steal_reply(pending);
        DBusError error = DBUS_ERROR_INIT;
        uint32_t result = 0;

        dbus_pending_call_unref(pending);
        if (!reply)
                return;
        if (dbus_set_error_from_message(&error, reply)) {
                log_warning("Cannot own %s on the system bus: %s", BUS_NAME, error.message);
                dbus_error_free(&error);
        } else if (dbus_message_get_args(reply, NULL, DBUS_TYPE_UINT32, &result, DBUS_TYPE_INVALID)) {
                if (result == DBUS_REQUEST_NAME_REPLY_IN_QUEUE)
                        log_notice("%s is owned by another process on the system bus; "
                                   "waiting for it to give it up",
                                   BUS_NAME);
                /* Owning is reported by NameAcquired. */
        }
        dbus_message_unref(reply);
}

static void bus_request_name(Bus *b) {
        const char *name = BUS_NAME;
        uint32_t flags = 0; /* queued behind another owner, never replacing it */
        DBusPendingCall *pending = NULL;
        DBusMessage *m;

        if (b->releasing || !b->conn)
                return;
        m = dbus_message_new_method_call(DBUS_SERVICE, DBUS_OBJECT, DBUS_SERVICE, "RequestName");
        if (!m)
                return;
        if (dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_UINT32, &flags,
                                     DBUS_TYPE_INVALID) &&
            dbus_connection_send_with_reply(b->conn, m, &pending, BUS_CALL_TIMEOUT_MSEC) && pending &&
            !dbus_pending_call_set_notify(pending, bus_on_name_reply, NULL, NULL)) {
                dbus_pending_call_cancel(pending);
                dbus_pending_call_unref(pending);
        }
        dbus_message_unref(m);
}

/* Signals the daemon needs: subscribers that leave the bus. */
static void bus_add_match(Bus *b) {
        const char *rule = "type='signal',sender='" DBUS_SERVICE "',interface='" DBUS_SERVICE
                           "',member='NameOwnerChanged'";
        DBusMessage *m = dbus_message_new_method_call(DBUS_SERVICE, DBUS_OBJECT, DBUS_SERVICE, "AddMatch");

        if (!m)
                return;
        dbus_message_set_no_reply(m, TRUE);
        if (dbus_message_append_args(m, DBUS_TYPE_STRING, &rule, DBUS_TYPE_INVALID))
                bus_send(b, m);
        dbus_message_unref(m);
}

static void bus_on_hello(DBusPendingCall *pending, void *userdata) {
        Bus *b = userdata;
        DBusMessage *reply = dbus_pending_call_steal_reply(pending);
        const char *unique = NULL;

        dbus_pending_call_unref(pending);
        if (!reply)
                return;
        if (b->conn && dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &unique, DBUS_TYPE_INVALID) &&
            dbus_bus_set_unique_name(b->conn, unique)) {
                b->connected = true;
                b->retry_usec = 0;
                log_info("Connected to the system bus as %s", unique);
                bus_add_match(b);
                bus_request_name(b);
        } else
                log_warning("The system bus did not answer Hello; trying again later");
        dbus_message_unref(reply);
}

static DBusHandlerResult bus_on_filter(DBusConnection *c, DBusMessage *m, void *userdata) {
        Bus *b = userdata;
        const char *name = NULL, *old = NULL, *new = NULL;

        if (dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected")) {
                if (b->conn == c) {
                        log_notice("Lost the system bus; connecting again when it is back");
                        b->connected = false;
                        b->name_owned = false;
                        /* Not freed from inside its own dispatch. */
                        bus_schedule_retry(b, 0);
                }
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (!dbus_message_has_sender(m, DBUS_SERVICE))
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        if (dbus_message_is_signal(m, DBUS_SERVICE, "NameAcquired") &&
            dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID) &&
            strcmp(name, BUS_NAME) == 0) {
                if (!b->name_owned)
                        log_info("Owning %s on the system bus", BUS_NAME);
                b->name_owned = true;
        } else if (dbus_message_is_signal(m, DBUS_SERVICE, "NameLost") &&
                   dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID) &&
                   strcmp(name, BUS_NAME) == 0) {
                b->name_owned = false;
                if (!b->releasing)
                        log_notice("Lost %s on the system bus", BUS_NAME);
        } else if (dbus_message_is_signal(m, DBUS_SERVICE, "NameOwnerChanged") &&
                   dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &old,
                                         DBUS_TYPE_STRING, &new, DBUS_TYPE_INVALID) &&
                   name[0] == ':' && new[0] == '\0')
                bus_subscriber_gone(b, name);
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

/* Drops the connection, and what waits on it. Calls being served by the
 * manager (a Wait) keep their own reference; their replies go nowhere. */
static void bus_disconnect(Bus *b) {
        DBusConnection *c = b->conn;

        if (!c)
                return;
        for (BusCall *call = b->calls, *next; call; call = next) {
                next = call->next;
                bus_call_free(call);
        }
        b->conn = NULL;
        b->connected = false;
        b->name_owned = false;
        for (size_t i = 0; i < b->n_subscribers; i++)
                free(b->subscribers[i]);
        b->n_subscribers = 0;
        dbus_connection_remove_filter(c, bus_on_filter, b);
        (void)dbus_connection_unregister_object_path(c, BUS_PATH);
        dbus_connection_close(c);
        /* Sources go with their watches; libdbus may still call back while
         * the last reference goes, but finds no Bus to use. */
        (void)dbus_connection_set_watch_functions(c, NULL, NULL, NULL, NULL, NULL);
        (void)dbus_connection_set_timeout_functions(c, NULL, NULL, NULL, NULL, NULL);
        dbus_connection_set_dispatch_status_function(c, NULL, NULL, NULL);
        dbus_connection_unref(c);
}

static int bus_connect(Bus *b) {
        DBusError error = DBUS_ERROR_INIT;
        DBusConnection *c;
        DBusMessage *hello;
        DBusPendingCall *pending = NULL;
        bool ok;

        c = dbus_connection_open_private(b->address, &error);
        if (!c) {
                log_debug("No system bus at %s: %s", b->address, error.message);
                dbus_error_free(&error);
                return -ENOTCONN;
        }
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        b->conn = c;
        ok = dbus_connection_set_watch_functions(c, bus_add_watch, bus_remove_watch, bus_toggle_watch, b,
                                                 NULL) &&
             dbus_connection_set_timeout_functions(c, bus_add_timeout, bus_remove_timeout,
                                                   bus_toggle_timeout, b, NULL) &&
             dbus_connection_add_filter(c, bus_on_filter, b, NULL) &&
             dbus_connection_register_fallback(c, BUS_PATH, &bus_vtable, b);
        dbus_connection_set_dispatch_status_function(c, bus_on_dispatch_status, b, NULL);
        hello = ok ? dbus_message_new_method_call(DBUS_SERVICE, DBUS_OBJECT, DBUS_SERVICE, "Hello") : NULL;
        ok = hello && dbus_connection_send_with_reply(c, hello, &pending, BUS_CALL_TIMEOUT_MSEC) &&
             pending && dbus_pending_call_set_notify(pending, bus_on_hello, b, NULL);
        if (hello)
                dbus_message_unref(hello);
        if (!ok) {
                if (pending) {
                        dbus_pending_call_cancel(pending);
                        dbus_pending_call_unref(pending);
                }
                bus_disconnect(b);
                return -ENOMEM;
        }
        return 0;
}

static int bus_on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Bus *b = userdata;

        /* A connection that is gone (or never said Hello) is dropped first. */
        if (b->conn && !dbus_connection_get_is_connected(b->conn))
                bus_disconnect(b);
        if (b->conn)
                return 0;
        if (bus_connect(b) >= 0)
                return 0;
        b->retry_usec = b->retry_usec ? MIN(b->retry_usec * 2, BUS_RETRY_MAX_USEC) : BUS_RETRY_MIN_USEC;
        bus_schedule_retry(b, b->retry_usec);
        return 0;
}

static void bus_schedule_retry(Bus *b, uint64_t usec) {
        (void)sd_event_source_set_time_relative(b->retry_source, usec);
        (void)sd_event_source_set_enabled(b->retry_source, SD_EVENT_ONESHOT);
}

int bus_new(Manager *m, Bus **ret) {
        const char *address = getenv("DBUS_SYSTEM_BUS_ADDRESS");
        Bus *b = calloc(1, sizeof(*b));
        int r;

        if (!b)
                return -ENOMEM;
        b->manager = m;
        b->next_request = 1;
        b->address = strdup(address && *address ? address : BUS_DEFAULT_ADDRESS);
        if (!b->address) {
                free(b);
                return -ENOMEM;
        }
        r = sd_event_add_defer(m->event, &b->dispatch_source, bus_on_dispatch, b);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->dispatch_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &b->retry_source, CLOCK_MONOTONIC, 0, 1000,
                                               bus_on_retry, b);
        if (r < 0) {
                bus_free(b);
                return r;
        }
        /* The first attempt runs from the loop, right away. */
        bus_schedule_retry(b, 0);
        *ret = b;
        return 0;
}

Bus *bus_free(Bus *b) {
        if (!b)
                return NULL;
        bus_requests_free(b);
        while (b->held)
                bus_call_free(b->held);
        bus_disconnect(b);
        for (size_t i = 0; i < b->n_subscribers; i++)
                free(b->subscribers[i]);
        free(b->subscribers);
        free(b->last_props);
        sd_event_source_disable_unref(b->dispatch_source);
        sd_event_source_disable_unref(b->retry_source);
        sd_event_source_disable_unref(b->props_source);
        free(b->address);
        free(b);
        return NULL;
}

void bus_release_name(Bus *b) {
        const char *name = BUS_NAME;
        DBusMessage *m;

        if (!b || b->releasing)
                return;
        b->releasing = true;
        if (!b->conn || !b->connected)
                return;
        m = dbus_message_new_method_call(DBUS_SERVICE, DBUS_OBJECT, DBUS_SERVICE, "ReleaseName");
        if (!m)
                return;
        dbus_message_set_no_reply(m, TRUE);
        if (dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID)) {
                bus_send(b, m);
                /* Out before the listener closes: a caller that finds the
                 * name free activates a new daemon instead of calling one
                 * that no longer takes work. A local write, bounded. */
                dbus_connection_flush(b->conn);
        }
        dbus_message_unref(m);
        b->name_owned = false;
}
