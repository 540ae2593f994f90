/* SPDX-License-Identifier: MIT */
/* The manager object, /org/pycqueue/PyCQueue1: its methods, its properties
 * (read from the same plain status the socket reports, status.c), their
 * PropertiesChanged signal, and introspection.
 *
 * The introspection data is the XML file installed for clients
 * (dbus/org.pycqueue.PyCQueue1.xml), compiled in: what Introspect() answers
 * cannot drift from what is installed.
 *
 * PropertiesChanged goes out at most every BUS_PROPS_INTERVAL_USEC, and
 * names only the properties whose values changed since the last one. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-private.h"
#include "log.h"
#include "manager.h"
#include "status.h"
#include "util.h"

#include "bus-introspection.h"

#define BUS_PROPS_INTERVAL_USEC (100 * 1000ULL)
#define BUS_MAX_SUBSCRIBERS 64u

static const char *const manager_properties[] = {
        "State",     "Version",  "QueueLength",    "InFlight",       "Workers", "Totals",
        "Recording", "Degraded", "DegradedReason", "DroppedRecords", "Audit",   "CacheHitRate",
};
#define N_MANAGER_PROPERTIES (sizeof(manager_properties) / sizeof(manager_properties[0]))

/* --- introspection -------------------------------------------------------- */

const char *bus_introspection(const char *interface, size_t *ret_size) {
        char needle[128];
        const char *start, *end;

        snprintf(needle, sizeof(needle), "<interface name=\"%s\">", interface);
        start = strstr(bus_introspection_xml, needle);
        if (!start)
                return NULL;
        end = strstr(start, "</interface>");
        if (!end)
                return NULL;
        *ret_size = (size_t)(end - start) + strlen("</interface>");
        return start;
}

#define STANDARD_INTERFACES                                                                                 \
        "  <interface name=\"org.freedesktop.DBus.Introspectable\">\n"                                      \
        "    <method name=\"Introspect\"><arg name=\"xml\" type=\"s\" direction=\"out\"/></method>\n"       \
        "  </interface>\n"                                                                                  \
        "  <interface name=\"org.freedesktop.DBus.Peer\">\n"                                                \
        "    <method name=\"Ping\"/>\n"                                                                     \
        "    <method name=\"GetMachineId\"><arg name=\"id\" type=\"s\" direction=\"out\"/></method>\n"      \
        "  </interface>\n"                                                                                  \
        "  <interface name=\"org.freedesktop.DBus.Properties\">\n"                                          \
        "    <method name=\"Get\"><arg name=\"interface\" type=\"s\" direction=\"in\"/>"                    \
        "<arg name=\"name\" type=\"s\" direction=\"in\"/><arg name=\"value\" type=\"v\" "                   \
        "direction=\"out\"/>"                                                                               \
        "</method>\n"                                                                                       \
        "    <method name=\"GetAll\"><arg name=\"interface\" type=\"s\" direction=\"in\"/>"                 \
        "<arg name=\"properties\" type=\"a{sv}\" direction=\"out\"/></method>\n"                            \
        "    <method name=\"Set\"><arg name=\"interface\" type=\"s\" direction=\"in\"/>"                    \
        "<arg name=\"name\" type=\"s\" direction=\"in\"/><arg name=\"value\" type=\"v\" direction=\"in\"/>" \
        "</method>\n"                                                                                       \
        "    <signal name=\"PropertiesChanged\"><arg name=\"interface\" type=\"s\"/>"                       \
        "<arg name=\"changed\" type=\"a{sv}\"/><arg name=\"invalidated\" type=\"as\"/></signal>\n"          \
        "  </interface>\n"

/* The node at @path: the standard interfaces, @interface (may be NULL),
 * then @children (node elements, may be NULL). */
