/* SPDX-License-Identifier: MIT */
#pragma once

/* Catches .pyc files written by processes other than pycqueued, with
 * fanotify (see audit.c). */

typedef struct Manager Manager;
typedef struct Audit Audit;

/* Watches the mounts of the colon-separated @roots. */
int audit_new(Manager *m, const char *roots, Audit **ret);
Audit *audit_free(Audit *a);
