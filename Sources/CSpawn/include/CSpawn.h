#ifndef KAIZEN_CSPAWN_H
#define KAIZEN_CSPAWN_H

#include <spawn.h>

/// Adds "close every descriptor from `lowest` up" to a spawn's file actions, so that a child gets
/// only the descriptors it is given. glibc's `posix_spawn_file_actions_addclosefrom_np` is declared
/// only under _GNU_SOURCE, which Swift's Glibc module does not define. Returns 0 or an errno value
/// (ENOSYS where the C library lacks it).
int kaizen_spawn_add_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
