/* SPDX-License-Identifier: MIT */
#pragma once
#include "forward.h"

/* Catches .pyc files written by processes other than pycqueued, with
 * fanotify (see audit.c). */


/* Watches the mounts of the colon-separated @roots. */
int audit_new(Manager *m, const char *roots, Audit **ret);
Audit *audit_free(Audit *a);
