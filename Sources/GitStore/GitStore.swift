/// GitStore: the in-process Git repository mirror.
///
/// This module owns every call into libgit2. It mirrors a repository (local path or URL) into a
/// bare clone under the cache folder, fetches on demand, resolves references and object ids,
/// and reads files, commits, tags and history at any commit without a working tree.
///
/// It must not interpret what it reads (DVC and model semantics live in `DVCKit` and `Lineage`),
/// and no libgit2 type leaves it: callers see hex object ids, value types and `GitError`.
/// Revision strings are looked up as data; nothing here runs a command.
import Clibgit2

/// libgit2 wants exactly one `git_libgit2_init` before any other call; a global `let` is
/// initialised once, lazily and thread-safely.
let libgit2Initialized: Bool = {
    git_libgit2_init() > 0
}()
