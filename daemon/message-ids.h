/* SPDX-License-Identifier: MIT */
#pragma once

/* The journal's MESSAGE_IDs of the daemon's events, one fixed 128-bit id
 * per kind of event, so that `journalctl MESSAGE_ID=...` finds every one of
 * them whatever its wording. Generated once; they are a contract, listed in
 * pycqueued(8) under LOGGING: never change one, add a new one instead. */

#define MESSAGE_ID_FIELD(id) "MESSAGE_ID=" id

/* A file failed to compile (PYCQUEUE_OUTCOME=failed). */
#define PYCQUEUE_MESSAGE_FILE_FAILED "195b7d134fbd47b4b580a2b3d7945b61"
/* A file compiled, was up to date, or was coalesced (at debug level). */
#define PYCQUEUE_MESSAGE_FILE_DONE "5f96e02f01d4420bbdd99d5eb8bc3251"
/* A compile request finished: its counts. */
#define PYCQUEUE_MESSAGE_REQUEST_FINISHED "28991894489c480282e38ae34d1c88f0"
/* Provenance recording became degraded (the database cannot be written). */
#define PYCQUEUE_MESSAGE_DEGRADED "0a7b7b766ebe494fb295687342836449"
/* Provenance recording works again after being degraded. */
#define PYCQUEUE_MESSAGE_RECOVERED "5ef0b26dd6aa421ba44f4c2a8f2375e9"