DBusMessage *bus_introspect_reply(DBusMessage *m, const char *interface, const char *children) {
        _cleanup_free_ char *xml = NULL;
        const char *text = "";
        size_t size = 0;
        DBusMessage *reply;

        if (interface) {
                text = bus_introspection(interface, &size);
                if (!text)
                        return NULL;
        }
        if (asprintf(&xml, "%s<node>\n%s  %.*s\n%s</node>\n", DBUS_INTROSPECT_1_0_XML_DOCTYPE_DECL_NODE,
                     STANDARD_INTERFACES, (int)size, text, children ? children : "") < 0)
                return NULL;
        reply = dbus_message_new_method_return(m);
        if (reply && !dbus_message_append_args(reply, DBUS_TYPE_STRING, &xml, DBUS_TYPE_INVALID)) {
                dbus_message_unref(reply);
                return NULL;
        }
        return reply;
}

/* --- properties ------------------------------------------------------------- */

static bool append_totals(DBusMessageIter *it, const Counters *t) {
        static const char *const names[] = { "requests",  "compiled", "up_to_date",
                                             "coalesced", "failed",   "worker_restarts" };
        const uint64_t values[] = { t->requests,  t->compiled, t->up_to_date,
                                    t->coalesced, t->failed,   t->worker_restarts };

        return bus_append_counters(it, names, values, sizeof(values) / sizeof(values[0]));
}

static bool append_workers(DBusMessageIter *it, const ManagerStatus *s) {
        DBusMessageIter a, st;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "(ayssuuu)", &a))
                return false;
        for (size_t i = 0; i < s->n_pools; i++) {
                const StatusPool *p = &s->pools[i];
                uint32_t count = p->count, busy = p->busy, queued = p->queued;

                if (!dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) ||
                    !bus_append_bytes(&st, p->interpreter, strlen(p->interpreter)) ||
                    !bus_append_string(&st, p->state) || !bus_append_string(&st, p->cache_tag) ||
                    !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &count) ||
                    !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &busy) ||
                    !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &queued) ||
                    !dbus_message_iter_close_container(&a, &st))
                        return false;
        }
        return dbus_message_iter_close_container(it, &a);
}

/* Appends the value of manager property @name as a variant; false when
 * there is no such property (or no memory). */
static bool append_manager_property(DBusMessageIter *it, const char *name, const ManagerStatus *s) {
        static const struct {
                const char *name;
                const char *signature;
        } types[] = {
                { "State", "s" },
                { "Version", "s" },
                { "QueueLength", "t" },
                { "InFlight", "u" },
                { "Workers", "a(ayssuuu)" },
                { "Totals", "a{st}" },
                { "Recording", "b" },
                { "Degraded", "b" },
                { "DegradedReason", "s" },
                { "DroppedRecords", "t" },
                { "Audit", "b" },
                { "CacheHitRate", "d" },
        };
        const char *signature = NULL;
        DBusMessageIter v;
        dbus_bool_t b;
        uint32_t u;
        bool ok;

        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                if (strcmp(types[i].name, name) == 0)
                        signature = types[i].signature;
        if (!signature || !dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, signature, &v))
                return false;
        if (strcmp(name, "State") == 0)
                ok = bus_append_string(&v, s->state);
        else if (strcmp(name, "Version") == 0)
                ok = bus_append_string(&v, s->version);
        else if (strcmp(name, "QueueLength") == 0)
                ok = dbus_message_iter_append_basic(&v, DBUS_TYPE_UINT64, &s->queue_length);
        else if (strcmp(name, "InFlight") == 0)
                ok = (u = s->in_flight, dbus_message_iter_append_basic(&v, DBUS_TYPE_UINT32, &u));
        else if (strcmp(name, "Workers") == 0)
                ok = append_workers(&v, s);
        else if (strcmp(name, "Totals") == 0)
                ok = append_totals(&v, &s->totals);
        else if (strcmp(name, "Recording") == 0)
                ok = (b = s->recording, dbus_message_iter_append_basic(&v, DBUS_TYPE_BOOLEAN, &b));
        else if (strcmp(name, "Degraded") == 0)
                ok = (b = s->degraded, dbus_message_iter_append_basic(&v, DBUS_TYPE_BOOLEAN, &b));
        else if (strcmp(name, "DegradedReason") == 0)
                ok = bus_append_string(&v, s->degraded_reason);
        else if (strcmp(name, "DroppedRecords") == 0)
                ok = dbus_message_iter_append_basic(&v, DBUS_TYPE_UINT64, &s->dropped_records);
        else if (strcmp(name, "Audit") == 0)
                ok = (b = s->audit, dbus_message_iter_append_basic(&v, DBUS_TYPE_BOOLEAN, &b));
        else
                ok = dbus_message_iter_append_basic(&v, DBUS_TYPE_DOUBLE, &s->cache_hit_rate);
        return ok && dbus_message_iter_close_container(it, &v);
}

