// What the kernels and the CLI need from C that Swift cannot reach directly. Static inline, so the Swift compiler
// inlines it into the callers.
#ifndef SPECULA_SYSTEM_H
#define SPECULA_SYSTEM_H

#if defined(__linux__)
#include <malloc.h>
#endif

/// Asks for the cache line holding `address` to be loaded into all cache levels. Never faults. (Swift has no
/// prefetch intrinsic, and the C one is a builtin that Swift cannot call.)
static inline __attribute__((always_inline)) void specula_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Keeps large freed buffers in the heap (glibc): no mapping per allocation above `mapAbove` bytes and no trimming
/// of the heap top below `trimAbove` bytes. A decoding step frees and reallocates the same large buffers hundreds
/// of times a second; mapping and trimming cost a page fault and a cleared page per 4 KB each time. No effect
/// elsewhere.
static inline void specula_keep_large_buffers(int mapAbove, int trimAbove) {
#if defined(__linux__) && defined(M_MMAP_THRESHOLD)
    mallopt(M_MMAP_THRESHOLD, mapAbove);
    mallopt(M_TRIM_THRESHOLD, trimAbove);
#else
    (void)mapAbove;
    (void)trimAbove;
#endif
}

#endif
