#ifndef KAIZEN_CALLOCATOR_H
#define KAIZEN_CALLOCATOR_H

/// glibc's malloc_trim, which Swift's Glibc module does not export (malloc.h is not in it).
/// Returns 1 when memory was released to the system, 0 otherwise, and 0 where there is no glibc.
// features.h defines __GLIBC__; it must come before the test.
#if defined(__linux__)
#include <features.h>
#endif

#if defined(__GLIBC__)
#include <malloc.h>
static inline int kaizen_malloc_trim(void) { return malloc_trim(0); }
#else
static inline int kaizen_malloc_trim(void) { return 0; }
#endif

#endif
