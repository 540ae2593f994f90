/* SPDX-License-Identifier: MIT */
/* Streaming a reply from an I/O thread to a client.
 *
 * A reply can be a million records; building it whole would let any user
 * make the daemon hold gigabytes for a client that never reads. Instead the
 * thread hands each record to this stream and the loop moves records into
 * the connection as fast as the client takes them. When ADMIN_STREAM_HIGH
 * bytes wait, the thread waits too — bounded: a client that takes nothing
 * for ADMIN_STREAM_STALL_USEC, or goes away, or outlives the request's
 * deadline (an unprivileged caller's request_time_limit), ends the verb with
 * an error, and the thread is free again. So a reply costs a bounded amount of memory
 * and a bounded amount of thread time, whatever the client does. */

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "admin-stream.h"
#include "list.h"
#include "macro.h"

int admin_stream_init(AdminStream *s, sd_event *event, sd_event_io_handler_t on_wake, void *userdata) {
        int r;

        *s = (AdminStream){ .wake_fd = -1 };
        pthread_mutex_init(&s->lock, NULL);
        {
                pthread_condattr_t attr;
                pthread_condattr_init(&attr);
                pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
                pthread_cond_init(&s->cond, &attr);
                pthread_condattr_destroy(&attr);
        }
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->wake_fd < 0)
                return negative_errno();
        r = sd_event_add_io(event, &s->wake_source, s->wake_fd, EPOLLIN, on_wake, userdata);
        if (r < 0)
                return r;
        return 0;
}

void admin_stream_done(AdminStream *s) {
        for (size_t i = s->head; i < s->n; i++)
                free(s->frames[i].data);
        free(s->frames);
        sd_event_source_disable_unref(s->wake_source);
        safe_close(s->wake_fd);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        *s = (AdminStream){ .wake_fd = -1 };
}

static void wake_loop(AdminStream *s) {
        uint64_t one = 1;
        (void)!write(s->wake_fd, &one, sizeof(one));
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int admin_stream_push(AdminStream *s, uint8_t *data, size_t size) {
        int r = 0;

        pthread_mutex_lock(&s->lock);
        if (s->error == 0 && s->deadline_usec > 0 && monotonic_usec() >= s->deadline_usec)
                s->error = -ETIMEDOUT;
        if (s->may_block && s->error == 0 && s->bytes >= ADMIN_STREAM_HIGH) {
                uint64_t until = monotonic_usec() + ADMIN_STREAM_STALL_USEC;
                struct timespec deadline;

                if (s->deadline_usec > 0 && s->deadline_usec < until)
                        until = s->deadline_usec;
                deadline = (struct timespec){ .tv_sec = (time_t)(until / 1000000u),
                                              .tv_nsec = (long)(until % 1000000u) * 1000 };
                wake_loop(s);
                while (s->error == 0 && s->bytes >= ADMIN_STREAM_HIGH)
                        if (pthread_cond_timedwait(&s->cond, &s->lock, &deadline) == ETIMEDOUT) {
                                s->error = -ETIMEDOUT;
                                break;
                        }
        }
        if (s->error < 0) {
                r = s->error;
                goto out;
        }
        if (s->n == s->allocated && s->head > 0) {
                /* Reuse the taken front before growing. */
                for (size_t i = s->head; i < s->n; i++)
                        s->frames[i - s->head] = s->frames[i];
                s->n -= s->head;
                s->head = 0;
        }
        if (GREEDY_REALLOC(s->frames, s->allocated, s->n + 1) < 0) {
                r = -ENOMEM;
                goto out;
        }
        s->frames[s->n++] = (Frame){ data, size };
        data = NULL;
        s->bytes += size;
        if (s->may_block && s->bytes >= ADMIN_STREAM_HIGH / 4)
                wake_loop(s);
out:
        pthread_mutex_unlock(&s->lock);
        free(data);
        return r;
}

bool admin_stream_pop(AdminStream *s, Frame *ret) {
        bool got = false;
        uint64_t ignored;

        (void)!read(s->wake_fd, &ignored, sizeof(ignored));
        pthread_mutex_lock(&s->lock);
        if (s->head < s->n) {
                *ret = s->frames[s->head++];
                s->bytes -= ret->size;
                got = true;
                if (s->head == s->n)
                        s->head = s->n = 0;
        }
        pthread_mutex_unlock(&s->lock);
        return got;
}

void admin_stream_release(AdminStream *s, int error) {
        pthread_mutex_lock(&s->lock);
        if (error < 0 && s->error == 0)
                s->error = error;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}
