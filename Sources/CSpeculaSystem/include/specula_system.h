// What the kernels and the CLI need from C that Swift cannot reach directly. Static inline, so the Swift compiler
// inlines it into the callers.
#ifndef SPECULA_SYSTEM_H
#define SPECULA_SYSTEM_H

#include <stddef.h>
#include <stdlib.h>
#if defined(__linux__)
#include <malloc.h>
#include <sys/mman.h>
#endif

/// Asks for the cache line holding `address` to be loaded into all cache levels. Never faults. (Swift has no
/// prefetch intrinsic, and the C one is a builtin that Swift cannot call.)
static inline __attribute__((always_inline)) void specula_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Asks for the cache line holding `address` to be loaded into the L2 cache (not L1): for lines needed a few
/// microseconds later, so that many can be in flight without filling the L1 miss queue. Never faults.
static inline __attribute__((always_inline)) void specula_prefetch_l2(const void *address) {
    __builtin_prefetch(address, 0, 1);
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

/// Allocates `bytes` for weights that are read in long streams: 2 MiB aligned and, on Linux, its whole 2 MiB pages
/// marked for transparent huge pages (before any page is touched), so that streaming a gigabyte of weights neither
/// misses the TLB every 4 KB nor stops the hardware prefetchers at every 4 KB page boundary. The size is not rounded
/// up and the partial last huge page is not marked: a huge page is made resident whole, and rounding each of a
/// model's ~200 matrices up to 2 MiB cost about 70 MiB of resident memory. Free with `free`. Null on failure.
static inline void *specula_allocate_weights(size_t bytes) {
    size_t huge = (size_t)2 << 20;
    size_t alignment = bytes >= huge ? huge : 64;
    size_t size = (bytes > 64 ? bytes + 63 : 64) / 64 * 64;
    void *memory = NULL;
    if (posix_memalign(&memory, alignment, size) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= huge) (void)madvise(memory, bytes / huge * huge, MADV_HUGEPAGE);
#endif
    return memory;
}

/// A 64-byte aligned buffer of at least `bytes`, one per thread, kept for the thread's life (freed when it exits; a
/// larger request replaces it): the working space of one weight-row product call (`PackedMatrix.multiplyGroup`, the
/// AVX2 kernels' `FastDot.dot32`, `dotQ4K`, `dotQ6K`), which never call one another, so one buffer per thread is
/// enough. A pass makes some 50,000 such calls; their few kilobytes are above what Swift puts on the stack, and a
/// heap allocation and free per call cost several per cent of a pass. Null if the memory cannot be had.
void *specula_product_scratch(size_t bytes);

#endif
