/* SPDX-License-Identifier: MIT */
/* What the bus front end needs beyond libdbus: appending text that may not
 * be UTF-8, the errno → D-Bus error table, and the translation of a call's
 * arguments into the socket's request frame.
 *
 * libdbus aborts the whole process when a string it is asked to send is
 * not valid UTF-8. Paths are bytes, so they travel as ay; every other
 * string that comes from a file system or an interpreter (a pool's error,
 * a degraded database's reason) goes through bus_append_string(), which
 * sends a copy with the offending bytes replaced.
 *
 * Arguments are not parsed here into a request: they are written as the
 * frame a socket client would send, and spec_parse() reads that, with the
 * same limits and the same checks. A bus caller can ask for nothing a
 * socket client could not, and the frame is what the durable queue stores. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-private.h"
#include "protocol.h"
#include "util.h"

bool bus_append_string(DBusMessageIter *it, const char *s) {
        _cleanup_free_ char *copy = NULL;

        if (!s)
                s = "";
        if (!dbus_validate_utf8(s, NULL)) {
                copy = strdup(s);
                if (!copy)
                        return false;
                /* Byte by byte: anything outside ASCII becomes '?', which
                 * is valid whatever surrounded it. */
                for (char *p = copy; *p; p++)
                        if ((unsigned char)*p >= 0x80)
                                *p = '?';
                s = copy;
        }
        return dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &s);
}

bool bus_append_bytes(DBusMessageIter *it, const void *data, size_t size) {
        DBusMessageIter a;

        return dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "y", &a) &&
               dbus_message_iter_append_fixed_array(&a, DBUS_TYPE_BYTE, &data, (int)size) &&
               dbus_message_iter_close_container(it, &a);
}

DBusHandlerResult bus_send_reply(DBusConnection *c, DBusMessage *reply) {
        if (!reply)
                return DBUS_HANDLER_RESULT_NEED_MEMORY;
        (void)dbus_connection_send(c, reply, NULL);
        dbus_message_unref(reply);
        return DBUS_HANDLER_RESULT_HANDLED;
}

bool bus_append_counters(DBusMessageIter *it, const char *const *names, const uint64_t *values, size_t n) {
        DBusMessageIter a, e;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{st}", &a))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!dbus_message_iter_open_container(&a, DBUS_TYPE_DICT_ENTRY, NULL, &e) ||
                    !dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &names[i]) ||
                    !dbus_message_iter_append_basic(&e, DBUS_TYPE_UINT64, &values[i]) ||
                    !dbus_message_iter_close_container(&a, &e))
                        return false;
        return dbus_message_iter_close_container(it, &a);
}

static bool bus_open_entry(DBusMessageIter *dict, const char *key, const char *signature,
                           DBusMessageIter *entry, DBusMessageIter *variant) {
        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, entry) &&
               dbus_message_iter_append_basic(entry, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_open_container(entry, DBUS_TYPE_VARIANT, signature, variant);
}

static bool bus_close_entry(DBusMessageIter *dict, DBusMessageIter *entry, DBusMessageIter *variant) {
        return dbus_message_iter_close_container(entry, variant) &&
               dbus_message_iter_close_container(dict, entry);
}

bool bus_append_dict_variant(DBusMessageIter *dict, const char *key, int type, const void *value) {
        char signature[2] = { (char)type, 0 };
        DBusMessageIter entry, variant;

        return bus_open_entry(dict, key, signature, &entry, &variant) &&
               dbus_message_iter_append_basic(&variant, type, value) &&
               bus_close_entry(dict, &entry, &variant);
}

bool bus_append_dict_string(DBusMessageIter *dict, const char *key, const char *value) {
        DBusMessageIter entry, variant;

        return bus_open_entry(dict, key, "s", &entry, &variant) && bus_append_string(&variant, value) &&
               bus_close_entry(dict, &entry, &variant);
}

bool bus_append_dict_bytes(DBusMessageIter *dict, const char *key, const char *value) {
        DBusMessageIter entry, variant;

        return bus_open_entry(dict, key, "ay", &entry, &variant) &&
               bus_append_bytes(&variant, value, value ? strlen(value) : 0) &&
               bus_close_entry(dict, &entry, &variant);
}

