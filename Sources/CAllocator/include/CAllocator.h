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
#include <stdlib.h>
static inline int kaizen_malloc_trim(void) { return malloc_trim(0); }

/// Fixes glibc's mmap threshold at `mmap_threshold` bytes and caps its arenas at `arena_max`, each
/// unless the operator set it (MALLOC_MMAP_THRESHOLD_, MALLOC_ARENA_MAX). Returns how many it set.
static inline int kaizen_malloc_configure(int mmap_threshold, int arena_max) {
    int set = 0;
    if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL && mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1) set++;
    if (getenv("MALLOC_ARENA_MAX") == NULL && mallopt(M_ARENA_MAX, arena_max) == 1) set++;
    return set;
}

/// Bytes glibc holds in mmapped chunks now (0 before glibc 2.33).
static inline long kaizen_malloc_mmapped_bytes(void) {
#if __GLIBC_PREREQ(2, 33)
    return (long)mallinfo2().hblkhd;
#else
    return 0;
#endif
}
#else
static inline int kaizen_malloc_trim(void) { return 0; }
static inline int kaizen_malloc_configure(int mmap_threshold, int arena_max) { return 0; }
static inline long kaizen_malloc_mmapped_bytes(void) { return 0; }
#endif

#endif
