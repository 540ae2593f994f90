/* SPDX-License-Identifier: MIT */
/* Compile and Wait over the bus, and the request objects.
 *
 * A Compile is the socket's compile: its arguments become the socket's
 * frame (bus-util.c), spec_parse() reads it, dispatch_authorize() decides
 * with the uid the bus vouches for (polkit's consent counting as
 * privileged, bus.c), and request_new_compile() makes the same Request a
 * socket client gets, with no connection: its results come back through
 * RequestHooks. The caller gets an object path at once,
 * /org/pycqueue/PyCQueue1/request/N, whose properties follow the counts and
 * whose Wait() answers when the request is done.
 *
 * RequestFinished is sent for every request made over the bus; JobFinished,
 * one per file, only while somebody has subscribed (it can be thousands of
 * signals for one request). An object stays bus_request_linger (config) after
 * its request finished, for late readers, then goes; at most
 * BUS_MAX_REQUESTS exist, the oldest finished ones going first. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-private.h"
#include "dispatch.h"
#include "list.h"
#include "manager.h"
#include "request.h"
#include "spec.h"
#include "util.h"

#define BUS_MAX_REQUESTS 256u
#define BUS_MAX_WAITS_PER_REQUEST 16u

struct BusRequest {
        Bus *bus;
        uint64_t number;
        char path[sizeof(BUS_REQUEST_PATH_PREFIX) + 21];
        Request *request; /* NULL once finished */
        uint64_t id;      /* the provenance request id */
        uint64_t total, done, compiled, up_to_date, coalesced, failed;
        int error;
        char *error_message;
        uid_t uid;
        char *package;
        char *tool;
        BusCall *waits[BUS_MAX_WAITS_PER_REQUEST];
        unsigned n_waits;
        sd_event_source *expire_source;
        BusRequest *next, *prev;
};

static BusRequest *bus_request_free(BusRequest *br) {
        if (!br)
                return NULL;
        for (unsigned i = 0; i < br->n_waits; i++)
                bus_call_free(br->waits[i]);
        LIST_REMOVE(br->bus->requests, br);
        br->bus->n_requests--;
        sd_event_source_disable_unref(br->expire_source);
        free(br->error_message);
        free(br->package);
        free(br->tool);
        free(br);
        return NULL;
}

void bus_requests_free(Bus *b) {
        /* The requests themselves are the manager's; none calls back now. */
        while (b->requests)
                bus_request_free(b->requests);
}

static BusRequest *bus_request_find(Bus *b, uint64_t number) {
        for (BusRequest *br = b->requests; br; br = br->next)
                if (br->number == number)
                        return br;
        return NULL;
}

static const char *bus_request_state(const BusRequest *br) {
        if (br->request)
                return "running";
        return br->error < 0 ? "failed" : "finished";
}

static bool append_counts(DBusMessageIter *it, const BusRequest *br) {
        static const char *const names[] = {
                "total", "done", "compiled", "up_to_date", "coalesced", "failed"
        };
        const uint64_t values[] = { br->total,      br->done,      br->compiled,
                                    br->up_to_date, br->coalesced, br->failed };

        return bus_append_counters(it, names, values, sizeof(values) / sizeof(values[0]));
}

static void bus_request_take_counts(BusRequest *br, const Request *r) {
        br->id = r->id;
        br->total = r->total;
        br->done = r->done;
        br->compiled = r->compiled;
        br->up_to_date = r->up_to_date;
        br->coalesced = r->coalesced;
        br->failed = r->failed;
}

/* Request.Wait()'s answer: the counts, or the error the request ended with. */
static void bus_request_answer(BusRequest *br, BusCall *call) {
        DBusMessage *reply;
        DBusMessageIter it;

        if (br->error < 0) {
                bus_call_return_error(call, br->error, br->error_message);
                return;
        }
        reply = dbus_message_new_method_return(call->message);
        if (reply) {
                dbus_message_iter_init_append(reply, &it);
                if (!append_counts(&it, br)) {
                        dbus_message_unref(reply);
                        reply = NULL;
                }
        }
        bus_call_reply(call, reply);
}

/* --- what the request reports ---------------------------------------------------- */

static void bus_request_on_file(Request *r, const char *source, const char *target, Outcome outcome,
                                const char *error_type, const char *error_message, void *userdata) {
        BusRequest *br = userdata;
        Bus *b = br->bus;
        const char *path = target ? target : source, *name = outcome_to_string(outcome);
        DBusMessage *m;
        DBusMessageIter it;

        bus_request_take_counts(br, r);
        if (!bus_subscribed(b) || !path)
                return;
        m = dbus_message_new_signal(BUS_PATH, BUS_MANAGER_INTERFACE, "JobFinished");
        if (!m)
                return;
        dbus_message_iter_init_append(m, &it);
        if (bus_append_bytes(&it, path, strlen(path)) && bus_append_string(&it, name))
                bus_send(b, m);
        dbus_message_unref(m);
}