const char *bus_error_name(int error) {
        switch (error < 0 ? -error : error) {
        case EPERM:
        case EACCES:
                return DBUS_ERROR_ACCESS_DENIED;
        case EINVAL:
        case EBADMSG:
        case E2BIG:
        case ENAMETOOLONG:
                return DBUS_ERROR_INVALID_ARGS;
        case ESHUTDOWN:
                return BUS_ERROR_PREFIX "ShuttingDown";
        case EOPNOTSUPP:
                return BUS_ERROR_PREFIX "NotSupported";
        case EIO:
                return BUS_ERROR_PREFIX "DatabaseFailed";
        case ENOEXEC:
                return BUS_ERROR_PREFIX "InterpreterFailed";
        case EMSGSIZE:
        case ERANGE:
                return BUS_ERROR_PREFIX "TooManyRecords";
        case EUSERS:
        case EBUSY:
        case ENOBUFS:
                return DBUS_ERROR_LIMITS_EXCEEDED;
        case ENOMEM:
                return DBUS_ERROR_NO_MEMORY;
        case ENOENT:
        case ENOTDIR:
        case ELOOP:
        case EXDEV:
                /* A --root, or an interpreter, the call names that is not
                 * there (or leads out of the root): the argument is wrong.
                 * Not UnknownObject, which says the called object path is. */
                return DBUS_ERROR_INVALID_ARGS;
        default:
                return DBUS_ERROR_FAILED;
        }
}

DBusMessage *bus_error_reply(DBusMessage *call, int error, const char *message) {
        _cleanup_free_ char *copy = NULL;

        if (!message)
                message = strerror(error < 0 ? -error : error);
        if (!dbus_validate_utf8(message, NULL)) {
                copy = strdup(message);
                if (!copy)
                        return NULL;
                for (char *p = copy; *p; p++)
                        if ((unsigned char)*p >= 0x80)
                                *p = '?';
                message = copy;
        }
        return dbus_message_new_error(call, bus_error_name(error), message);
}

/* --- records ---------------------------------------------------------------------- */

/* The fields of a record that name files or carry command lines (the last
 * component of a dotted key: "parents.0.exe"): bytes on the bus. */
static bool stat_key_is_bytes(const char *key) {
        static const char *const names[] = { "path", "source",  "target",      "pyc",
                                             "exe",  "cmdline", "interpreter", "root" };
        const char *last = strrchr(key, '.');

        last = last ? last + 1 : key;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(last, names[i]) == 0)
                        return true;
        return false;
}

static bool append_stat(DBusMessageIter *dict, const char *key, char kind, const char *value) {
        if (kind == 'b') {
                dbus_bool_t b = strcmp(value, "true") == 0;
                return bus_append_dict_variant(dict, key, DBUS_TYPE_BOOLEAN, &b);
        }
        if (kind == 'n') {
                char *end = NULL;

                errno = 0;
                if (value[0] != '-' && !strpbrk(value, ".eE")) {
                        uint64_t t = strtoull(value, &end, 10);
                        if (errno == 0 && end && *end == '\0')
                                return bus_append_dict_variant(dict, key, DBUS_TYPE_UINT64, &t);
                } else if (!strpbrk(value, ".eE")) {
                        int64_t x = strtoll(value, &end, 10);
                        if (errno == 0 && end && *end == '\0')
                                return bus_append_dict_variant(dict, key, DBUS_TYPE_INT64, &x);
                }
                double d = strtod(value, &end);
                return bus_append_dict_variant(dict, key, DBUS_TYPE_DOUBLE, &d);
        }
        if (stat_key_is_bytes(key))
                return bus_append_dict_bytes(dict, key, value);
        return bus_append_dict_string(dict, key, value);
}

bool bus_append_stat_entries(DBusMessageIter *dict, const uint8_t *frame, size_t size, bool *ret_truncated) {
        MsgReader r;
        MsgField f;

        if (ret_truncated)
                *ret_truncated = false;
        if (frame && msg_parse(frame, size, &r) >= 0)
                while (msg_next(&r, &f) > 0) {
                        _cleanup_free_ char *value = NULL;
                        const uint8_t *data;
                        const char *key;
                        size_t n;
                        char kind;

                        if (f.tag != TAG_STAT || field_stat(&f, &key, &kind, &data, &n) < 0)
                                continue;
                        value = strndup((const char *)data, n);
                        if (!value)
                                return false;
                        if (!dbus_validate_utf8(key, NULL))
                                continue; /* the daemon's own keys are ASCII */
                        if (!append_stat(dict, key, kind, value))
                                return false;
                        if (ret_truncated && kind == 'b' && strcmp(key, "truncated") == 0)
                                *ret_truncated = strcmp(value, "true") == 0;
                }
        return true;
}

