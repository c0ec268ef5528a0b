#ifndef SPECULA_ALLOCATION_COUNTER_H
#define SPECULA_ALLOCATION_COUNTER_H

/// Heap allocations made so far by the calling thread, or -1 where counting is not supported (it interposes
/// malloc, calloc and realloc, which works for an executable linked against glibc).
long long specula_thread_allocation_count(void);

#endif
