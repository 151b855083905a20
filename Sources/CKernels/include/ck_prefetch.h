// Pulling weights toward the cache while a node would otherwise sit idle (waiting for a peer's
// partial sums): the next matrices' first megabytes are then read from cache, not DRAM.
#ifndef SHOAL_CK_PREFETCH_H
#define SHOAL_CK_PREFETCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Reads one byte of every cache line of [p, p + bytes); returns a value the caller may ignore
/// (it keeps the loads from being optimized away).
unsigned ck_touch(const void *p, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