/* Property @name as the dict entry @key (GetStatus() names them as the
 * socket's status does). */
static bool append_entry_as(DBusMessageIter *dict, const char *key, const char *name,
                            const ManagerStatus *s) {
        DBusMessageIter e;

        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
               dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key) &&
               append_manager_property(&e, name, s) && dbus_message_iter_close_container(dict, &e);
}

static bool append_property_entry(DBusMessageIter *dict, const char *name, const ManagerStatus *s) {
        return append_entry_as(dict, name, name, s);
}

/* What PropertiesChanged compares: a digest per property of its value. */
typedef struct BusProps {
        uint64_t digest[N_MANAGER_PROPERTIES];
} BusProps;

static uint64_t digest_bytes(const void *data, size_t size) {
        const uint8_t *p = data;
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

        for (size_t i = 0; i < size; i++)
                h = (h ^ p[i]) * 0x100000001b3ULL;
        return h;
}

/* A property's digest: the bytes of its marshalled value. */
static uint64_t property_digest(const char *name, const ManagerStatus *s) {
        DBusMessage *m = dbus_message_new_signal("/", "x.y", "z");
        DBusMessageIter it;
        char *data = NULL;
        int size = 0;
        uint64_t h = 0;

        if (!m)
                return 0;
        dbus_message_iter_init_append(m, &it);
        if (append_manager_property(&it, name, s) && dbus_message_marshal(m, &data, &size)) {
                h = digest_bytes(data, (size_t)size);
                dbus_free(data);
        }
        dbus_message_unref(m);
        return h;
}

void bus_emit_properties(Bus *b) {
        _cleanup_free_ BusProps *now = calloc(1, sizeof(BusProps));
        BusProps *last = b->last_props;
        const char *interface = BUS_MANAGER_INTERFACE;
        ManagerStatus s;
        DBusMessage *m;
        DBusMessageIter it, dict, inv;
        bool any = false, ok;

        if (!now || !b->connected || manager_status_get(b->manager, &s) < 0)
                return;
        for (size_t i = 0; i < N_MANAGER_PROPERTIES; i++) {
                now->digest[i] = property_digest(manager_properties[i], &s);
                if (!last || last->digest[i] != now->digest[i])
                        any = true;
        }
        if (!any) {
                manager_status_done(&s);
                return;
        }
        m = dbus_message_new_signal(BUS_PATH, DBUS_INTERFACE_PROPERTIES, "PropertiesChanged");
        dbus_message_iter_init_append(m, &it);
        ok = m && dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &interface) &&
             dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        for (size_t i = 0; ok && i < N_MANAGER_PROPERTIES; i++)
                if (!last || last->digest[i] != now->digest[i])
                        ok = append_property_entry(&dict, manager_properties[i], &s);
        ok = ok && dbus_message_iter_close_container(&it, &dict) &&
             dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &inv) &&
             dbus_message_iter_close_container(&it, &inv);
        if (ok) {
                bus_send(b, m);
                free(b->last_props);
                b->last_props = TAKE_PTR(now);
        }
        if (m)
                dbus_message_unref(m);
        manager_status_done(&s);
}

static int bus_on_props_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        bus_emit_properties(userdata);
        return 0;
}

