/* SPDX-License-Identifier: MIT */
/* The system bus as `status --watch`'s wake-up source.
 *
 * The daemon emits PropertiesChanged on its Manager object whenever the
 * queue, the workers, the totals or the health change, at most every
 * 100 ms. The watch subscribes to that signal, and to NameOwnerChanged for
 * the daemon's bus name (the daemon starting or stopping is a change too),
 * and redraws when one arrives. The bus only says *that* something
 * changed: the block is still read from the socket (status.c), so that
 * what is drawn is the same with a bus and without one.
 *
 * A private connection, with every blocking call bounded: Hello and the two
 * AddMatch calls wait STATUS_BUS_CALL_TIMEOUT_MSEC each, so a wedged bus
 * delays the watch's start by seconds, not by libdbus's 25 s default.
 * libdbus must neither exit the process when the bus goes away nor change
 * its SIGPIPE disposition (output into a closed pipe must still end the
 * watch). The client never puts a string of its own into a message: the
 * match rules and names are constants, and what comes in was validated by
 * libdbus on receipt, so nothing here can meet libdbus's abort on invalid
 * UTF-8.
 *
 * libdbus is loaded with dlopen() when a watch first asks for the bus, not
 * linked: linking it (and what it pulls in: libsystemd, libgcrypt, ...)
 * cost every run of the client — every py3compile of every postinst —
 * several milliseconds of dynamic loading for the one verb that uses it.
 * Without the library the watch polls, as it does without a bus. */

#include <dbus/dbus.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status-bus.h"
#include "util.h"

#define STATUS_BUS_CALL_TIMEOUT_MSEC 2000
#define STATUS_BUS_DEFAULT_ADDRESS "unix:path=/run/dbus/system_bus_socket"

#define PYCQUEUE_BUS_NAME "org.pycqueue.PyCQueue1"
#define PYCQUEUE_BUS_PATH "/org/pycqueue/PyCQueue1"
#define PYCQUEUE_MANAGER_INTERFACE "org.pycqueue.PyCQueue1.Manager"

static const char *const match_rules[] = {
        "type='signal',sender='" PYCQUEUE_BUS_NAME "',path='" PYCQUEUE_BUS_PATH "',"
        "interface='" DBUS_INTERFACE_PROPERTIES "',member='PropertiesChanged',"
        "arg0='" PYCQUEUE_MANAGER_INTERFACE "'",
        "type='signal',sender='" DBUS_SERVICE_DBUS "',path='" DBUS_PATH_DBUS "',"
        "interface='" DBUS_INTERFACE_DBUS "',member='NameOwnerChanged',arg0='" PYCQUEUE_BUS_NAME "'",
};

/* The libdbus functions used here, resolved once from the library. */
#define STATUS_BUS_FUNCTIONS(X)                                                                             \
        X(DBusConnection *, dbus_connection_open_private, (const char *, DBusError *))                      \
        X(void, dbus_connection_close, (DBusConnection *))                                                  \
        X(void, dbus_connection_unref, (DBusConnection *))                                                  \
        X(void, dbus_connection_set_exit_on_disconnect, (DBusConnection *, dbus_bool_t))                    \
        X(void, dbus_connection_set_change_sigpipe, (dbus_bool_t))                                          \
        X(DBusMessage *, dbus_connection_send_with_reply_and_block,                                         \
          (DBusConnection *, DBusMessage *, int, DBusError *))                                              \
        X(dbus_bool_t, dbus_connection_read_write, (DBusConnection *, int))                                 \
        X(DBusMessage *, dbus_connection_pop_message, (DBusConnection *))                                   \
        X(void, dbus_error_init, (DBusError *))                                                             \
        X(void, dbus_error_free, (DBusError *))                                                             \
        X(dbus_bool_t, dbus_error_has_name, (const DBusError *, const char *))                              \
        X(DBusMessage *, dbus_message_new_method_call,                                                      \
          (const char *, const char *, const char *, const char *))                                         \
        X(dbus_bool_t, dbus_message_append_args, (DBusMessage *, int, ...))                                 \
        X(dbus_bool_t, dbus_message_get_args, (DBusMessage *, DBusError *, int, ...))                       \
        X(void, dbus_message_unref, (DBusMessage *))                                                        \
        X(dbus_bool_t, dbus_message_is_signal, (DBusMessage *, const char *, const char *))                 \
        X(dbus_bool_t, dbus_message_has_path, (DBusMessage *, const char *))                                \
        X(dbus_bool_t, dbus_message_has_sender, (DBusMessage *, const char *))

#define STATUS_BUS_POINTER(ret, name, args) ret(*name) args;
static struct { STATUS_BUS_FUNCTIONS(STATUS_BUS_POINTER) } libdbus;
#undef STATUS_BUS_POINTER

