/* SPDX-License-Identifier: MIT */
#pragma once

/* PEP 3147/488 cache names: "dir/NAME.py" → "dir/__pycache__/NAME.TAG[.opt-N].pyc",
 * computed as importlib.util.cache_from_source() does. */

#include <stdbool.h>

#define PYCACHE_DIR "__pycache__"

/* True for a name importlib would byte-compile: "*.py", not just ".py". */
bool pycpath_is_source_name(const char *name);
/* The cache file name (no directory) for source file name @name. */
int pycpath_cache_name(const char *name, const char *cache_tag, unsigned opt_level, char **ret);
/* The full cache path for the source path @source. */
int pycpath_cache_path(const char *source, const char *cache_tag, unsigned opt_level, char **ret);
/* The inverse of pycpath_cache_path() for a "NAME.py" source:
 * "DIR/__pycache__/NAME.TAG[.opt-N].pyc" → "DIR/NAME.py". -EINVAL when
 * @pyc does not have that shape. */
int pycpath_source_path(const char *pyc, char **ret);
/* True when @name has the shape NAME.TAG.pyc or NAME.TAG.opt-N.pyc. */
bool pycpath_is_cache_name(const char *name);
