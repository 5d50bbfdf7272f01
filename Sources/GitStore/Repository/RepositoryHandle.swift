import Clibgit2

/// One open `git_repository*`, the only owner of that pointer.
///
/// libgit2 repository handles must not be used by two threads at once; `GitRepository` lends
/// each handle to one borrower at a time, which is why the unchecked `Sendable` is safe: the
/// handle only moves between the pool and a single borrower, never shared.
final class RepositoryHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(path: String) throws {
        _ = libgit2Initialized
        var raw: OpaquePointer?
        let code = git_repository_open_bare(&raw, path)
        guard code == 0, let raw else {
            throw GitError(.repository, GitError.fromLibgit2(code, "cannot open mirror").message)
        }
        pointer = raw
    }

    deinit { git_repository_free(pointer) }

    /// Looks up a commit by full id and runs `body` with it; frees it afterwards.
    func withCommit<T>(_ sha: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        var oid = git_oid()
        try check(git_oid_fromstrn(&oid, sha, sha.utf8.count), "invalid object id \(sha)")
        var commit: OpaquePointer?
        try check(git_commit_lookup(&commit, pointer, &oid), "commit \(sha)")
        defer { git_commit_free(commit) }
        guard let commit else { throw GitError(.notFound, "commit \(sha)") }
        return try body(commit)
    }

    /// Runs `body` with the root tree of a commit.
    func withTree<T>(_ sha: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        try withCommit(sha) { commit throws in
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, commit), "tree of \(sha)")
            defer { git_tree_free(tree) }
            guard let tree else { throw GitError(.notFound, "tree of \(sha)") }
            return try body(tree)
        }
    }

    /// The blob id at `path` in a commit, or nil when the path is absent or not a file.
    func blobID(path: String, commit sha: String) throws -> String? {
        try withTree(sha) { tree throws in
            try blobID(path: path, tree: tree)
        }
    }

    func blobID(path: String, tree: OpaquePointer) throws -> String? {
        var entry: OpaquePointer?
        let code = git_tree_entry_bypath(&entry, tree, path)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "path \(path)")
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return nil }
        return hex(git_tree_entry_id(entry))
    }

    /// A blob's bytes; a blob over `maxSize` is refused from its header, before it is inflated.
    func blob(_ id: String, maxSize: Int? = nil) throws -> [UInt8] {
        try withBlob(id, maxSize: maxSize) { Array($0) }
    }

    /// Runs `body` over a blob's bytes as libgit2 holds them (no copy); a blob over `maxSize` is
    /// refused from its header, before it is inflated.
    func withBlob<T>(_ id: String, maxSize: Int? = nil, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        var oid = git_oid()
        try check(git_oid_fromstrn(&oid, id, id.utf8.count), "invalid blob id")
        if let maxSize {
            var odb: OpaquePointer?
            try check(git_repository_odb(&odb, pointer), "object database")
            defer { git_odb_free(odb) }
            var size = 0
            var type = GIT_OBJECT_ANY
            try check(git_odb_read_header(&size, &type, odb, &oid), "blob \(id)")
            guard size <= maxSize else { throw GitError(.tooLarge, "blob \(id) is \(size) bytes, over the \(maxSize)-byte limit") }
        }
        var blob: OpaquePointer?
        try check(git_blob_lookup(&blob, pointer, &oid), "blob \(id)")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard size > 0, let raw = git_blob_rawcontent(blob) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: raw, count: size))
    }

    func commitInfo(_ sha: String) throws -> CommitInfo {
        try withCommit(sha) { commit in
            var parents: [String] = []
            for index in 0..<git_commit_parentcount(commit) {
                parents.append(hex(git_commit_parent_id(commit, index)))
            }
            var message = git_commit_message(commit).map { String(cString: $0) } ?? ""
            while message.hasSuffix("\n") { message.removeLast() }
            return CommitInfo(
                sha: hex(git_commit_id(commit)),
                author: Signature(git_commit_author(commit)),
                committer: Signature(git_commit_committer(commit)),
                message: message,
                parents: parents,
                tree: hex(git_commit_tree_id(commit))
            )
        }
    }

    /// The paths commit `sha` changed against its first parent (every file of a root commit), in
    /// Git's order, at most `limit` of them.
    func changedPaths(_ sha: String, limit: Int) throws -> [String] {
        try withCommit(sha) { commit throws in
            var newTree: OpaquePointer?
            try check(git_commit_tree(&newTree, commit), "tree of \(sha)")
            defer { git_tree_free(newTree) }
            var oldTree: OpaquePointer?
            defer { if oldTree != nil { git_tree_free(oldTree) } }
            if git_commit_parentcount(commit) > 0 {
                var parent: OpaquePointer?
                try check(git_commit_parent(&parent, commit, 0), "first parent of \(sha)")
                defer { git_commit_free(parent) }
                try check(git_commit_tree(&oldTree, parent), "tree of the first parent of \(sha)")
            }
            var diff: OpaquePointer?
            try check(git_diff_tree_to_tree(&diff, pointer, oldTree, newTree, nil), "changes of \(sha)")
            defer { git_diff_free(diff) }
            var paths: [String] = []
            for index in 0..<min(git_diff_num_deltas(diff), max(0, limit)) {
                guard let delta = git_diff_get_delta(diff, index) else { continue }
                let file = delta.pointee.status == GIT_DELTA_DELETED ? delta.pointee.old_file : delta.pointee.new_file
                if let path = file.path { paths.append(String(cString: path)) }
            }
            return paths
        }
    }

    func firstParent(of sha: String) throws -> String? {
        try withCommit(sha) { commit in
            git_commit_parentcount(commit) > 0 ? hex(git_commit_parent_id(commit, 0)) : nil
        }
    }

    /// Resolves a full reference name (`refs/heads/main`) to the commit it ultimately names.
    func peelReference(_ name: String) throws -> String? {
        var ref: OpaquePointer?
        let code = git_reference_lookup(&ref, pointer, name)
        if code == GIT_ENOTFOUND.rawValue || code == GIT_EINVALIDSPEC.rawValue { return nil }
        try check(code, "reference \(name)")
        defer { git_reference_free(ref) }
        var object: OpaquePointer?
        let peeled = git_reference_peel(&object, ref, GIT_OBJECT_COMMIT)
        if peeled == GIT_ENOTFOUND.rawValue || peeled == GIT_EPEEL.rawValue { return nil }
        try check(peeled, "peel \(name)")
        defer { git_object_free(object) }
        return hex(git_object_id(object))
    }

    /// Finds the commit named by a (possibly short) hex id; `.ambiguous` when several objects match.
    func commit(prefix: String) throws -> String? {
        var oid = git_oid()
        guard git_oid_fromstrn(&oid, prefix, prefix.utf8.count) == 0 else { return nil }
        var object: OpaquePointer?
        let code = git_object_lookup_prefix(&object, pointer, &oid, prefix.utf8.count, GIT_OBJECT_ANY)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "object \(prefix)")
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        guard git_object_peel(&commit, object, GIT_OBJECT_COMMIT) == 0 else { return nil }
        defer { git_object_free(commit) }
        return hex(git_object_id(commit))
    }

    func references(prefix: String) throws -> [String] {
        var names = git_strarray()
        try check(git_reference_list(&names, pointer), "list references")
        defer { git_strarray_dispose(&names) }
        var result: [String] = []
        for index in 0..<names.count {
            guard let raw = names.strings[index] else { continue }
            let name = String(cString: raw)
            if name.hasPrefix(prefix) { result.append(String(name.dropFirst(prefix.count))) }
        }
        return result.sorted()
    }

    func tags() throws -> [TagInfo] {
        var result: [TagInfo] = []
        for name in try references(prefix: "refs/tags/") {
            var ref: OpaquePointer?
            guard git_reference_lookup(&ref, pointer, "refs/tags/" + name) == 0 else { continue }
            defer { git_reference_free(ref) }
            var resolved: OpaquePointer?
            guard git_reference_resolve(&resolved, ref) == 0, let target = git_reference_target(resolved) else { continue }
            defer { git_reference_free(resolved) }
            var tag: OpaquePointer?
            if git_tag_lookup(&tag, pointer, target) == 0 {
                defer { git_tag_free(tag) }
                var object: OpaquePointer?
                guard git_tag_peel(&object, tag) == 0 else { continue }
                defer { git_object_free(object) }
                guard git_object_type(object) == GIT_OBJECT_COMMIT else { continue }
                result.append(
                    TagInfo(
                        name: name,
                        commit: hex(git_object_id(object)),
                        tagger: git_tag_tagger(tag).map(Signature.init),
                        message: git_tag_message(tag).map { String(cString: $0) }
                    )
                )
            } else if let commit = try peelReference("refs/tags/" + name) {
                result.append(TagInfo(name: name, commit: commit, tagger: nil, message: nil))
            }
        }
        return result
    }

    /// Every blob under `tree`, recursively, whose path `include` accepts.
    /// Folders nested deeper than this are not listed (the listing recurses once per level).
    static let maxTreeDepth = 64

    func files(tree: OpaquePointer, prefix: String, include: (String) -> Bool, into result: inout [TreeFile], depth: Int = 0) throws {
        for index in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, index), let rawName = git_tree_entry_name(entry) else { continue }
            let path = prefix + String(cString: rawName)
            switch git_tree_entry_type(entry) {
            case GIT_OBJECT_BLOB:
                if include(path) { result.append(TreeFile(path: path, blob: hex(git_tree_entry_id(entry)))) }
            case GIT_OBJECT_TREE:
                var subtree: OpaquePointer?
                guard depth < Self.maxTreeDepth else { continue }
                try check(git_tree_lookup(&subtree, pointer, git_tree_entry_id(entry)), "tree \(path)")
                defer { git_tree_free(subtree) }
                guard let subtree else { continue }
                try files(tree: subtree, prefix: path + "/", include: include, into: &result, depth: depth + 1)
            default:
                continue  // submodules and other entries carry no file content here
            }
        }
    }

    var headBranch: String? {
        var ref: OpaquePointer?
        guard git_reference_lookup(&ref, pointer, "HEAD") == 0 else { return nil }
        defer { git_reference_free(ref) }
        guard git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC, let target = git_reference_symbolic_target(ref) else { return nil }
        let name = String(cString: target)
        return name.hasPrefix("refs/heads/") ? String(name.dropFirst("refs/heads/".count)) : nil
    }
}
