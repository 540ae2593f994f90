/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/* Path handling for a daemon that writes where root asks it to: paths are
 * canonicalized once, then every directory is opened component by component
 * with O_NOFOLLOW|O_DIRECTORY, so a symlink swapped in after the
 * canonicalization is refused (ELOOP/ENOTDIR), never followed. All later
 * file access is relative to the directory fds obtained here. */

/* realpath(3) with negative-errno returns. */
int safepath_canonicalize(const char *path, char **ret);
/* Canonicalizes a path a client named: a directory fully, a file only by
 * its directory, so that a symlinked module keeps its own name (its .pyc
 * belongs beside the link, as with py_compile). With @allow_missing, parent
 * directories that do not exist are kept as named below the deepest one
 * that does (a removed __pycache__ still names records). */
int safepath_canonicalize_named(const char *path, bool allow_missing, char **ret);
/* Opens the absolute directory @path without following any symlink. */
int safepath_open_dir(const char *path, int *ret_fd);
/* The same with O_PATH: for a directory only looked up in, by a caller
 * whose rights may allow searching the directories on the way but not
 * reading them. */
int safepath_open_dir_path(const char *path, int *ret_fd);
/* Opens the parent directory of absolute @path without following symlinks;
 * @ret_name points into @path at the last component. */
int safepath_open_parent(const char *path, int *ret_dir_fd, const char **ret_name);
/* Closes the directory fds that safepath_open_parent() keeps for reuse.
 * Each one pins its file system: call it before answering a request, so
 * that a tree the request named can be unmounted as soon as the answer
 * arrives. Thread-safe. */
void safepath_forget_cached(void);
