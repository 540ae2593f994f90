/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of daemon/bus/ share. */

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "bus.h"
#include "forward.h"
#include "macro.h"
#include "dispatch.h"
#include "fsid.h"
#include "spec.h"

#define BUS_ERROR_PREFIX BUS_NAME ".Error."

typedef struct BusCall BusCall;
typedef struct BusRequest BusRequest;

/* One method of an interface: the signature it takes, the verb whose
 * authorisation it needs (_VERB_INVALID: none beyond the bus policy), and
 * its handler, which runs once the caller's credentials (and, for a
 * mutating verb from a caller who is not privileged, polkit's answer) are
 * in. */
typedef struct BusMethod {
        const char *interface;
        const char *member;
        const char *signature;
        Verb verb;
        const char *polkit_action; /* for verbs that change files */
        void (*handler)(BusCall *call);
} BusMethod;

struct BusCall {
        Bus *bus;
        DBusConnection *conn; /* the connection the call came on (ref) */
        DBusMessage *message; /* (ref) */
        const BusMethod *method;
        uint64_t object; /* for the Request interface: the number of the object called */
        DBusPendingCall *pending;
        uid_t uid;
        pid_t pid;
        gid_t *groups; /* UnixGroupIDs, when the bus said (have_groups) */
        size_t n_groups;
        bool have_groups;
        CallerClass caller; /* after polkit: privileged if it consented */
        bool via_polkit;
        bool linked; /* in the bus's list: waiting for the bus or polkit */
        bool held;   /* in the bus's held list */
        BusCall *next, *prev;
};

struct Bus {
        Manager *manager;
        char *address;
        DBusConnection *conn; /* NULL while there is no bus */
        bool connected;       /* Hello answered */
        bool name_owned;
        bool releasing; /* stopping: never take the name again */
        sd_event_source *dispatch_source;
        sd_event_source *retry_source;
        uint64_t retry_usec;
        sd_event_source *props_source;
        bool props_pending;
        void *last_props; /* BusProps of the last PropertiesChanged */

        BusCall *calls; /* calls waiting for credentials, polkit or work */
        unsigned n_calls;
        char **subscribers; /* unique names that called Subscribe() */
        size_t n_subscribers;
        BusCall *held;        /* calls answered when a request finishes (Wait) */
        BusRequest *requests; /* request objects, newest first */
        unsigned n_requests;
        uint64_t next_request;
};

/* bus.c */
void bus_call_reply(BusCall *call, DBusMessage *reply);
void bus_call_return_error(BusCall *call, int error, const char *message);
void bus_call_free(BusCall *call);
bool bus_call_unlink(BusCall *call); /* leaves the list, keeps the call (held replies) */
void bus_send(Bus *b, DBusMessage *m);
/* Starts the call of the method of @table that @m names; NOT_YET_HANDLED
 * when there is none. */
DBusHandlerResult bus_call_method(Bus *b, DBusConnection *c, DBusMessage *m, const BusMethod *table,
                                  uint64_t object);

/* bus-util.c */
/* Appends @s as a string, its invalid UTF-8 (libdbus aborts on it) replaced
 * by '?'. */
bool bus_append_string(DBusMessageIter *it, const char *s);
bool bus_append_bytes(DBusMessageIter *it, const void *data, size_t size);
/* Sends @reply (consumed) as an object handler's answer; NULL is out of
 * memory. */
DBusHandlerResult bus_send_reply(DBusConnection *c, DBusMessage *reply);
/* An a{st} of @n named counters. */
bool bus_append_counters(DBusMessageIter *it, const char *const *names, const uint64_t *values, size_t n);
bool bus_append_dict_variant(DBusMessageIter *dict, const char *key, int type, const void *value);
bool bus_append_dict_string(DBusMessageIter *dict, const char *key, const char *value);
bool bus_append_dict_bytes(DBusMessageIter *dict, const char *key, const char *value);
const char *bus_error_name(int error);
DBusMessage *bus_error_reply(DBusMessage *call, int error, const char *message);
/* Translates a call's arguments into the socket's frame for @verb, so that
 * the one parser (spec.c) reads what a bus caller sent exactly as it reads
 * a socket client's. Returns 0 or -EINVAL (-ENOMEM) with a message. */
int bus_build_frame(DBusMessage *m, Verb verb, uint8_t **ret_frame, size_t *ret_size, char **ret_message);
/* Appends the TAG_STAT fields of @frame (a record, a summary) as an a{sv}:
 * numbers as t, x or d, booleans as b, paths and command lines as ay, other
 * text as s. @ret_truncated (may be NULL) says whether a "truncated" field
 * was true. */
bool bus_append_stat_dict(DBusMessageIter *it, const uint8_t *frame, size_t size, bool *ret_truncated);
/* The same into the open a{sv} @dict. */
bool bus_append_stat_entries(DBusMessageIter *dict, const uint8_t *frame, size_t size, bool *ret_truncated);

/* bus-admin.c */
/* Why, History, Verify, Audit (paged), Repair and Clean. */
void bus_admin(BusCall *call);

/* bus-manager.c */
extern const BusMethod bus_manager_methods[];
extern const BusMethod bus_request_methods[];
DBusHandlerResult bus_manager_message(Bus *b, DBusConnection *c, DBusMessage *m);
void bus_emit_properties(Bus *b);
const char *bus_introspection(const char *interface, size_t *ret_size);
/* Introspect()'s answer: the standard interfaces, @interface (NULL: none),
 * then @children (node elements, NULL: none). */
DBusMessage *bus_introspect_reply(DBusMessage *m, const char *interface, const char *children);
bool bus_subscribed(Bus *b);
void bus_subscriber_gone(Bus *b, const char *name);

/* bus-request.c */
DBusHandlerResult bus_request_message(Bus *b, DBusConnection *c, DBusMessage *m);
void bus_compile(BusCall *call);
void bus_request_wait(BusCall *call);
void bus_wait(BusCall *call);
void bus_list_requests(BusCall *call);
void bus_requests_free(Bus *b);
/* The Spec of @call's arguments for @verb, parsed by the socket's parser
 * from the frame they make (@ret_frame, which the reader borrows). */
int bus_call_spec(BusCall *call, Verb verb, uint8_t **ret_frame, MsgReader *ret_reader, Spec **ret,
                  char **ret_message);
/* Introspect() of BUS_PATH "/request": one node per request object. */
DBusMessage *bus_request_children(Bus *b, DBusMessage *m);
/* Keeps @call until bus_call_release() (or bus_free()). */
void bus_call_hold(BusCall *call);
void bus_call_release(BusCall *call);
