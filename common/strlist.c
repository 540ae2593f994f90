/* SPDX-License-Identifier: MIT */
/* String lists: an array of malloc'd strings grown by doubling
 * (GREEDY_REALLOC), always bounded by the caller's maximum. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "strlist.h"

int strlist_add(StrList *l, const char *s, size_t max) {
        if (l->n >= max)
                return -E2BIG;
        if (GREEDY_REALLOC(l->v, l->allocated, l->n + 1) < 0)
                return -ENOMEM;
        l->v[l->n] = strdup(s);
        if (!l->v[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strlist_sort_unique(StrList *l) {
        size_t k = 0;

        /* An empty list may have no array at all, and qsort()'s pointer
         * must be valid even for zero elements. */
        if (l->n == 0)
                return;
        qsort(l->v, l->n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < l->n; i++) {
                if (k > 0 && strcmp(l->v[k - 1], l->v[i]) == 0) {
                        free(l->v[i]);
                        continue;
                }
                l->v[k++] = l->v[i];
        }
        l->n = k;
}

void strlist_done(StrList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        *l = (StrList){};
}
