/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers over system calls, shared by daemon and client. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all of @size bytes, retrying on EINTR and short writes. */
int loop_write(int fd, const void *data, size_t size);
/* Reads until @size bytes or EOF; returns the number of bytes read. */
ssize_t loop_read(int fd, void *data, size_t size);
/* Reads a whole regular file from @fd (at most @max bytes, else -EFBIG). */
int read_full_fd(int fd, size_t max, uint8_t **ret_data, size_t *ret_size);

int safe_atou64(const char *s, uint64_t *ret);
int safe_atou(const char *s, unsigned *ret);
/* Parses "1.5" style seconds into microseconds. */
int parse_seconds_usec(const char *s, uint64_t *ret_usec);

uint64_t now_usec(int clock);
bool path_is_absolute(const char *p);
/* Joins @a and @b with one slash; NULL on allocation failure. */
char *path_join(const char *a, const char *b);

/* Resolves @name like execvp() does along $PATH; returns a new absolute path. */
int find_executable(const char *name, char **ret);
/* Formats a message for the client into *@ret_message (NULL when out of
 * memory) and returns @error, for one-line error returns. */
int error_message(char **ret_message, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline uint32_t unaligned_read_le32(const void *p) {
        const uint8_t *b = p;
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t unaligned_read_le64(const void *p) {
        const uint8_t *b = p;
        return (uint64_t)unaligned_read_le32(b) | (uint64_t)unaligned_read_le32(b + 4) << 32;
}
static inline uint16_t unaligned_read_le16(const void *p) {
        const uint8_t *b = p;
        return (uint16_t)(b[0] | b[1] << 8);
}
static inline void unaligned_write_le16(void *p, uint16_t v) {
        uint8_t *b = p;
        b[0] = (uint8_t)v;
        b[1] = (uint8_t)(v >> 8);
}
static inline void unaligned_write_le32(void *p, uint32_t v) {
        uint8_t *b = p;
        for (int i = 0; i < 4; i++)
                b[i] = (uint8_t)(v >> (8 * i));
}
static inline void unaligned_write_le64(void *p, uint64_t v) {
        uint8_t *b = p;
        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t)(v >> (8 * i));
}
