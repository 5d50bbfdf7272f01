/// What a key may do. Roles are fixed sets of permissions (see `Role.permits`), so the table of
/// who may do what is one switch, read top to bottom.
public enum Role: String, Sendable, CaseIterable, Codable {
    /// Models and lineage.
    case read
    /// `read`, plus generating (GraphQL `infer`/`inferStream`, the OpenAI routes) and the
    /// caller's own recorded inferences and their replay.
    case infer
    /// `read`, plus every recorded inference, its export and its replay.
    case audit
    /// Everything, including refresh, pull, load/unload and transfers.
    case admin

    public func permits(_ permission: Permission) -> Bool {
        switch (self, permission) {
        case (.admin, _): true
        case (_, .readLineage): true
        case (.infer, .generate), (.infer, .readOwnInferences): true
        case (.audit, .readOwnInferences), (.audit, .readAllInferences), (.audit, .replayAny): true
        default: false
        }
    }
}

/// One thing a request may need leave to do.
public enum Permission: String, Sendable, CaseIterable {
    /// Models, revisions, lineage, the repository's state, loaded models, transfers.
    case readLineage
    /// Run a generation.
    case generate
    /// Read (and replay) the inferences recorded under one's own key (by its id, not its name).
    case readOwnInferences
    /// Read every recorded inference.
    case readAllInferences
    /// Replay any recorded inference.
    case replayAny
    /// Refresh the repository, pull artifacts, load and unload models.
    case administer
}

/// Who is asking: a key's name and role, or the open server's anonymous caller (loopback, no
/// keys) who may do everything.
public struct Principal: Sendable {
    /// The key's name (the ledger's `caller`, a label); nil on an open server.
    public let name: String?
    /// The key's id (the ledger's `callerKey`: what owns a record); nil on an open server.
    public let keyID: String?
    public let role: Role
    /// The key's quota counters; nil: no quota.
    public let meter: KeyMeter?
    private let validity: @Sendable () -> Bool

    /// - Parameter stillValid: whether the key still authenticates with this role (it was not
    ///   revoked or changed since); asked by work that outlives its request's first check.
    public init(name: String?, keyID: String?, role: Role, meter: KeyMeter?, stillValid: @escaping @Sendable () -> Bool = { true }) {
        self.name = name
        self.keyID = keyID
        self.role = role
        self.meter = meter
        validity = stillValid
    }

    /// Whether what this principal started may go on: its key was not revoked and its role not
    /// changed (an open server's caller: keys have not been turned on since).
    public var isStillValid: Bool { validity() }

    /// The caller of a server that runs without authentication.
    public static let open = Principal(name: nil, keyID: nil, role: .admin, meter: nil)

    public func permits(_ permission: Permission) -> Bool { role.permits(permission) }

    /// Whether a record made with the key `callerKey` (its id) may be read (and replayed, with
    /// `replay`) by this principal: every record for audit and admin, one's own for infer. Names
    /// are labels: a new key that takes a revoked key's name reads none of its records.
    public func mayRead(recordByKey callerKey: String?, replay: Bool = false) -> Bool {
        if permits(replay ? .replayAny : .readAllInferences) { return true }
        guard permits(.readOwnInferences), let keyID, let callerKey else { return false }
        return callerKey == keyID
    }
}
