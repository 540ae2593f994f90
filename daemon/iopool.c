/* SPDX-License-Identifier: MIT */
/* Thread pool with completion on the event loop.
 *
 * Submission appends to a FIFO under a mutex and signals a condition; a
 * thread runs the item and appends it to the done list, then writes to an
 * eventfd that the loop watches. The loop drains the done list in order and
 * calls each item's @done. Threads never touch loop state, and the loop never
 * blocks on a thread. */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "iopool.h"
#include "macro.h"

#define IOPOOL_MAX_THREADS 64

struct IoPool {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        IoWork *todo_head, *todo_tail;
        IoWork *done_head, *done_tail;
        bool quit;
        unsigned pending;
        pthread_t threads[IOPOOL_MAX_THREADS];
        unsigned n_threads;
        int efd;
        sd_event_source *source;
};

static void *iopool_thread(void *userdata) {
        IoPool *p = userdata;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                IoWork *w;
                uint64_t one = 1;

                while (!p->todo_head && !p->quit)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (!p->todo_head)
                        break; /* quitting, and nothing left to run */
                w = p->todo_head;
                p->todo_head = w->next;
                if (!p->todo_head)
                        p->todo_tail = NULL;
                pthread_mutex_unlock(&p->lock);

                w->run(w);

                pthread_mutex_lock(&p->lock);
                w->next = NULL;
                if (p->done_tail)
                        p->done_tail->next = w;
                else
                        p->done_head = w;
                p->done_tail = w;
                (void)!write(p->efd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static int iopool_on_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        IoPool *p = userdata;
        uint64_t n;
        IoWork *list;

        (void)!read(p->efd, &n, sizeof(n));
        pthread_mutex_lock(&p->lock);
        list = p->done_head;
        p->done_head = p->done_tail = NULL;
        pthread_mutex_unlock(&p->lock);

        while (list) {
                IoWork *w = list;
                list = w->next;
                w->next = NULL;
                p->pending--;
                w->done(w); /* may free the object holding @w */
        }
        return 0;
}

int iopool_new(sd_event *event, unsigned n_threads, IoPool **ret) {
        IoPool *p;
        sigset_t all, old;
        int r;

        if (n_threads == 0 || n_threads > IOPOOL_MAX_THREADS)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(event, &p->source, p->efd, EPOLLIN, iopool_on_event, p);
        if (r < 0)
                goto fail;

        /* Threads must not take the loop's signals. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (; p->n_threads < n_threads; p->n_threads++) {
                r = -pthread_create(&p->threads[p->n_threads], NULL, iopool_thread, p);
                if (r < 0)
                        break;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto fail;

        *ret = p;
        return 0;
fail:
        iopool_free(p);
        return r;
}

IoPool *iopool_free(IoPool *p) {
        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        p->quit = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        sd_event_source_disable_unref(p->source);
        safe_close(p->efd);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

void iopool_submit(IoPool *p, IoWork *w) {
        w->next = NULL;
        p->pending++;
        pthread_mutex_lock(&p->lock);
        if (p->todo_tail)
                p->todo_tail->next = w;
        else
                p->todo_head = w;
        p->todo_tail = w;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
}

unsigned iopool_pending(IoPool *p) {
        return p ? p->pending : 0;
}
