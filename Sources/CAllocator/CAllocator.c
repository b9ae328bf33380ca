// The header's inline function is the whole module; SwiftPM needs one source file to build it.
#include "CAllocator.h"