static int bus_request_on_expire(sd_event_source *s, uint64_t usec, void *userdata) {
        bus_request_free(userdata);
        return 0;
}

static void bus_request_on_finish(Request *r, int error, const char *message, void *userdata) {
        BusRequest *br = userdata;
        Bus *b = br->bus;
        const char *path = br->path;
        DBusMessage *m;
        DBusMessageIter it;

        bus_request_take_counts(br, r);
        br->request = NULL;
        br->error = error < 0 ? error : 0;
        if (error < 0 && message)
                br->error_message = strdup(message);

        m = dbus_message_new_signal(BUS_PATH, BUS_MANAGER_INTERFACE, "RequestFinished");
        if (m) {
                dbus_message_iter_init_append(m, &it);
                if (dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &path) &&
                    dbus_message_iter_append_basic(&it, DBUS_TYPE_UINT64, &br->id) && append_counts(&it, br))
                        bus_send(b, m);
                dbus_message_unref(m);
        }
        for (unsigned i = 0; i < br->n_waits; i++) {
                bus_request_answer(br, br->waits[i]);
                bus_call_free(br->waits[i]);
        }
        br->n_waits = 0;
        if (sd_event_add_time_relative(b->manager->event, &br->expire_source, CLOCK_MONOTONIC,
                                       b->manager->config->bus_request_linger_usec, 100000, bus_request_on_expire,
                                       br) < 0)
                br->expire_source = NULL; /* goes when BUS_MAX_REQUESTS pushes it out */
}

static const RequestHooks bus_request_hooks = {
        .on_file = bus_request_on_file,
        .on_finish = bus_request_on_finish,
};

/* Room for one more object: the oldest finished one goes if needed. */
static int bus_request_make_room(Bus *b) {
        BusRequest *oldest = NULL;

        if (b->n_requests < BUS_MAX_REQUESTS)
                return 0;
        for (BusRequest *br = b->requests; br; br = br->next)
                if (!br->request)
                        oldest = br; /* newest first: the last one seen is the oldest */
        if (!oldest)
                return -EUSERS;
        bus_request_free(oldest);
        return 0;
}

/* --- methods ------------------------------------------------------------------------ */

/* The Spec of a call: its arguments as the socket's frame, parsed by the
 * socket's parser. @ret_frame keeps the frame (the reader borrows it). */
int bus_call_spec(BusCall *call, Verb verb, uint8_t **ret_frame, MsgReader *ret_reader, Spec **ret,
                  char **ret_message) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size;
        int r;

        r = bus_build_frame(call->message, verb, &frame, &size, ret_message);
        if (r < 0)
                return r;
        r = msg_parse(frame, size, ret_reader);
        if (r < 0)
                return r == -EMSGSIZE || r == -E2BIG ? -E2BIG : -EINVAL;
        r = spec_parse(ret_reader, &call->bus->manager->spec_limits, ret, ret_message);
        if (r == -EBADMSG)
                r = -EINVAL;
        if (r < 0)
                return r;
        *ret_frame = TAKE_PTR(frame);
        return 0;
}

void bus_compile(BusCall *call) {
        Bus *b = call->bus;
        Manager *m = b->manager;
        _cleanup_free_ char *message = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        _cleanup_(spec_freep) Spec *s = NULL;
        MsgReader reader;
        BusRequest *br;
        Request *r;
        DBusMessage *reply;
        const char *path;
        int k;

        k = bus_call_spec(call, VERB_COMPILE, &frame, &reader, &s, &message);
        if (k >= 0)
                k = dispatch_authorize(m, call->caller, call->uid, s, &message);
        if (k >= 0)
                k = bus_request_make_room(b);
        if (k < 0)
                goto fail;
        br = calloc(1, sizeof(*br));
        if (!br) {
                k = -ENOMEM;
                goto fail;
        }
        br->bus = b;
        br->number = b->next_request++;
        snprintf(br->path, sizeof(br->path), BUS_REQUEST_PATH_PREFIX "%" PRIu64, br->number);
        br->uid = call->uid;
        br->package = s->package ? strdup(s->package) : NULL;
        br->tool = s->tool ? strdup(s->tool) : NULL;
        LIST_PREPEND(b->requests, br);
        b->n_requests++;

        k = request_new_compile(m, NULL, TAKE_PTR(s), &reader, &r, &message);
        if (k < 0) {
                bus_request_free(br);
                goto fail;
        }
        /* Who asked, as the bus says: provenance reads its /proc entry. */
        r->uid = call->uid;
        r->pid = call->pid;
        r->read_peer = true;
        r->hooks = &bus_request_hooks;
        r->hooks_data = br;
        br->request = r;
        request_start(r); /* may finish it at once: on_finish ran then */
        if (br->request)
                br->id = br->request->id;

        path = br->path;
        reply = dbus_message_new_method_return(call->message);
        if (reply && !dbus_message_append_args(reply, DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_INVALID)) {
                dbus_message_unref(reply);
                reply = NULL;
        }
        bus_call_reply(call, reply);
        bus_call_free(call);
        return;
fail:
        bus_call_return_error(call, k, message);
        bus_call_free(call);
}