void bus_status_changed(Bus *b) {
        int enabled = SD_EVENT_OFF;

        if (!b || !b->connected)
                return;
        if (!b->props_source) {
                if (sd_event_add_time_relative(b->manager->event, &b->props_source, CLOCK_MONOTONIC,
                                               BUS_PROPS_INTERVAL_USEC, 10000, bus_on_props_timer, b) < 0)
                        b->props_source = NULL;
                return;
        }
        (void)sd_event_source_get_enabled(b->props_source, &enabled);
        if (enabled != SD_EVENT_OFF)
                return; /* one is due already: it will carry this change too */
        (void)sd_event_source_set_time_relative(b->props_source, BUS_PROPS_INTERVAL_USEC);
        (void)sd_event_source_set_enabled(b->props_source, SD_EVENT_ONESHOT);
}

static DBusMessage *bus_properties_reply(Bus *b, DBusMessage *m) {
        const char *interface = NULL, *name = NULL;
        DBusMessageIter it, dict;
        DBusMessage *reply;
        ManagerStatus s;
        bool ok;

        if (dbus_message_is_method_call(m, DBUS_INTERFACE_PROPERTIES, "Set"))
                return dbus_message_new_error(m, DBUS_ERROR_PROPERTY_READ_ONLY,
                                              "the properties are read-only");
        if (dbus_message_is_method_call(m, DBUS_INTERFACE_PROPERTIES, "Get")) {
                if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &interface, DBUS_TYPE_STRING, &name,
                                           DBUS_TYPE_INVALID))
                        return bus_error_reply(m, -EINVAL, "Get takes an interface and a property name");
        } else if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &interface, DBUS_TYPE_INVALID))
                return bus_error_reply(m, -EINVAL, "GetAll takes an interface name");
        if (*interface && strcmp(interface, BUS_MANAGER_INTERFACE) != 0)
                return dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_INTERFACE, "no such interface here");
        if (name) {
                bool known = false;
                for (size_t i = 0; i < N_MANAGER_PROPERTIES; i++)
                        known = known || strcmp(manager_properties[i], name) == 0;
                if (!known)
                        return dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_PROPERTY, "no such property");
        }
        if (manager_status_get(b->manager, &s) < 0)
                return NULL;
        reply = dbus_message_new_method_return(m);
        if (!reply) {
                manager_status_done(&s);
                return NULL;
        }
        dbus_message_iter_init_append(reply, &it);
        if (name)
                ok = append_manager_property(&it, name, &s);
        else {
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
                for (size_t i = 0; ok && i < N_MANAGER_PROPERTIES; i++)
                        ok = append_property_entry(&dict, manager_properties[i], &s);
                ok = ok && dbus_message_iter_close_container(&it, &dict);
        }
        manager_status_done(&s);
        if (!ok) {
                dbus_message_unref(reply);
                return NULL;
        }
        return reply;
}

/* --- methods ----------------------------------------------------------------- */

