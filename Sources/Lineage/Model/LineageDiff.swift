public import GitStore

/// What changed between two revisions of a model (`compare`, `pedigree diff`): the commits
/// between them, datasets added, removed or changed, parameters, code, stages, and the artifact.
/// Each change has both sides; a side is nil where the thing does not exist.
public struct LineageDiff: Sendable, Codable {
    public let a: ModelLineage
    public let b: ModelLineage
    /// Commits on the first-parent path after `a` up to and including `b`, newest first (empty
    /// when `b` does not descend from `a` along first parents; see `related`).
    public let commits: [CommitInfo]
    /// Whether `a` is `b` or a first-parent ancestor of it.
    public let related: Bool
    public let datasets: [Change<DatasetInfo>]
    public let parameters: [ParameterChange]
    public let code: [Change<DependencyInfo>]
    public let stagesAdded: [String]
    public let stagesRemoved: [String]

    /// One thing that differs, by path: its value on each side.
    public struct Change<Value: Sendable & Codable & Equatable>: Sendable, Codable {
        public let path: String
        public let before: Value?
        public let after: Value?
        public var kind: String { before == nil ? "added" : after == nil ? "removed" : "changed" }
    }

    /// A parameter whose locked value differs (or that exists on one side only).
    public struct ParameterChange: Sendable, Codable {
        public let file: String
        public let key: String
        public let before: String?
        public let after: String?
    }

    public var artifactChanged: Bool { a.artifact.md5 != b.artifact.md5 }

    public init(a: ModelLineage, b: ModelLineage, commits: [CommitInfo], related: Bool) {
        self.a = a
        self.b = b
        self.commits = commits
        self.related = related
        datasets = Self.changes(a.datasets, b.datasets, key: \.path) { $0.md5 == $1.md5 && $0.size == $1.size }
        code = Self.changes(a.code, b.code, key: \.path) { $0.md5 == $1.md5 }
        let before = Dictionary(a.parameters.map { ("\($0.file)\u{0}\($0.key)", $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(b.parameters.map { ("\($0.file)\u{0}\($0.key)", $0) }, uniquingKeysWith: { first, _ in first })
        parameters = Set(before.keys).union(after.keys).sorted().compactMap { key in
            let old = before[key]
            let new = after[key]
            guard old?.value != new?.value, let any = old ?? new else { return nil }
            return ParameterChange(file: any.file, key: any.key, before: old?.value, after: new?.value)
        }
        let oldStages = Set(a.pipeline.map(\.name))
        let newStages = Set(b.pipeline.map(\.name))
        stagesAdded = newStages.subtracting(oldStages).sorted()
        stagesRemoved = oldStages.subtracting(newStages).sorted()
    }

    /// Entries by `key` that differ by `same` or exist on one side only, sorted by key.
    static func changes<Value: Sendable & Codable & Equatable>(
        _ old: [Value], _ new: [Value], key: (Value) -> String, same: (Value, Value) -> Bool
    ) -> [Change<Value>] {
        let before = Dictionary(old.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(new.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        return Set(before.keys).union(after.keys).sorted().compactMap { path in
            switch (before[path], after[path]) {
            case (let x?, let y?) where same(x, y): nil
            case (let x, let y): Change(path: path, before: x, after: y)
            }
        }
    }
}

/// One model revision that read a dataset: the revision, the stage of its pipeline that read it,
/// and the md5 it read.
public struct DatasetUse: Sendable, Codable {
    public let revision: ModelLineage
    public let stage: String
    public let md5: String
}
