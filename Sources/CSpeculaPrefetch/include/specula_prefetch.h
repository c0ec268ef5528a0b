// Cache prefetch hints for the kernels: Swift has no prefetch intrinsic, and the C one is a builtin that Swift cannot
// call directly. Static inline, so the Swift compiler inlines it into the kernel loops.
#ifndef SPECULA_PREFETCH_H
#define SPECULA_PREFETCH_H

/// Asks for the cache line holding `address` to be loaded into all cache levels. Never faults.
static inline __attribute__((always_inline)) void specula_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
