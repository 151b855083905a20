#include "ck_prefetch.h"

#include <stdint.h>

unsigned ck_touch(const void *p, size_t bytes) {
    const volatile uint8_t *b = (const volatile uint8_t *)p;
    unsigned sum = 0;
    // Plain loads, several lines apart per iteration: the hardware keeps many misses in flight
    // and its stream prefetcher follows the sequential pattern.
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) sum += b[i] + b[i + 64] + b[i + 128] + b[i + 192];
    for (; i < bytes; i += 64) sum += b[i];
    return sum;
}
