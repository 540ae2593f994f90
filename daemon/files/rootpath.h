/* SPDX-License-Identifier: MIT */
#pragma once

/* Paths inside another root directory: a chroot a client runs in, or an
 * installer's --root target (see rootpath.c).
 *
 * The daemon handles a path inside root R as the host path R + inside: one
 * string that the rest of the daemon (walks, jobs, the writer, provenance)
 * treats like any other absolute path. What differs is how a client's path
 * becomes that string, which this file does as the chroot would: symlinks
 * are resolved against R, never against the host's /, and a path that
 * would climb out of R is refused. @root is always a canonical absolute
 * host path other than "/"; NULL means the daemon's own root. */

#include <stdbool.h>
#include <stddef.h>

/* Resolves @path (absolute, as seen inside @root) the way
 * safepath_canonicalize_named() does on the host — a directory fully, a
 * file only by its directory, so that a symlinked module keeps its name;
 * with @allow_missing, missing components are kept as named — and returns
 * the host path. With @root NULL it is safepath_canonicalize_named().
 * -EXDEV for a ".." or a symlink that would leave @root. */
int rootpath_canonicalize_named(const char *root, const char *path, bool allow_missing, char **ret);
/* Resolves @path inside @root following every symlink, like realpath(3)
 * inside the chroot; the host path. With @root NULL, realpath(3). */
int rootpath_canonicalize(const char *root, const char *path, char **ret);
/* The root a request works in: @peer_root (the client's own root, or NULL)
 * with @requested (its --root, as the client sees it, or NULL) resolved
 * inside. Returns NULL in @ret for the daemon's own root. @requested must
 * name a directory. */
int rootpath_join(const char *peer_root, const char *requested, char **ret);
/* @host as the client in @root sees it: @host without the root's prefix
 * ("/" for the root itself). @host itself when @root is NULL or @host is not
 * inside it. */
const char *rootpath_inside(const char *root, const char *host);
/* The length of the prefix rootpath_inside() strips: 0 for no root. */
size_t rootpath_prefix_len(const char *root);
