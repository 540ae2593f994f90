/* SPDX-License-Identifier: MIT */
/* The administration methods over the bus: Why, History, Verify, Audit,
 * Repair and Clean.
 *
 * Each is the socket's verb: its arguments become the verb's frame
 * (bus-util.c), spec_parse() and dispatch_authorize() decide as for a socket
 * client, and admin_start_hooked() runs the same Admin request, whose
 * records come back here through AdminHooks instead of a socket. A read-only
 * verb of a caller who is not privileged runs with that caller's filesystem
 * identity: its uid, the group of its passwd entry, and the supplementary
 * groups the bus reports (GetConnectionCredentials' UnixGroupIDs), or,
 * from a bus that does not, those of the user's entry. The user database
 * is read by the request on its I/O thread, never here on the loop.
 *
 * A bus message is bounded, so replies are pages. The read-only methods take
 * a cursor (the index of the first record, 0 at first) and a limit, and
 * return the records of the page, the verb's summary and the cursor of the
 * next page (0 when none is left). Each page runs the verb again: records
 * before the cursor are read and dropped, so the daemon holds one page at a
 * time, whatever the caller asks for; why, history and audit stop reading at
 * the page's end. A page also ends early once BUS_ADMIN_MAX_BYTES of records
 * are in it. Repair and Clean change files, so they cannot be asked again
 * for a later page: they return their first BUS_ADMIN_MAX_PAGE records, and
 * their summary says how many more there were (the provenance database has
 * them all). Past the daemon's max_reply_rows, where the socket's reply says
 * "truncated", a page that cannot be filled is an error, TooManyRecords:
 * the caller narrows its question instead of missing records silently. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "bus-private.h"
#include "manager.h"
#include "util.h"

/* Records in one page at most, and by default. */
#define BUS_ADMIN_MAX_PAGE 1000u
#define BUS_ADMIN_DEFAULT_PAGE 100u
/* Bytes of records in one reply at most: well below the 32 MiB a system
 * bus passes by default. */
#define BUS_ADMIN_MAX_BYTES (8u * 1024u * 1024u)

typedef struct BusAdmin {
        BusCall *call;
        DBusMessage *reply;
        DBusMessageIter it, records;
        bool paged;
        bool full;   /* a record was left out: the page is complete */
        bool failed; /* out of memory building the reply */
        uint64_t cursor, limit;
        uint64_t index; /* records that came so far */
        uint64_t returned, bytes, next;
} BusAdmin;

static BusAdmin *bus_admin_free(BusAdmin *ba) {
        if (!ba)
                return NULL;
        if (ba->reply) {
                dbus_message_iter_abandon_container_if_open(&ba->it, &ba->records);
                dbus_message_unref(ba->reply);
        }
        bus_call_free(ba->call);
        free(ba);
        return NULL;
}

static void bus_admin_on_record(uint8_t *frame, size_t size, void *userdata) {
        _cleanup_free_ uint8_t *f = frame;
        BusAdmin *ba = userdata;
        uint64_t i = ba->index++;

        if (i < ba->cursor || ba->failed)
                return;
        /* A page holds at least one record, whatever its size: a
         * caller paging on always gets somewhere. */
        if (ba->full || ba->returned >= ba->limit ||
            (ba->returned > 0 && ba->bytes + size > BUS_ADMIN_MAX_BYTES)) {
                if (!ba->full)
                        ba->next = i;
                ba->full = true;
                return;
        }
        if (!bus_append_stat_dict(&ba->records, f, size, NULL)) {
                ba->failed = true;
                return;
        }
        ba->returned++;
        ba->bytes += size;
}

static void bus_admin_on_done(int error, const char *message, const uint8_t *done, size_t size,
                              void *userdata) {
        BusAdmin *ba = userdata;
        BusCall *call = ba->call;
        DBusMessageIter summary;
        bool truncated = false, ok;

        if (error < 0) {
                bus_call_return_error(call, error, message);
                bus_admin_free(ba);
                return;
        }
        ok = !ba->failed && dbus_message_iter_close_container(&ba->it, &ba->records) &&
             dbus_message_iter_open_container(&ba->it, DBUS_TYPE_ARRAY, "{sv}", &summary);
        if (ok) {
                uint64_t omitted = ba->index - ba->returned;

                ok = bus_append_stat_entries(&summary, done, size, &truncated) &&
                     (ba->paged || !ba->full ||
                      bus_append_dict_variant(&summary, "records_omitted", DBUS_TYPE_UINT64, &omitted));
                if (ok)
                        ok = dbus_message_iter_close_container(&ba->it, &summary);
                else
                        dbus_message_iter_abandon_container(&ba->it, &summary);
        }
        if (ok && ba->paged) {
                if (truncated && !ba->full && ba->returned < ba->limit) {
                        /* max_reply_rows ended the verb inside this page. */
                        bus_call_return_error(call, -EMSGSIZE,
                                              "the records of this page lie beyond max_reply_rows, the most "
                                              "pycqueued reads for one question; ask a narrower one");
                        bus_admin_free(ba);
                        return;
                }
                if (truncated && !ba->full)
                        ba->next = ba->cursor + ba->returned;
                ok = dbus_message_iter_append_basic(&ba->it, DBUS_TYPE_UINT64, &ba->next);
        }
        if (!ok) {
                bus_call_reply(call, NULL);
                bus_admin_free(ba);
                return;
        }
        bus_call_reply(call, TAKE_PTR(ba->reply));
        bus_admin_free(ba);
}

