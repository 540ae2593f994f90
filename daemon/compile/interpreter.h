/* SPDX-License-Identifier: MIT */
#pragma once

/* Which interpreter files the daemon is willing to run (see interpreter.c). */

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

/* The identity of an interpreter file when its pool was started. */
typedef struct InterpreterId {
        dev_t dev;
        ino_t ino;
        uid_t uid;
        mode_t mode;
} InterpreterId;

/* Canonicalizes @name and checks that the file it names is a regular
 * executable that only a trusted user (root, or the daemon's own uid) can
 * change: the file and every directory above it are owned by a trusted user
 * and writable by no one else. Returns 0 with the canonical path and the
 * file's identity, or a negative errno with an explanation in @ret_message. */
int interpreter_resolve(const char *name, char **ret_path, InterpreterId *ret_id, char **ret_message);
bool interpreter_id_equal(const InterpreterId *a, const InterpreterId *b);
