// Counts heap allocations per thread for the "no allocation per call after warm-up" tests. Linked only into the
// test executable: defining malloc there interposes glibc's for the whole process, and each call is forwarded to
// glibc's own entry points. The counter is thread-local, so tests running in parallel do not disturb each other.
#include "allocation_counter.h"
#include <stdlib.h>

#if defined(__linux__) && defined(__GLIBC__)

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);

static __thread long long allocation_count = 0;

void *malloc(size_t size) {
    allocation_count++;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    allocation_count++;
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    allocation_count++;
    return __libc_realloc(pointer, size);
}

long long specula_thread_allocation_count(void) { return allocation_count; }
#else
long long specula_thread_allocation_count(void) { return -1; }
#endif
