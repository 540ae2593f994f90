/* SPDX-License-Identifier: MIT */
#pragma once

/* The log's per-file and per-request events of compile requests, with the
 * journal fields fleets aggregate on (see joblog.c). */

#include <stdint.h>

#include "protocol.h"
#include "forward.h"

/* Failures logged one by one per request; past that, only counted in the
 * request's summary. */
#define JOBLOG_MAX_FAILURES_PER_REQUEST 100u

/* One file's outcome for request @r (which counts the failures it logs).
 * @target may be NULL when the failure came before a target was known. */
void joblog_file(Request *r, const char *source, const char *target, Outcome outcome, const char *error_type,
                 uint32_t line, const char *message);
/* Request @r finished (@error: negative errno when it failed as a whole). */
void joblog_request_finished(const Request *r, int error, const char *message);
