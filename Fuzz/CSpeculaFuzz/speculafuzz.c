// The declaration in include/speculafuzz.h is defined by libFuzzer (linked with -sanitize=fuzzer).
#include "speculafuzz.h"
