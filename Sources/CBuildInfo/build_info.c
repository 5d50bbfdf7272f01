#include "build_info.h"

// build_commit.h is written by script/build-info (ignored by Git) before each build; without
// it the commit is unknown.
#if __has_include("build_commit.h")
#include "build_commit.h"
#endif
#ifndef PEDIGREE_BUILD_COMMIT
#define PEDIGREE_BUILD_COMMIT "unknown"
#endif

const char *pedigree_build_commit(void) { return PEDIGREE_BUILD_COMMIT; }
