/* SPDX-License-Identifier: MIT */
#pragma once

/* The only code that writes .pyc files. See writer.c for the model. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The suffix of our temporary names; nothing with it is ever a .pyc. */
#define WRITER_TEMP_SUFFIX ".pycqueue-tmp"

/* Opens @source_dir_fd's __pycache__, creating it (mode 0755) when @create.
 * A __pycache__ that is a symlink or not a directory is refused with
 * -ENOTDIR/-ELOOP. Returns -ENOENT when absent and !@create. */
int writer_open_cache_dir(int source_dir_fd, bool create, int *ret_fd);

/* Fails with -EEXIST when something other than a regular file (a symlink,
 * FIFO, device, socket or directory) stands at @name, as py_compile refuses
 * it; 0 when @name is absent or a regular file. */
int writer_check_target(int dir_fd, const char *name);

/* Atomically replaces @name in @dir_fd with @size bytes of @data, mode @mode.
 * With @durable, the data is fsynced before the rename and the directory
 * after it. The fd is not consumed. On failure no file named @name changed
 * and no temporary file is left behind. */
int writer_replace_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode, bool durable);

/* writer_replace_at() into @source_dir_fd's __pycache__, creating it when
 * absent. A clean may remove an empty __pycache__ between our opening it
 * and our linking the file in (an unlinked directory takes no new name):
 * then it is created again and the write retried, a bounded number of
 * times. -EEXIST for a symlink or non-directory at __pycache__. */
int writer_replace_in_cache(int source_dir_fd, const char *name, const void *data, size_t size, mode_t mode,
                            bool durable);

/* fsync()s @dir_fd, sharing one fsync with other threads syncing the same
 * directory at the same time. Returns once a sync that began after this
 * call has completed. */
int writer_sync_dir(int dir_fd);

/* Removes temporary files that a killed pycqueued left in @dir_fd. Returns
 * the number removed. */
int writer_remove_stale_temps(int dir_fd);
