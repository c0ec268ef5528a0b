// The module is header-only (see include/specula_system.h); this file gives the target a source to build.
#include "specula_system.h"
