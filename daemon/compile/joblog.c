/* SPDX-License-Identifier: MIT */
/* The log's events of compile requests, shaped for a fleet that reads
 * journals with `journalctl -o json` and aggregates on fields rather than
 * on wording.
 *
 * Volume: a distribution upgrade compiles tens of thousands of files in a
 * few minutes. One entry per compiled file at the default level would push
 * journald's per-service rate limit (by default 10000 entries in 30 s) and
 * make it drop entries — the failures among them, the ones that matter. So:
 *
 *   - a failed file is a warning with its own MESSAGE_ID, at most
 *     JOBLOG_MAX_FAILURES_PER_REQUEST of them per request; the rest are only
 *     counted (the provenance database keeps every one);
 *   - a file compiled, up to date or coalesced is a debug entry
 *     (--log-level=debug turns them on);
 *   - each compile request that compiled or failed anything ends with one
 *     info entry carrying its counts (debug when everything was up to date).
 *
 * Every entry names its request (PYCQUEUE_REQUEST, the provenance request
 * id: `pycqueue history` shows the rest), the requesting uid and the
 * package. Paths go into the journal as the bytes they are (the fields are
 * binary-safe, log.c sends them as iovecs); in MESSAGE, which is one line
 * meant for people, they are escaped (log_escape()). */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "joblog.h"
#include "log.h"
#include "message-ids.h"
#include "request.h"

/* Room for an escaped path in a message: long enough for any real path,
 * bounded so that the message keeps its end. */
#define JOBLOG_PATH_MAX 1024

static const char *outcome_field(Outcome o) {
        switch (o) {
        case OUTCOME_COMPILED:
                return "compiled";
        case OUTCOME_UP_TO_DATE:
                return "up-to-date";
        case OUTCOME_COALESCED:
                return "coalesced";
        case OUTCOME_FAILED:
                return "failed";
        default:
                return "unknown";
        }
}

static const char *request_package(const Request *r) {
        return r->package ? r->package : r->dpkg_package;
}

void joblog_file(Request *r, const char *source, const char *target, Outcome outcome, const char *error_type,
                 uint32_t line, const char *message) {
        char request[24], uid[24], line_text[16], shown[JOBLOG_PATH_MAX], why[JOBLOG_PATH_MAX];
        bool failed = outcome == OUTCOME_FAILED;
        int level = failed ? LOG_WARNING : LOG_DEBUG;

        if (level > log_get_max_level())
                return;
        if (failed && r->logged_failures++ >= JOBLOG_MAX_FAILURES_PER_REQUEST)
                return; /* counted in the summary */

        snprintf(request, sizeof(request), "%" PRIu64, r->id);
        snprintf(uid, sizeof(uid), "%u", (unsigned)r->uid);
        snprintf(line_text, sizeof(line_text), "%" PRIu32, line);
        const char *id = failed ? PYCQUEUE_MESSAGE_FILE_FAILED : PYCQUEUE_MESSAGE_FILE_DONE;
        LogField fields[] = {
                LOG_FIELD_STR("MESSAGE_ID", id),
                LOG_FIELD_STR("PYCQUEUE_REQUEST", request),
                LOG_FIELD_STR("PYCQUEUE_SOURCE", source),
                LOG_FIELD_STR("PYCQUEUE_TARGET", target),
                LOG_FIELD_STR("PYCQUEUE_PACKAGE", request_package(r)),
                LOG_FIELD_STR("PYCQUEUE_OUTCOME", outcome_field(outcome)),
                LOG_FIELD_STR("PYCQUEUE_UID", uid),
                LOG_FIELD_STR("PYCQUEUE_ERROR_TYPE", failed ? error_type : NULL),
                LOG_FIELD_STR("PYCQUEUE_ERROR_LINE", failed && line > 0 ? line_text : NULL),
        };

        log_escape(source ? source : "", source ? strlen(source) : 0, shown, sizeof(shown));
        log_escape(message ? message : "", message ? strlen(message) : 0, why, sizeof(why));
        if (!failed)
                log_struct_internal(level, 0, fields, ELEMENTSOF(fields), "%s %s (request %" PRIu64 ")",
                                    outcome_field(outcome), shown, r->id);
        else if (line > 0)
                log_struct_internal(level, 0, fields, ELEMENTSOF(fields),
                                    "Failed to compile %s:%" PRIu32 ": %s: %s (request %" PRIu64 ")", shown,
                                    line, error_type ? error_type : "Error", why, r->id);
        else
                log_struct_internal(level, 0, fields, ELEMENTSOF(fields),
                                    "Failed to compile %s: %s: %s (request %" PRIu64 ")", shown,
                                    error_type ? error_type : "Error", why, r->id);
}

void joblog_request_finished(const Request *r, int error, const char *message) {
        char request[24], uid[24], compiled[24], up_to_date[24], coalesced[24], failed[24], pkg[256];
        char why[JOBLOG_PATH_MAX];
        int level = r->compiled > 0 || r->failed > 0 || error < 0 ? LOG_INFO : LOG_DEBUG;
        const char *package = request_package(r);

        if (r->kind != REQUEST_COMPILE || level > log_get_max_level())
                return;

        snprintf(request, sizeof(request), "%" PRIu64, r->id);
        snprintf(uid, sizeof(uid), "%u", (unsigned)r->uid);
        snprintf(compiled, sizeof(compiled), "%" PRIu64, r->compiled);
        snprintf(up_to_date, sizeof(up_to_date), "%" PRIu64, r->up_to_date);
        snprintf(coalesced, sizeof(coalesced), "%" PRIu64, r->coalesced);
        snprintf(failed, sizeof(failed), "%" PRIu64, r->failed);
        LogField fields[] = {
                LOG_FIELD_STR("MESSAGE_ID", PYCQUEUE_MESSAGE_REQUEST_FINISHED),
                LOG_FIELD_STR("PYCQUEUE_REQUEST", request),
                LOG_FIELD_STR("PYCQUEUE_PACKAGE", package),
                LOG_FIELD_STR("PYCQUEUE_UID", uid),
                LOG_FIELD_STR("PYCQUEUE_TOOL", r->tool),
                LOG_FIELD_STR("PYCQUEUE_COMPILED", compiled),
                LOG_FIELD_STR("PYCQUEUE_UP_TO_DATE", up_to_date),
                LOG_FIELD_STR("PYCQUEUE_COALESCED", coalesced),
                LOG_FIELD_STR("PYCQUEUE_FAILED", failed),
        };

        log_escape(package ? package : "-", package ? strlen(package) : 1, pkg, sizeof(pkg));
        if (error < 0) {
                if (!message)
                        message = strerror(-error);
                log_struct_internal(level, error, fields, ELEMENTSOF(fields),
                                    "Request %" PRIu64 " (uid %u, package %s) failed: %s", r->id,
                                    (unsigned)r->uid, pkg,
                                    log_escape(message, strlen(message), why, sizeof(why)));
        } else
                log_struct_internal(
                        level, 0, fields, ELEMENTSOF(fields),
                        "Request %" PRIu64 " (uid %u, package %s): %" PRIu64 " compiled, %" PRIu64
                        " up to date, %" PRIu64 " coalesced, %" PRIu64 " failed%s",
                        r->id, (unsigned)r->uid, pkg, r->compiled, r->up_to_date, r->coalesced, r->failed,
                        r->logged_failures > JOBLOG_MAX_FAILURES_PER_REQUEST
                                ? " (only the first failures logged one by one)"
                                : "");
}
