import Synchronization

/// Bytes expected and received for one pull, readable while it runs (the CLI's progress bar,
/// GraphQL's `transfers`). Shared between the tasks downloading its objects.
public final class TransferProgress: Sendable {
    public let label: String
    private let expected = Atomic<Int64>(0)
    private let received = Atomic<Int64>(0)
    private let fetchedObjects = Atomic<Int>(0)

    public init(label: String, expectedBytes: Int64 = 0) {
        self.label = label
        expected.store(expectedBytes, ordering: .relaxed)
    }

    /// Bytes this pull has to transfer (objects already cached excluded), when known.
    public var expectedBytes: Int64 { expected.load(ordering: .relaxed) }
    /// Bytes received so far.
    public var receivedBytes: Int64 { received.load(ordering: .relaxed) }
    /// Objects downloaded so far.
    public var downloadedObjects: Int { fetchedObjects.load(ordering: .relaxed) }

    func expect(_ bytes: Int64) { expected.add(bytes, ordering: .relaxed) }
    func receive(_ bytes: Int64) { received.add(bytes, ordering: .relaxed) }
    func objectDone() { fetchedObjects.add(1, ordering: .relaxed) }
}
