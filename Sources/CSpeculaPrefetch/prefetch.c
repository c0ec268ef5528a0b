// The module is header-only (see include/specula_prefetch.h); this file gives the target a source to build.
#include "specula_prefetch.h"
