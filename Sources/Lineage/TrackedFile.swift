import DVCKit
public import Foundation
import GitStore

/// A file of the repository at a commit, as Pedigree can read it: committed to Git (its bytes),
/// or tracked by DVC (its out, to fetch from the remote: a `.dvc` file's, or a stage output's
/// lock entry).
public struct TrackedFile: Sendable {
    public enum Content: Sendable {
        case git(Data)
        case dvc(ArtifactInfo)
    }

    public let path: String
    /// The commit the revision named.
    public let commit: String
    public let content: Content
}

extension LineageService {
    /// The file at `path` in the repository at `rev` (a branch, tag, commit or short SHA; nil: the
    /// default branch). `notFound` when neither Git nor DVC has it there.
    public func trackedFile(_ path: String, at rev: String?) throws -> TrackedFile {
        let clean: String
        do {
            clean = try RepoPath.resolve(path, file: path)
        } catch {
            throw LineageError.invalidRevision("\(path) is not a path in the repository")
        }
        let commit = try plainRevision(rev)
        let snapshot = try snapshot(commit)
        let tracked: DVCEntry?
        if let index = snapshot.producer(of: clean) {
            tracked = snapshot.stages[index].locked?.outs.first { RepoPath.isWithin(clean, $0.path) }
        } else {
            tracked = snapshot.tracking(clean)?.out
        }
        if let entry = tracked, let md5 = entry.md5 {
            return TrackedFile(
                path: clean, commit: commit,
                content: .dvc(
                    ArtifactInfo(
                        path: clean, md5: md5, size: entry.size ?? 0, nfiles: entry.nfiles, remote: entry.remote, hashName: entry.hashName,
                        outPath: entry.path)))
        }
        if let data = try git({ try repository.readFile(clean, at: commit) }) {
            return TrackedFile(path: clean, commit: commit, content: .git(data))
        }
        throw LineageError.notFound("no file \(clean) in Git or DVC at \(commit.prefix(12))")
    }

    /// A commit from a branch, tag or (short) SHA; the default branch's head for nil.
    func plainRevision(_ rev: String?) throws -> String {
        guard let rev, !rev.isEmpty else {
            guard let head = try git({ try repository.branch(repository.defaultBranch()) }) else { throw LineageError.notFound("no default branch") }
            return head
        }
        let isHex = rev.count >= 4 && rev.count <= 40 && rev.allSatisfy(\.isHexDigit)
        if let sha = try git({ try repository.branch(rev) }) { return sha }
        if let sha = try git({ try repository.tag(rev) }) { return sha }
        if isHex, let sha = try git({ try repository.commit(matching: rev.lowercased()) }) { return sha }
        throw LineageError.notFound("no branch, tag or commit '\(rev)'")
    }
}
