// Most of the module is header-only (see include/specula_system.h); the per-thread scratch needs one definition.
#include "specula_system.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local void *scratch_base;
static _Thread_local size_t scratch_size;

static void scratch_make_key(void) { (void)pthread_key_create(&scratch_key, free); }

void *specula_product_scratch(size_t bytes) {
    if (scratch_base != NULL && scratch_size >= bytes) return scratch_base;
    (void)pthread_once(&scratch_once, scratch_make_key);
    void *memory = NULL;
    if (posix_memalign(&memory, 64, bytes) != 0) return NULL;
    free(scratch_base);
    scratch_base = memory;
    scratch_size = bytes;
    /* The key's destructor frees the buffer when the thread exits. */
    (void)pthread_setspecific(scratch_key, memory);
    return memory;
}