static void bus_get_status(BusCall *call) {
        Manager *m = call->bus->manager;
        DBusMessage *reply = dbus_message_new_method_return(call->message);
        DBusMessageIter it, dict, entry, variant, a, st;
        ManagerStatus s;
        uint32_t pid, in_flight, connections;
        double uptime;
        dbus_bool_t yes;
        bool ok;

        if (!reply || manager_status_get(m, &s) < 0) {
                if (reply)
                        dbus_message_unref(reply);
                bus_call_reply(call, NULL);
                bus_call_free(call);
                return;
        }
        pid = (uint32_t)s.pid;
        in_flight = s.in_flight;
        connections = s.connections;
        uptime = (double)s.uptime_usec / 1e6;
        dbus_message_iter_init_append(reply, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict) &&
             bus_append_dict_variant(&dict, "pid", DBUS_TYPE_UINT32, &pid) &&
             bus_append_dict_string(&dict, "version", s.version) &&
             bus_append_dict_variant(&dict, "uptime_seconds", DBUS_TYPE_DOUBLE, &uptime) &&
             bus_append_dict_string(&dict, "state", s.state) &&
             bus_append_dict_variant(&dict, "audit", DBUS_TYPE_BOOLEAN, (yes = s.audit, &yes)) &&
             bus_append_dict_variant(&dict, "socket_activated", DBUS_TYPE_BOOLEAN,
                                     (yes = s.socket_activated, &yes)) &&
             bus_append_dict_string(&dict, "started_by", started_by_to_string(s.started_by)) &&
             bus_append_dict_variant(&dict, "queue_length", DBUS_TYPE_UINT64, &s.queue_length) &&
             bus_append_dict_variant(&dict, "in_flight", DBUS_TYPE_UINT32, &in_flight) &&
             bus_append_dict_variant(&dict, "connections", DBUS_TYPE_UINT32, &connections) &&
             bus_append_dict_variant(&dict, "throughput_files_per_second", DBUS_TYPE_DOUBLE,
                                     &s.throughput) &&
             append_entry_as(&dict, "workers", "Workers", &s) &&
             append_entry_as(&dict, "totals", "Totals", &s) &&
             bus_append_dict_variant(&dict, "cache_enabled", DBUS_TYPE_BOOLEAN,
                                     (yes = s.cache_enabled, &yes)) &&
             bus_append_dict_variant(&dict, "cache_hit_rate", DBUS_TYPE_DOUBLE, &s.cache_hit_rate);
        if (ok && s.have_database)
                ok = bus_append_dict_bytes(&dict, "database_path", s.database_path) &&
                     bus_append_dict_variant(&dict, "recording", DBUS_TYPE_BOOLEAN,
                                             (yes = s.recording, &yes)) &&
                     bus_append_dict_variant(&dict, "degraded", DBUS_TYPE_BOOLEAN,
                                             (yes = s.degraded, &yes)) &&
                     bus_append_dict_string(&dict, "degraded_reason", s.degraded_reason) &&
                     bus_append_dict_variant(&dict, "dropped_records", DBUS_TYPE_UINT64,
                                             &s.dropped_records) &&
                     bus_append_dict_variant(&dict, "database_rows", DBUS_TYPE_UINT64, &s.database_rows);
        /* Recent errors name files: for the privileged caller only, as on
         * the socket. */
        if (ok && call->caller == CALLER_PRIVILEGED) {
                const char *key = "recent_errors";

                ok = dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
                     dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
                     dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "a(ayssut)", &variant) &&
                     dbus_message_iter_open_container(&variant, DBUS_TYPE_ARRAY, "(ayssut)", &a);
                for (unsigned i = 0; ok && i < m->n_recent; i++) {
                        RecentError *e = &m->recent[(m->recent_next + MANAGER_RECENT_ERRORS - 1 - i) %
                                                    MANAGER_RECENT_ERRORS];
                        const char *source = e->source ? e->source : "";
                        uint32_t line = e->line;
                        uint64_t time = e->realtime_usec / 1000000u;

                        ok = dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) &&
                             bus_append_bytes(&st, source, strlen(source)) &&
                             bus_append_string(&st, e->type) && bus_append_string(&st, e->message) &&
                             dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &line) &&
                             dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT64, &time) &&
                             dbus_message_iter_close_container(&a, &st);
                }
                ok = ok && dbus_message_iter_close_container(&variant, &a) &&
                     dbus_message_iter_close_container(&entry, &variant) &&
                     dbus_message_iter_close_container(&dict, &entry);
        }
        ok = ok && dbus_message_iter_close_container(&it, &dict);
        manager_status_done(&s);
        if (!ok) {
                dbus_message_unref(reply);
                reply = NULL;
        }
        bus_call_reply(call, reply);
        bus_call_free(call);
}

bool bus_subscribed(Bus *b) {
        return b->n_subscribers > 0;
}

static ssize_t subscriber_index(Bus *b, const char *name) {
        for (size_t i = 0; i < b->n_subscribers; i++)
                if (strcmp(b->subscribers[i], name) == 0)
                        return (ssize_t)i;
        return -1;
}

void bus_subscriber_gone(Bus *b, const char *name) {
        ssize_t i = subscriber_index(b, name);

        if (i < 0)
                return;
        free(b->subscribers[i]);
        b->subscribers[i] = b->subscribers[--b->n_subscribers];
}