static const AdminHooks bus_admin_hooks = {
        .on_record = bus_admin_on_record,
        .on_done = bus_admin_on_done,
};

/* The filesystem identity of a caller who is not privileged, as far as the
 * bus knows it: its uid and the supplementary groups it reported. The group
 * of its passwd entry (and the entry's groups, when the bus said none) are
 * left to the request to look up (AdminCaller). Returns whether the groups
 * are still to be looked up. */
static bool bus_caller_fsid(const BusCall *call, FsId *ret) {
        *ret = (FsId){ .uid = call->uid, .gid = (gid_t)-1 };
        if (!call->have_groups)
                return true;
        /* More groups than fit: none, never an arbitrary subset. */
        if (call->n_groups > 0 && call->n_groups <= FSID_MAX_GROUPS && call->groups) {
                memcpy(ret->groups, call->groups, call->n_groups * sizeof(gid_t));
                ret->n_groups = call->n_groups;
        }
        return false;
}

/* The cursor and limit of a paged method: its last two arguments. */
static void bus_admin_page(BusAdmin *ba) {
        DBusMessageIter it;
        uint64_t cursor = 0;
        uint32_t limit = 0;

        if (dbus_message_iter_init(ba->call->message, &it))
                do {
                        if (dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_UINT64)
                                dbus_message_iter_get_basic(&it, &cursor);
                        else if (dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_UINT32)
                                dbus_message_iter_get_basic(&it, &limit);
                } while (dbus_message_iter_next(&it));
        ba->cursor = cursor;
        ba->limit = limit == 0 ? BUS_ADMIN_DEFAULT_PAGE : MIN(limit, BUS_ADMIN_MAX_PAGE);
}

void bus_admin(BusCall *call) {
        Manager *m = call->bus->manager;
        Verb verb = call->method->verb;
        _cleanup_free_ char *message = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        _cleanup_(spec_freep) Spec *s = NULL;
        _cleanup_free_ FsId *fsid = NULL;
        AdminCaller caller = {};
        MsgReader reader;
        BusAdmin *ba;
        bool resolve_groups = false;
        int k;

        ba = calloc(1, sizeof(*ba));
        if (!ba) {
                bus_call_reply(call, NULL);
                bus_call_free(call);
                return;
        }
        ba->call = call;
        ba->paged = verb == VERB_WHY || verb == VERB_HISTORY || verb == VERB_VERIFY || verb == VERB_AUDIT;
        if (ba->paged)
                bus_admin_page(ba);
        else
                ba->limit = BUS_ADMIN_MAX_PAGE;

        k = bus_call_spec(call, verb, &frame, &reader, &s, &message);
        if (k >= 0 && ba->paged && (verb == VERB_WHY || verb == VERB_HISTORY || verb == VERB_AUDIT))
                /* The database is read up to the page's end, and one more:
                 * whether there is a next page. */
                s->limit = ba->cursor > UINT64_MAX - ba->limit - 1 ? UINT64_MAX : ba->cursor + ba->limit + 1;
        if (k >= 0)
                k = dispatch_authorize(m, call->caller, call->uid, s, &message);
        if (k >= 0 && !(fsid = calloc(1, sizeof(*fsid))))
                k = -ENOMEM;
        if (k >= 0) {
                if (call->caller == CALLER_PRIVILEGED)
                        *fsid = (FsId){ .uid = call->uid };
                else
                        resolve_groups = bus_caller_fsid(call, fsid);
                caller = (AdminCaller){
                        .uid = call->uid,
                        .pid = call->pid,
                        .caller = call->caller,
                        .fsid = fsid,
                        .resolve_gid = call->caller != CALLER_PRIVILEGED,
                        .resolve_groups = resolve_groups,
                };
                ba->reply = dbus_message_new_method_return(call->message);
                if (!ba->reply)
                        k = -ENOMEM;
        }
        if (k >= 0) {
                dbus_message_iter_init_append(ba->reply, &ba->it);
                if (!dbus_message_iter_open_container(&ba->it, DBUS_TYPE_ARRAY, "a{sv}", &ba->records))
                        k = -ENOMEM;
        }
        if (k >= 0)
                /* From here the hooks own @ba: on_done answers and frees it. */
                k = admin_start_hooked(m, &caller, TAKE_PTR(s), &bus_admin_hooks, ba, &message);
        if (k < 0) {
                bus_call_return_error(call, k, message);
                bus_admin_free(ba);
        }
}
