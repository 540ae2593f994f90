/* SPDX-License-Identifier: MIT */
/* Source → cache path mapping. importlib splits the file name at its last
 * dot and inserts the interpreter's cache tag and, for optimization levels
 * above zero, ".opt-N"; we follow it byte for byte, including its handling of
 * names without a stem, so our targets are the ones the importer looks for. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "pycpath.h"

bool pycpath_is_source_name(const char *name) {
        size_t n = strlen(name);
        return n > 3 && strcmp(name + n - 3, ".py") == 0;
}

int pycpath_cache_name(const char *name, const char *cache_tag, unsigned opt_level, char **ret) {
        const char *dot;
        char opt[16] = "";
        size_t stem;
        char *r;

        if (!cache_tag || !*cache_tag || opt_level > 2 || !*name || strchr(name, '/'))
                return -EINVAL;

        /* tail.rpartition('.'): "base.rest" → base, or the whole name when no dot */
        dot = strrchr(name, '.');
        stem = dot ? (size_t)(dot - name) : 0;
        if (opt_level > 0)
                snprintf(opt, sizeof(opt), ".opt-%u", opt_level);

        if (dot && stem > 0) {
                if (asprintf(&r, "%.*s.%s%s.pyc", (int)stem, name, cache_tag, opt) < 0)
                        return -ENOMEM;
        } else if (dot) {
                /* ".py": base is empty, so importlib uses the rest ("py"). */
                if (asprintf(&r, "%s.%s%s.pyc", dot + 1, cache_tag, opt) < 0)
                        return -ENOMEM;
        } else {
                /* No dot at all: importlib joins the name and tag without one. */
                if (asprintf(&r, "%s%s%s.pyc", name, cache_tag, opt) < 0)
                        return -ENOMEM;
        }
        *ret = r;
        return 0;
}

int pycpath_cache_path(const char *source, const char *cache_tag, unsigned opt_level, char **ret) {
        _cleanup_free_ char *name = NULL;
        const char *slash = strrchr(source, '/');
        const char *base = slash ? slash + 1 : source;
        int dirlen = slash ? (int)(slash - source) : 0;
        char *r;
        int k;

        k = pycpath_cache_name(base, cache_tag, opt_level, &name);
        if (k < 0)
                return k;
        if (slash)
                k = asprintf(&r, "%.*s/" PYCACHE_DIR "/%s", dirlen, source, name);
        else
                k = asprintf(&r, PYCACHE_DIR "/%s", name);
        if (k < 0)
                return -ENOMEM;
        *ret = r;
        return 0;
}

bool pycpath_is_cache_name(const char *name) {
        size_t n = strlen(name);
        const char *end, *p;

        if (n < 5 || strcmp(name + n - 4, ".pyc") != 0)
                return false;
        end = name + n - 4;
        /* optional ".opt-N" */
        if (end - name > 6 && strncmp(end - 6, ".opt-", 5) == 0 && end[-1] >= '1' && end[-1] <= '2')
                end -= 6;
        /* ".TAG" with a non-empty stem before it */
        for (p = end - 1; p > name && *p != '.'; p--)
                ;
        return p > name && p < end - 1;
}

int pycpath_source_path(const char *pyc, char **ret) {
        const char *slash = strrchr(pyc, '/'), *name, *end, *dot, *dir_end;
        size_t cl = strlen(PYCACHE_DIR);
        char *r;

        if (!slash)
                return -EINVAL;
        name = slash + 1;
        if (!pycpath_is_cache_name(name))
                return -EINVAL;
        /* ".../__pycache__/" */
        if ((size_t)(slash - pyc) < cl || strncmp(slash - cl, PYCACHE_DIR, cl) != 0)
                return -EINVAL;
        dir_end = slash - cl; /* just after the source directory's slash, or @pyc itself */
        if (dir_end != pyc && dir_end[-1] != '/')
                return -EINVAL;
        end = name + strlen(name) - 4;
        if (end - name > 6 && strncmp(end - 6, ".opt-", 5) == 0)
                end -= 6;
        for (dot = end - 1; dot > name && *dot != '.'; dot--)
                ;
        if (asprintf(&r, "%.*s%.*s.py", (int)(dir_end - pyc), pyc, (int)(dot - name), name) < 0)
                return -ENOMEM;
        *ret = r;
        return 0;
}
