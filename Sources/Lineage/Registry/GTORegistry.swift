import Foundation
public import GitStore

/// The model registry GTO keeps in annotated Git tags.
///
/// `<name>@v<semver>` registers a version and `<name>@v<semver>!` deregisters it;
/// `<name>#<stage>#<N>` assigns a stage and `<name>#<stage>!#<N>` unassigns it (N counts events).
/// Artifacts in sub-folders are named `dir/sub:name`, written `dir/sub=name` in tags.
/// Lightweight tags are ignored, as GTO ignores them.
public struct GTORegistry: Sendable {
    /// One registered version.
    public struct Version: Sendable, Hashable {
        public let name: String
        public let commit: String
        public let tag: String
    }

    /// One stage assignment or unassignment.
    struct StageEvent: Sendable {
        let stage: String
        let number: Int
        let active: Bool
        let commit: String
        let tag: String
        let time: Double
    }

    private var versions: [String: [Version]] = [:]
    private var deprecated: Set<String> = []
    private var stageEvents: [String: [StageEvent]] = [:]
    /// The highest event number (`…#N`) of each model's tags, as `gto` counts them.
    private var counters: [String: Int] = [:]

    public init(tags: [TagInfo]) {
        var registered: [String: [String: Version]] = [:]
        var deregistered: [String: Set<String>] = [:]
        for tag in tags where tag.isAnnotated {
            let name = tag.name
            if let last = name.lastIndex(of: "#"), let number = Int(name[name.index(after: last)...]),
                let end = name.firstIndex(where: { $0 == "@" || $0 == "#" })
            {
                let model = Self.modelName(fromTag: name[..<end])
                counters[model] = max(counters[model] ?? 0, number)
            }
            if let hash = name.firstIndex(of: "#") {
                let model = Self.modelName(fromTag: name[..<hash])
                let parts = name[name.index(after: hash)...].split(separator: "#", omittingEmptySubsequences: false)
                guard parts.count == 2, let number = Int(parts[1]), !parts[0].isEmpty else { continue }
                let unassign = parts[0].hasSuffix("!")
                let stage = String(unassign ? parts[0].dropLast() : parts[0])
                stageEvents[model, default: []].append(
                    StageEvent(
                        stage: stage, number: number, active: !unassign, commit: tag.commit, tag: name,
                        time: tag.tagger?.date.timeIntervalSince1970 ?? 0)
                )
            } else if let at = name.lastIndex(of: "@") {
                let model = Self.modelName(fromTag: name[..<at])
                var version = String(name[name.index(after: at)...])
                if version == "deprecated" {
                    deprecated.insert(model)
                    continue
                }
                let removal = version.hasSuffix("!")
                if removal { version.removeLast() }
                guard RevisionSpec.isSemver(version) else { continue }
                if removal {
                    deregistered[model, default: []].insert(version)
                } else {
                    registered[model, default: [:]][version] = Version(name: version, commit: tag.commit, tag: name)
                }
            }
        }
        for (model, byName) in registered {
            let active = byName.values.filter { !(deregistered[model]?.contains($0.name) ?? false) }
            versions[model] = active.sorted { Self.semverLess($1.name, $0.name) }
        }
    }

    static func modelName(fromTag text: Substring) -> String {
        text.replacingOccurrences(of: "=", with: ":")
    }

    /// The tag `gto register` writes for `version` of `model`: its name and message.
    public static func registrationTag(model: String, version: String) -> (name: String, message: String) {
        ("\(tagName(model))@\(version)", "Registering artifact \(model) version \(version)")
    }

    /// The tag `gto assign` writes for `stage` of `model` at `version`: numbered one past the
    /// model's highest event number; nil when that number is the largest an Int holds.
    public func assignmentTag(model: String, stage: String, version: String) -> (name: String, message: String)? {
        let (next, overflow) = (counters[model] ?? 0).addingReportingOverflow(1)
        guard !overflow else { return nil }
        return ("\(Self.tagName(model))#\(stage)#\(next)", "Assigning stage \(stage) to artifact \(model) version \(version)")
    }

    /// A model's name as tags write it (`dir/sub:name` → `dir/sub=name`).
    static func tagName(_ model: String) -> String { model.replacingOccurrences(of: ":", with: "=") }

    /// Active versions, highest first.
    public func versions(of model: String) -> [Version] {
        deprecated.contains(model) ? [] : versions[model] ?? []
    }

    /// The commit a version tag names.
    public func version(_ name: String, of model: String) -> Version? {
        versions(of: model).first { $0.name == name }
    }

    /// Stages currently assigned, sorted by name.
    public func stages(of model: String) -> [String] {
        stageHeads(of: model).filter(\.active).map(\.stage).sorted()
    }

    /// The commit a stage points to: its newest assignment, nil when unassigned.
    public func stage(_ stage: String, of model: String) -> String? {
        stageHeads(of: model).first { $0.stage == stage && $0.active }?.commit
    }

    /// The newest event per stage (highest N, then newest tag).
    private func stageHeads(of model: String) -> [StageEvent] {
        guard !deprecated.contains(model) else { return [] }
        var newest: [String: StageEvent] = [:]
        for event in stageEvents[model] ?? [] {
            if let current = newest[event.stage], (current.number, current.time) >= (event.number, event.time) { continue }
            newest[event.stage] = event
        }
        return Array(newest.values)
    }

    /// Semantic-version order on `vX.Y.Z[-pre]`: numeric parts, then a release above its pre-releases.
    static func semverLess(_ lhs: String, _ rhs: String) -> Bool {
        func parts(_ text: String) -> ([Int], String?) {
            let body = text.dropFirst().split(separator: "+", maxSplits: 1).first ?? ""
            let split = body.split(separator: "-", maxSplits: 1)
            let core = split.first ?? ""
            return (core.split(separator: ".").map { Int($0) ?? 0 }, split.count > 1 ? String(split[1]) : nil)
        }
        let (a, preA) = parts(lhs)
        let (b, preB) = parts(rhs)
        if a != b { return a.lexicographicallyPrecedes(b) }
        switch (preA, preB) {
        case (nil, nil), (nil, _): return false
        case (_, nil): return true
        case let (x?, y?): return x < y
        }
    }
}