bool bus_append_stat_dict(DBusMessageIter *it, const uint8_t *frame, size_t size, bool *ret_truncated) {
        DBusMessageIter dict;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict))
                return false;
        if (!bus_append_stat_entries(&dict, frame, size, ret_truncated)) {
                dbus_message_iter_abandon_container(it, &dict);
                return false;
        }
        return dbus_message_iter_close_container(it, &dict);
}

/* --- arguments into a frame ---------------------------------------------------- */

static int bad(char **ret_message, const char *what) {
        return error_message(ret_message, -EINVAL, "%s", what);
}

/* An ay into a TAG field of its bytes (NUL bytes included: the parser
 * refuses what it must). */
static int put_bytes(MsgWriter *w, uint16_t tag, DBusMessageIter *it) {
        DBusMessageIter a;
        const uint8_t *data = NULL;
        int n = 0;

        if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY ||
            dbus_message_iter_get_element_type(it) != DBUS_TYPE_BYTE)
                return -EINVAL;
        dbus_message_iter_recurse(it, &a);
        dbus_message_iter_get_fixed_array(&a, &data, &n);
        return msg_put_bytes(w, tag, data ? data : (const uint8_t *)"", (size_t)n);
}

/* An aay into one TAG field per element. */
static int put_byte_arrays(MsgWriter *w, uint16_t tag, DBusMessageIter *it) {
        DBusMessageIter a;
        int r;

        if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY)
                return -EINVAL;
        for (dbus_message_iter_recurse(it, &a); dbus_message_iter_get_arg_type(&a) != DBUS_TYPE_INVALID;
             dbus_message_iter_next(&a)) {
                r = put_bytes(w, tag, &a);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int put_strings(MsgWriter *w, uint16_t tag, DBusMessageIter *it) {
        DBusMessageIter a;
        const char *s;
        int r;

        if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY ||
            dbus_message_iter_get_element_type(it) != DBUS_TYPE_STRING)
                return -EINVAL;
        for (dbus_message_iter_recurse(it, &a); dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING;
             dbus_message_iter_next(&a)) {
                dbus_message_iter_get_basic(&a, &s);
                r = msg_put_string(w, tag, s);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int put_bool(MsgWriter *w, uint16_t tag, DBusMessageIter *v) {
        dbus_bool_t b;

        if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_BOOLEAN)
                return -EINVAL;
        dbus_message_iter_get_basic(v, &b);
        return b ? msg_put_u64(w, tag, 1) : 0;
}

static int put_string(MsgWriter *w, uint16_t tag, DBusMessageIter *v) {
        const char *s;

        if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_STRING)
                return -EINVAL;
        dbus_message_iter_get_basic(v, &s);
        return msg_put_string(w, tag, s);
}

/* Compile's options: each key once in meaning (the parser keeps the last),
 * each with one type; anything else is an error, not ignored, so that a
 * caller's typo does not compile something else than it asked. */
