#ifndef PEDIGREE_BUILD_INFO_H
#define PEDIGREE_BUILD_INFO_H

/// The Git commit this binary was built from (`script/build` writes it; "unknown" in a plain
/// `swift build`), with "-dirty" when the tree had uncommitted changes.
const char *pedigree_build_commit(void);

#endif
