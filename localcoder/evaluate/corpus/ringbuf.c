/* A fixed-size ring buffer of bytes, for a serial port reader. */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t *data;
    size_t capacity;
    size_t head;  /* next byte to read */
    size_t count; /* bytes held */
} ring_t;

void ring_init(ring_t *ring, uint8_t *storage, size_t capacity) {
    ring->data = storage;
    ring->capacity = capacity;
    ring->head = 0;
    ring->count = 0;
}

size_t ring_free(const ring_t *ring) {
    return ring->capacity - ring->count;
}

size_t ring_write(ring_t *ring, const uint8_t *bytes, size_t length) {
    size_t written = 0;
    while (written < length && ring->count < ring->capacity) {
        size_t tail = (ring->head + ring->count) % ring->capacity;
        ring->data[tail] = bytes[written];
        ring->count++;
        written++;
    }
    return written;
}

size_t ring_read(ring_t *ring, uint8_t *out, size_t length) {
    size_t taken = 0;
    while (taken < length && ring->count > 0) {
        out[taken] = ring->data[ring->head];
        ring->head = (ring->head + 1) % ring->capacity;
        ring->count--;
        taken++;
    }
    return taken;
}

int ring_peek_line(const ring_t *ring, char *line, size_t size) {
    for (size_t i = 0; i < ring->count && i + 1 < size; i++) {
        char c = (char)ring->data[(ring->head + i) % ring->capacity];
        line[i] = c;
        if (c == '\n') {
            line[i + 1] = '\0';
            return (int)(i + 1);
        }
    }
    return -1;
}

uint16_t checksum16(const uint8_t *bytes, size_t length) {
    uint32_t sum = 0;
    for (size_t i = 0; i < length; i++) {
        sum += bytes[i];
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}