static int put_compile_option(MsgWriter *w, const char *key, DBusMessageIter *v, char **ret_message) {
        int r;

        if (strcmp(key, "force") == 0)
                r = put_bool(w, TAG_FORCE, v);
        else if (strcmp(key, "no_wait") == 0)
                r = put_bool(w, TAG_NO_WAIT, v);
        else if (strcmp(key, "package") == 0)
                r = put_string(w, TAG_PACKAGE, v);
        else if (strcmp(key, "root") == 0)
                r = put_bytes(w, TAG_ROOT, v);
        else if (strcmp(key, "pythons") == 0)
                r = put_byte_arrays(w, TAG_PYTHON, v);
        else if (strcmp(key, "excludes") == 0)
                r = put_strings(w, TAG_EXCLUDE, v);
        else if (strcmp(key, "invalidation_mode") == 0) {
                const char *s;
                int mode;

                if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_STRING)
                        return bad(ret_message, "option invalidation_mode takes a string");
                dbus_message_iter_get_basic(v, &s);
                mode = invalidation_mode_from_string(s);
                if (mode < 0)
                        return error_message(ret_message, -EINVAL, "unknown invalidation mode \"%s\"", s);
                r = msg_put_u64(w, TAG_INVALIDATION, (uint64_t)mode);
        } else if (strcmp(key, "optimization_levels") == 0) {
                DBusMessageIter a;
                uint32_t level;

                if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_ARRAY ||
                    dbus_message_iter_get_element_type(v) != DBUS_TYPE_UINT32)
                        return bad(ret_message, "option optimization_levels takes an array of uint32");
                r = 0;
                for (dbus_message_iter_recurse(v, &a);
                     r >= 0 && dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_UINT32;
                     dbus_message_iter_next(&a)) {
                        dbus_message_iter_get_basic(&a, &level);
                        r = msg_put_u64(w, TAG_OPT_LEVEL, level);
                }
        } else if (strcmp(key, "tool") == 0)
                return 0; /* read by the caller, for provenance */
        else
                return error_message(ret_message, -EINVAL, "unknown option \"%s\"", key);
        if (r == -EINVAL)
                return error_message(ret_message, -EINVAL, "option %s has the wrong type", key);
        return r;
}

static int put_admin_option(MsgWriter *w, Verb verb, const char *key, DBusMessageIter *v,
                            char **ret_message);

/* The a{sv} options at @it, each into the frame by its verb's rules. */
static int put_options(MsgWriter *w, Verb verb, DBusMessageIter *it, char **ret_message) {
        DBusMessageIter dict, entry, variant;
        int r;

        if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY)
                return bad(ret_message, "options must be a{sv}");
        for (dbus_message_iter_recurse(it, &dict);
             dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&dict)) {
                const char *key;

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &variant);
                r = verb == VERB_COMPILE ? put_compile_option(w, key, &variant, ret_message)
                                         : put_admin_option(w, verb, key, &variant, ret_message);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int put_compile(MsgWriter *w, DBusMessageIter *it, char **ret_message) {
        int r;

        r = put_byte_arrays(w, TAG_PATH, it);
        if (r < 0)
                return r == -EINVAL ? bad(ret_message, "paths must be an array of byte arrays") : r;
        dbus_message_iter_next(it);
        return put_options(w, VERB_COMPILE, it, ret_message);
}

/* The tool the options of a call name, or NULL. The options are its first
 * a{sv} argument. */
static const char *compile_tool(DBusMessage *m) {
        DBusMessageIter it, dict, entry, variant;
        const char *key, *tool = NULL;

        if (!dbus_message_iter_init(m, &it))
                return NULL;
        while (dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY ||
               dbus_message_iter_get_element_type(&it) != DBUS_TYPE_DICT_ENTRY)
                if (!dbus_message_iter_next(&it))
                        return NULL;
        for (dbus_message_iter_recurse(&it, &dict);
             dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&dict)) {
                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &variant);
                if (strcmp(key, "tool") == 0 && dbus_message_iter_get_arg_type(&variant) == DBUS_TYPE_STRING)
                        dbus_message_iter_get_basic(&variant, &tool);
        }
        return tool;
}

/* One option of an administration method. Each method takes only the
 * options its verb has; anything else is an error. */
