// libFuzzer's driver, called from the Swift entry point (the fuzz binary's `main` is Swift's, so libFuzzer's own
// `main` is not used: the first argument names the fuzz target and the rest are libFuzzer's flags).
#ifndef SPECULA_FUZZ_H
#define SPECULA_FUZZ_H
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