static void bus_wait_on_finish(Request *r, int error, const char *message, void *userdata) {
        BusCall *call = userdata;

        if (error < 0)
                bus_call_return_error(call, error, message);
        else
                bus_call_reply(call, dbus_message_new_method_return(call->message));
        bus_call_free(call);
}

static const RequestHooks bus_wait_hooks = {
        .on_finish = bus_wait_on_finish,
};

void bus_wait(BusCall *call) {
        Manager *m = call->bus->manager;
        _cleanup_free_ char *message = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        _cleanup_(spec_freep) Spec *s = NULL;
        MsgReader reader;
        Request *r;
        int k;

        k = bus_call_spec(call, VERB_WAIT, &frame, &reader, &s, &message);
        if (k >= 0)
                k = dispatch_authorize(m, call->caller, call->uid, s, &message);
        if (k >= 0)
                k = request_new_wait(m, NULL, TAKE_PTR(s), &r);
        if (k < 0) {
                bus_call_return_error(call, k, message);
                bus_call_free(call);
                return;
        }
        r->uid = call->uid;
        r->pid = call->pid;
        r->hooks = &bus_wait_hooks;
        r->hooks_data = call;
        bus_call_hold(call);
        request_start(r); /* may answer at once */
}

void bus_list_requests(BusCall *call) {
        DBusMessage *reply = dbus_message_new_method_return(call->message);
        DBusMessageIter it, a;
        bool ok = reply != NULL;

        if (ok) {
                dbus_message_iter_init_append(reply, &it);
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "o", &a);
                for (BusRequest *br = call->bus->requests; ok && br; br = br->next) {
                        const char *path = br->path;
                        ok = dbus_message_iter_append_basic(&a, DBUS_TYPE_OBJECT_PATH, &path);
                }
                ok = ok && dbus_message_iter_close_container(&it, &a);
        }
        if (!ok && reply) {
                dbus_message_unref(reply);
                reply = NULL;
        }
        bus_call_reply(call, reply);
        bus_call_free(call);
}

void bus_request_wait(BusCall *call) {
        BusRequest *br = bus_request_find(call->bus, call->object);

        if (!br) {
                bus_call_reply(call, dbus_message_new_error(call->message, DBUS_ERROR_UNKNOWN_OBJECT,
                                                            "the request is gone"));
                bus_call_free(call);
        } else if (!br->request) {
                bus_request_answer(br, call);
                bus_call_free(call);
        } else if (br->n_waits >= BUS_MAX_WAITS_PER_REQUEST) {
                bus_call_return_error(call, -EUSERS, "too many callers wait for this request");
                bus_call_free(call);
        } else
                br->waits[br->n_waits++] = call;
}

const BusMethod bus_request_methods[] = {
        { BUS_REQUEST_INTERFACE, "Wait", "", VERB_STATUS, NULL, bus_request_wait },
        {},
};

/* --- the object -------------------------------------------------------------------- */

static bool append_request_property(DBusMessageIter *it, const BusRequest *br, const char *name) {
        static const char *const counts[] = {
                "Total", "Done", "Compiled", "UpToDate", "Coalesced", "Failed"
        };
        const uint64_t values[] = { br->total,      br->done,      br->compiled,
                                    br->up_to_date, br->coalesced, br->failed };
        DBusMessageIter v;
        uint32_t uid = br->uid;

        for (size_t i = 0; i < 6; i++)
                if (strcmp(name, counts[i]) == 0)
                        return dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, "t", &v) &&
                               dbus_message_iter_append_basic(&v, DBUS_TYPE_UINT64, &values[i]) &&
                               dbus_message_iter_close_container(it, &v);
        if (strcmp(name, "Uid") == 0)
                return dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, "u", &v) &&
                       dbus_message_iter_append_basic(&v, DBUS_TYPE_UINT32, &uid) &&
                       dbus_message_iter_close_container(it, &v);
        if (strcmp(name, "State") == 0 || strcmp(name, "Package") == 0 || strcmp(name, "Tool") == 0)
                return dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, "s", &v) &&
                       bus_append_string(&v, strcmp(name, "State") == 0     ? bus_request_state(br)
                                             : strcmp(name, "Package") == 0 ? br->package
                                                                            : br->tool) &&
                       dbus_message_iter_close_container(it, &v);
        return false;
}