static int put_admin_option(MsgWriter *w, Verb verb, const char *key, DBusMessageIter *v,
                            char **ret_message) {
        bool paths = verb == VERB_VERIFY || verb == VERB_REPAIR || verb == VERB_CLEAN;
        int r;

        if (strcmp(key, "tool") == 0)
                return 0; /* read by the caller, for provenance */
        if (strcmp(key, "root") == 0 && (paths || verb == VERB_WHY))
                r = put_bytes(w, TAG_ROOT, v);
        else if (strcmp(key, "package") == 0 && (paths || verb == VERB_HISTORY))
                r = put_string(w, TAG_PACKAGE, v);
        else if (strcmp(key, "pythons") == 0 && paths)
                r = put_byte_arrays(w, TAG_PYTHON, v);
        else if (strcmp(key, "path") == 0 && verb == VERB_HISTORY)
                r = put_bytes(w, TAG_PATH, v);
        else if (strcmp(key, "failed_only") == 0 && verb == VERB_HISTORY)
                r = put_bool(w, TAG_FAILED_ONLY, v);
        else if (strcmp(key, "since") == 0 && (verb == VERB_HISTORY || verb == VERB_AUDIT)) {
                uint64_t t;

                if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_UINT64)
                        return bad(ret_message, "option since takes a uint64 (Unix seconds)");
                dbus_message_iter_get_basic(v, &t);
                r = msg_put_u64(w, TAG_SINCE, t);
        } else
                return error_message(ret_message, -EINVAL, "unknown option \"%s\" for %s", key,
                                     verb_to_string(verb));
        if (r == -EINVAL)
                return error_message(ret_message, -EINVAL, "option %s has the wrong type", key);
        return r;
}

/* Why(ay path, a{sv}, ...), History(a{sv}, ...), Verify/Repair/Clean(aay
 * paths, a{sv}, ...), Audit(a{sv}, ...): what comes before the options is
 * the paths; the cursor and limit after them are the bus's (bus-admin.c). */
static int put_admin(MsgWriter *w, Verb verb, DBusMessageIter *it, char **ret_message) {
        int r = 0;

        if (verb == VERB_WHY)
                r = put_bytes(w, TAG_PATH, it);
        else if (verb == VERB_VERIFY || verb == VERB_REPAIR || verb == VERB_CLEAN)
                r = put_byte_arrays(w, TAG_PATH, it);
        if (r < 0)
                return r == -EINVAL ? bad(ret_message, "paths must be byte arrays") : r;
        if (verb != VERB_HISTORY && verb != VERB_AUDIT)
                dbus_message_iter_next(it);
        return put_options(w, verb, it, ret_message);
}

int bus_build_frame(DBusMessage *m, Verb verb, uint8_t **ret_frame, size_t *ret_size, char **ret_message) {
        static const uint16_t types[_VERB_MAX] = {
                [VERB_COMPILE] = MSG_COMPILE, [VERB_WAIT] = MSG_WAIT,     [VERB_WHY] = MSG_WHY,
                [VERB_HISTORY] = MSG_HISTORY, [VERB_VERIFY] = MSG_VERIFY, [VERB_REPAIR] = MSG_REPAIR,
                [VERB_CLEAN] = MSG_CLEAN,     [VERB_AUDIT] = MSG_AUDIT,
        };
        _cleanup_free_ char *tool = NULL;
        DBusMessageIter it;
        MsgWriter w;
        const char *package;
        int r;

        *ret_message = NULL;
        if (verb < 0 || verb >= _VERB_MAX || types[verb] == 0)
                return -EOPNOTSUPP;
        r = msg_writer_init(&w, types[verb]);
        if (r < 0)
                return r;
        /* Provenance: the request came over the bus, from this unique name
         * (uid and pid are the bus's, set on the request). */
        if (asprintf(&tool, "%s (D-Bus %s)", compile_tool(m) ?: "dbus", dbus_message_get_sender(m) ?: "?") <
            0) {
                tool = NULL;
                r = -ENOMEM;
        }
        if (r >= 0)
                r = msg_put_string(&w, TAG_CTX_TOOL, tool);
        if (r >= 0 && !dbus_message_iter_init(m, &it))
                r = -EINVAL;
        if (r >= 0) {
                switch (verb) {
                case VERB_COMPILE:
                        r = put_compile(&w, &it, ret_message);
                        break;
                case VERB_WAIT:
                        dbus_message_iter_get_basic(&it, &package);
                        if (*package)
                                r = msg_put_string(&w, TAG_PACKAGE, package);
                        break;
                case VERB_WHY:
                case VERB_HISTORY:
                case VERB_VERIFY:
                case VERB_REPAIR:
                case VERB_CLEAN:
                case VERB_AUDIT:
                        r = put_admin(&w, verb, &it, ret_message);
                        break;
                default:
                        break;
                }
        }
        if (r < 0) {
                msg_writer_done(&w);
                return r;
        }
        return msg_writer_finish(&w, ret_frame, ret_size);
}
