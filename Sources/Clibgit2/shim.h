#ifndef PEDIGREE_CLIBGIT2_SHIM_H
#define PEDIGREE_CLIBGIT2_SHIM_H
#include <git2.h>
#endif