static DBusMessage *bus_request_properties(BusRequest *br, DBusMessage *m) {
        static const char *const names[] = { "Total",  "Done",  "Compiled", "UpToDate", "Coalesced",
                                             "Failed", "State", "Uid",      "Package",  "Tool" };
        const char *interface = NULL, *name = NULL;
        DBusMessageIter it, dict, e;
        DBusMessage *reply;
        bool ok = true;

        if (dbus_message_is_method_call(m, DBUS_INTERFACE_PROPERTIES, "Set"))
                return dbus_message_new_error(m, DBUS_ERROR_PROPERTY_READ_ONLY,
                                              "the properties are read-only");
        if (dbus_message_is_method_call(m, DBUS_INTERFACE_PROPERTIES, "Get")) {
                if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &interface, DBUS_TYPE_STRING, &name,
                                           DBUS_TYPE_INVALID))
                        return bus_error_reply(m, -EINVAL, "Get takes an interface and a property name");
        } else if (dbus_message_is_method_call(m, DBUS_INTERFACE_PROPERTIES, "GetAll")) {
                if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &interface, DBUS_TYPE_INVALID))
                        return bus_error_reply(m, -EINVAL, "GetAll takes an interface name");
        } else
                return dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_METHOD, "no such method");
        if (*interface && strcmp(interface, BUS_REQUEST_INTERFACE) != 0)
                return dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_INTERFACE, "no such interface here");
        reply = dbus_message_new_method_return(m);
        if (!reply)
                return NULL;
        dbus_message_iter_init_append(reply, &it);
        if (name) {
                if (!append_request_property(&it, br, name)) {
                        dbus_message_unref(reply);
                        return dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_PROPERTY, "no such property");
                }
        } else {
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
                for (size_t i = 0; ok && i < sizeof(names) / sizeof(names[0]); i++)
                        ok = dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
                             dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &names[i]) &&
                             append_request_property(&e, br, names[i]) &&
                             dbus_message_iter_close_container(&dict, &e);
                ok = ok && dbus_message_iter_close_container(&it, &dict);
        }
        if (!ok) {
                dbus_message_unref(reply);
                return NULL;
        }
        return reply;
}

DBusMessage *bus_request_children(Bus *b, DBusMessage *m) {
        _cleanup_free_ char *children = malloc((size_t)b->n_requests * 48 + 1);
        size_t n = 0;

        if (!children)
                return NULL;
        children[0] = '\0';
        for (BusRequest *br = b->requests; br; br = br->next)
                n += (size_t)snprintf(children + n, 48, "  <node name=\"%" PRIu64 "\"/>\n", br->number);
        return bus_introspect_reply(m, NULL, children);
}

DBusHandlerResult bus_request_message(Bus *b, DBusConnection *c, DBusMessage *m) {
        const char *tail = dbus_message_get_path(m) + strlen(BUS_REQUEST_PATH_PREFIX);
        BusRequest *br = NULL;
        DBusMessage *reply;
        uint64_t number;
        char *end;

        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        errno = 0;
        number = strtoull(tail, &end, 10);
        if (*tail >= '1' && *tail <= '9' && !*end && errno == 0)
                br = bus_request_find(b, number);
        if (!br)
                reply = dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_OBJECT,
                                               "no such request (or it expired)");
        else if (dbus_message_is_method_call(m, DBUS_INTERFACE_INTROSPECTABLE, "Introspect"))
                reply = bus_introspect_reply(m, BUS_REQUEST_INTERFACE, NULL);
        else if (dbus_message_has_interface(m, DBUS_INTERFACE_PROPERTIES))
                reply = bus_request_properties(br, m);
        else {
                DBusHandlerResult r = bus_call_method(b, c, m, bus_request_methods, br->number);
                if (r != DBUS_HANDLER_RESULT_NOT_YET_HANDLED)
                        return r;
                reply = dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_METHOD, "no such method");
        }
        return bus_send_reply(c, reply);
}