static void bus_subscribe(BusCall *call) {
        Bus *b = call->bus;
        const char *sender = dbus_message_get_sender(call->message);
        int r = 0;

        if (subscriber_index(b, sender) < 0) {
                if (b->n_subscribers >= BUS_MAX_SUBSCRIBERS)
                        r = -EUSERS;
                else if (!b->subscribers && !(b->subscribers = calloc(BUS_MAX_SUBSCRIBERS, sizeof(char *))))
                        r = -ENOMEM;
                else if (!(b->subscribers[b->n_subscribers] = strdup(sender)))
                        r = -ENOMEM;
                else
                        b->n_subscribers++;
        }
        if (r < 0)
                bus_call_return_error(call, r,
                                      r == -EUSERS
                                              ? "too many subscribers; JobFinished is sent while any one "
                                                "is subscribed"
                                              : NULL);
        else
                bus_call_reply(call, dbus_message_new_method_return(call->message));
        bus_call_free(call);
}

static void bus_unsubscribe(BusCall *call) {
        bus_subscriber_gone(call->bus, dbus_message_get_sender(call->message));
        bus_call_reply(call, dbus_message_new_method_return(call->message));
        bus_call_free(call);
}

const BusMethod bus_manager_methods[] = {
        { BUS_MANAGER_INTERFACE, "Compile", "aaya{sv}", VERB_COMPILE, "org.pycqueue.compile", bus_compile },
        { BUS_MANAGER_INTERFACE, "Wait", "s", VERB_WAIT, NULL, bus_wait },
        { BUS_MANAGER_INTERFACE, "GetStatus", "", VERB_STATUS, NULL, bus_get_status },
        { BUS_MANAGER_INTERFACE, "ListRequests", "", VERB_STATUS, NULL, bus_list_requests },
        { BUS_MANAGER_INTERFACE, "Subscribe", "", VERB_STATUS, NULL, bus_subscribe },
        { BUS_MANAGER_INTERFACE, "Unsubscribe", "", VERB_STATUS, NULL, bus_unsubscribe },
        { BUS_MANAGER_INTERFACE, "Why", "aya{sv}tu", VERB_WHY, NULL, bus_admin },
        { BUS_MANAGER_INTERFACE, "History", "a{sv}tu", VERB_HISTORY, NULL, bus_admin },
        { BUS_MANAGER_INTERFACE, "Verify", "aaya{sv}tu", VERB_VERIFY, NULL, bus_admin },
        { BUS_MANAGER_INTERFACE, "Audit", "a{sv}tu", VERB_AUDIT, NULL, bus_admin },
        { BUS_MANAGER_INTERFACE, "Repair", "aaya{sv}", VERB_REPAIR, "org.pycqueue.repair", bus_admin },
        { BUS_MANAGER_INTERFACE, "Clean", "aaya{sv}", VERB_CLEAN, "org.pycqueue.clean", bus_admin },
        {},
};

DBusHandlerResult bus_manager_message(Bus *b, DBusConnection *c, DBusMessage *m) {
        DBusMessage *reply = NULL;
        bool request_node = strcmp(dbus_message_get_path(m), BUS_PATH) != 0;

        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        if (dbus_message_is_method_call(m, DBUS_INTERFACE_INTROSPECTABLE, "Introspect"))
                reply = request_node ? bus_request_children(b, m)
                                     : bus_introspect_reply(m, BUS_MANAGER_INTERFACE,
                                                            "  <node name=\"request\"/>\n");
        else if (request_node)
                reply = dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_METHOD, "no such method here");
        else if (dbus_message_has_interface(m, DBUS_INTERFACE_PROPERTIES))
                reply = bus_properties_reply(b, m);
        else {
                DBusHandlerResult r = bus_call_method(b, c, m, bus_manager_methods, 0);
                if (r != DBUS_HANDLER_RESULT_NOT_YET_HANDLED)
                        return r;
                reply = dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_METHOD, "no such method");
        }
        return bus_send_reply(c, reply);
}