static int load_libdbus(void) {
        static int loaded = 0; /* 1 loaded, negative errno failed */
        void *h;

        if (loaded != 0)
                return loaded;
        h = dlopen("libdbus-1.so.3", RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return (loaded = -ENOPKG);
#define STATUS_BUS_RESOLVE(ret, name, args)                                                                 \
        if (!(*(void **)&libdbus.name = dlsym(h, #name))) {                                                 \
                dlclose(h);                                                                                 \
                return (loaded = -ENOPKG);                                                                  \
        }
        STATUS_BUS_FUNCTIONS(STATUS_BUS_RESOLVE)
#undef STATUS_BUS_RESOLVE
        return (loaded = 1);
}

struct StatusBus {
        DBusConnection *connection;
};

StatusBus *status_bus_free(StatusBus *b) {
        if (!b)
                return NULL;
        if (b->connection) {
                libdbus.dbus_connection_close(b->connection);
                libdbus.dbus_connection_unref(b->connection);
        }
        free(b);
        return NULL;
}

/* Sends @m and waits for its reply, a bounded time. The message is not
 * consumed. */
static int call_bounded(DBusConnection *c, DBusMessage *m) {
        DBusMessage *reply;
        DBusError error;
        int r = 0;

        libdbus.dbus_error_init(&error);
        reply = libdbus.dbus_connection_send_with_reply_and_block(c, m, STATUS_BUS_CALL_TIMEOUT_MSEC,
                                                                  &error);
        if (!reply) {
                if (libdbus.dbus_error_has_name(&error, DBUS_ERROR_NO_MEMORY))
                        r = -ENOMEM;
                else if (libdbus.dbus_error_has_name(&error, DBUS_ERROR_NO_REPLY) ||
                         libdbus.dbus_error_has_name(&error, DBUS_ERROR_TIMEOUT))
                        r = -ETIMEDOUT;
                else
                        r = -ECONNREFUSED;
        }
        libdbus.dbus_error_free(&error);
        if (reply)
                libdbus.dbus_message_unref(reply);
        return r;
}

static int call_dbus(DBusConnection *c, const char *method, const char *arg) {
        DBusMessage *m;
        int r;

        m = libdbus.dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
                                                 method);
        if (!m)
                return -ENOMEM;
        if (arg && !libdbus.dbus_message_append_args(m, DBUS_TYPE_STRING, &arg, DBUS_TYPE_INVALID)) {
                libdbus.dbus_message_unref(m);
                return -ENOMEM;
        }
        r = call_bounded(c, m);
        libdbus.dbus_message_unref(m);
        return r;
}

int status_bus_open(StatusBus **ret) {
        _cleanup_(status_bus_freep) StatusBus *b = NULL;
        const char *address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
        DBusError error;
        int r;

        r = load_libdbus();
        if (r < 0)
                return r;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        /* Set before the first connection: libdbus would otherwise ignore
         * SIGPIPE for the whole process. */
        libdbus.dbus_connection_set_change_sigpipe(FALSE);
        libdbus.dbus_error_init(&error);
        b->connection = libdbus.dbus_connection_open_private(
                address && *address ? address : STATUS_BUS_DEFAULT_ADDRESS, &error);
        if (!b->connection) {
                r = libdbus.dbus_error_has_name(&error, DBUS_ERROR_NO_MEMORY) ? -ENOMEM : -ECONNREFUSED;
                libdbus.dbus_error_free(&error);
                return r;
        }
        libdbus.dbus_connection_set_exit_on_disconnect(b->connection, FALSE);

        r = call_dbus(b->connection, "Hello", NULL);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(match_rules); i++)
                r = call_dbus(b->connection, "AddMatch", match_rules[i]);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

/* 1 when @m says the daemon's state changed, -ENOTCONN when it says the
 * bus went away, else 0. */
static int classify(DBusMessage *m) {
        const char *name, *old_owner, *new_owner;

        if (libdbus.dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected"))
                return -ENOTCONN;
        if (libdbus.dbus_message_is_signal(m, DBUS_INTERFACE_PROPERTIES, "PropertiesChanged"))
                return libdbus.dbus_message_has_path(m, PYCQUEUE_BUS_PATH);
        if (libdbus.dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged") &&
            libdbus.dbus_message_has_sender(m, DBUS_SERVICE_DBUS) &&
            libdbus.dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &old_owner,
                                          DBUS_TYPE_STRING, &new_owner, DBUS_TYPE_INVALID))
                return strcmp(name, PYCQUEUE_BUS_NAME) == 0;
        return 0; /* NameAcquired for our unique name, replies, ... */
}

int status_bus_wait(StatusBus *b, uint64_t usec, bool absorb) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + usec;
        bool changed = false, gone = false;

        for (;;) {
                DBusMessage *m;
                uint64_t now;

                while ((m = libdbus.dbus_connection_pop_message(b->connection))) {
                        int r = classify(m);

                        libdbus.dbus_message_unref(m);
                        if (r < 0)
                                return r;
                        changed = changed || r > 0;
                }
                if (gone)
                        return -ENOTCONN;
                if (changed && !absorb)
                        return 1;
                now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return changed;
                /* Blocks until the socket has something or the time is up.
                 * FALSE once disconnected: the Disconnected message is then
                 * queued and read above. */
                gone = !libdbus.dbus_connection_read_write(
                        b->connection, (int)MIN((deadline - now + 999) / 1000, (uint64_t)INT_MAX));
        }
}
