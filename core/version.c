/*
 * version.c - the commit compiled in (see version.h).
 */
#include "version.h"

#ifndef SY_COMMIT
#error "SY_COMMIT (the git commit, or \"unknown\") comes from the Makefile"
#endif

const char sy_build_commit[] = SY_COMMIT;
