/* SPDX-License-Identifier: MIT */
#pragma once

/* Intrusive doubly linked lists and growing arrays: the two containers the
 * code uses everywhere, written once. A list item is any struct with
 * `next` and `prev` pointers to its own type; the list is a head pointer. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define LIST_PREPEND(head, item)                                                                            \
        do {                                                                                                \
                (item)->prev = NULL;                                                                        \
                (item)->next = (head);                                                                      \
                if (head)                                                                                   \
                        (head)->prev = (item);                                                              \
                (head) = (item);                                                                            \
        } while (0)

/* Unlinks @item from the list at @head; an unlinked item is left alone. */
#define LIST_REMOVE(head, item)                                                                             \
        do {                                                                                                \
                if ((item)->next)                                                                           \
                        (item)->next->prev = (item)->prev;                                                  \
                if ((item)->prev)                                                                           \
                        (item)->prev->next = (item)->next;                                                  \
                else if ((head) == (item))                                                                  \
                        (head) = (item)->next;                                                              \
                (item)->next = (item)->prev = NULL;                                                         \
        } while (0)

/* Makes room for @need elements of @size bytes in *@array, which has room
 * for *@allocated, growing it by doubling. Returns 0 or -ENOMEM, leaving the
 * array as it was on failure. */
static inline int greedy_realloc(void **array, size_t *allocated, size_t need, size_t size) {
        size_t n;
        void *p;

        if (need <= *allocated)
                return 0;
        n = *allocated ? *allocated : 8;
        while (n < need) {
                if (n > SIZE_MAX / 2 / size)
                        return -ENOMEM;
                n *= 2;
        }
        p = realloc(*array, n * size);
        if (!p)
                return -ENOMEM;
        *array = p;
        *allocated = n;
        return 0;
}

#define GREEDY_REALLOC(array, allocated, need)                                                              \
        greedy_realloc((void **)&(array), &(allocated), (need), sizeof((array)[0]))
