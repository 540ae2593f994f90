/* SPDX-License-Identifier: MIT */
#pragma once

/* Records on their way from an I/O thread to a client (see admin-stream.c). */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct Frame {
        uint8_t *data;
        size_t size;
} Frame;

typedef struct AdminStream {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Frame *frames;           /* [head, n) are queued */
        size_t head, n, allocated;
        size_t bytes;            /* queued, not yet taken by the loop */
        bool may_block;          /* the producer is an I/O thread */
        uint64_t deadline_usec;  /* CLOCK_MONOTONIC; past it, pushes fail (0: none) */
        int error;               /* set once: the producer stops */
        int wake_fd;             /* eventfd: the loop has frames to take */
        sd_event_source *wake_source;
} AdminStream;

/* The producer waits while this much is queued and not taken. */
#define ADMIN_STREAM_HIGH (256u * 1024u)
/* A client that takes nothing for this long is given up. */
#define ADMIN_STREAM_STALL_USEC (30 * 1000000ULL)

int admin_stream_init(AdminStream *s, sd_event *event, sd_event_io_handler_t on_wake, void *userdata);
void admin_stream_done(AdminStream *s);
/* Queues @data (ownership passes). On an I/O thread, waits while the
 * client is behind; returns the stream's error once it has one. */
int admin_stream_push(AdminStream *s, uint8_t *data, size_t size);
/* Loop side: takes the oldest frame; false when none is queued. */
bool admin_stream_pop(AdminStream *s, Frame *ret);
/* Loop side: the producer may go on (space was made, or it must stop). */
void admin_stream_release(AdminStream *s, int error);
