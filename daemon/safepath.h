/* SPDX-License-Identifier: MIT */
#pragma once

/* Path handling for a daemon that writes where root asks it to: paths are
 * canonicalized once, then every directory is opened component by component
 * with O_NOFOLLOW|O_DIRECTORY, so a symlink swapped in after the
 * canonicalization is refused (ELOOP/ENOTDIR), never followed. All later
 * file access is relative to the directory fds obtained here. */

/* realpath(3) with negative-errno returns. */
int safepath_canonicalize(const char *path, char **ret);
/* Opens the absolute directory @path without following any symlink. */
int safepath_open_dir(const char *path, int *ret_fd);
/* Opens the parent directory of absolute @path without following symlinks;
 * @ret_name points into @path at the last component. */
int safepath_open_parent(const char *path, int *ret_dir_fd, const char **ret_name);
