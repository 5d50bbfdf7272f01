/// A place DVC pushed objects to. Implementations stream an object's bytes into a sink and
/// classify failures as `RemoteFailure` (not found, refused, transient) for the retry policy.
public protocol ObjectRemote: Sendable {
    /// The remote's name in `.dvc/config`, used in messages.
    var name: String { get }
    /// Streams the object at `key` (relative to the remote's root) into `sink`.
    func read(_ key: String, into sink: ObjectSink) async throws
}
