/* SPDX-License-Identifier: MIT */
/* Trusting an interpreter file.
 *
 * Whatever a worker returns is written as a .pyc that root will import, so
 * the program that runs as a worker decides what code root runs later. The
 * daemon therefore runs only an interpreter that no untrusted user can
 * change: the canonical file and each directory on its way from / must be
 * owned by root (or by the daemon's own user, for a daemon run by an
 * ordinary user) and not writable by anyone else. A world-writable
 * directory with the sticky bit (/tmp) is acceptable above an entry a
 * trusted user owns, since nobody else may rename or remove that entry.
 * Symlinks on the way are resolved first (realpath) and the daemon then
 * runs the canonical path, so a link someone else owns changes nothing. */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "interpreter.h"
#include "macro.h"
#include "util.h"

static bool trusted_owner(uid_t uid) {
        return uid == 0 || uid == geteuid();
}

/* Checks @path (a file or a directory) against the rules above; @child_st is
 * the entry below it, NULL for the file itself. */
static int check_one(const char *name, const char *path, const struct stat *st, const struct stat *child_st,
                     char **ret_message) {
        const char *what = child_st ? "its directory " : "";
        const char *where = child_st ? path : "";

        if (!trusted_owner(st->st_uid))
                return error_message(ret_message, -EPERM,
                                     "interpreter %s: %s%s is owned by uid %u, not root; refusing to run it",
                                     name, child_st ? what : "the file", where, (unsigned)st->st_uid);
        if ((st->st_mode & S_IWGRP) && st->st_gid != 0)
                return error_message(ret_message, -EPERM,
                                     "interpreter %s: %s%s is writable by group %u; refusing to run it",
                                     name, child_st ? what : "the file", where, (unsigned)st->st_gid);
        if (st->st_mode & S_IWOTH) {
                bool sticky_dir = S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX) && child_st &&
                                  trusted_owner(child_st->st_uid);
                if (!sticky_dir)
                        return error_message(
                                ret_message, -EPERM,
                                "interpreter %s: %s%s is writable by any user; refusing to run it", name,
                                child_st ? what : "the file", where);
        }
        /* An extended ACL can grant write to others whatever the mode says;
         * a trusted path needs none. */
        if (lgetxattr(path, "system.posix_acl_access", NULL, 0) > 0)
                return error_message(ret_message, -EPERM,
                                     "interpreter %s: %s%s has an access ACL; refusing to run it", name,
                                     child_st ? what : "the file", where);
        return 0;
}

int interpreter_resolve(const char *name, char **ret_path, InterpreterId *ret_id, char **ret_message) {
        _cleanup_free_ char *real = NULL, *walk = NULL;
        struct stat st, child;

        *ret_message = NULL;
        real = realpath(name, NULL);
        if (!real)
                return error_message(ret_message, negative_errno(), "interpreter %s: cannot be found", name);
        if (stat(real, &st) < 0)
                return error_message(ret_message, negative_errno(), "interpreter %s: cannot be found", name);
        if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
                return error_message(ret_message, -ENOEXEC, "interpreter %s: not an executable file", name);
        if (check_one(name, real, &st, NULL, ret_message) < 0)
                return -EPERM;

        walk = strdup(real);
        if (!walk)
                return -ENOMEM;
        child = st;
        for (;;) {
                char *slash = strrchr(walk, '/');
                struct stat dst;

                if (!slash)
                        break;
                if (slash == walk)
                        slash[1] = '\0';
                else
                        *slash = '\0';
                if (lstat(walk, &dst) < 0)
                        return error_message(ret_message, negative_errno(),
                                             "interpreter %s: cannot check its directory", name);
                if (check_one(name, walk, &dst, &child, ret_message) < 0)
                        return -EPERM;
                if (strcmp(walk, "/") == 0)
                        break;
                child = dst;
        }
        *ret_id =
                (InterpreterId){ .dev = st.st_dev, .ino = st.st_ino, .uid = st.st_uid, .mode = st.st_mode };
        *ret_path = TAKE_PTR(real);
        return 0;
}

bool interpreter_id_equal(const InterpreterId *a, const InterpreterId *b) {
        return a->dev == b->dev && a->ino == b->ino && a->uid == b->uid && a->mode == b->mode;
}
