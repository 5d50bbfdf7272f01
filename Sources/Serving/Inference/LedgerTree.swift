public import Foundation
public import Ledger
public import Logging
public import ServiceLifecycle
public import Trust

/// The ledger's Merkle tree (RFC 9162) over its positions: leaf i is the record at position i + 1
/// (the leaf hash of its receipt statement's SHA-256, stored with the record and kept after
/// retention removes it). Signs tree heads with the server's receipt key, and answers inclusion
/// proofs (a record in a signed head) and consistency proofs (an older head is a prefix of a newer
/// one). Leaves are read from the ledger, so gateways sharing one PostgreSQL ledger sign heads of
/// one tree.
public actor LedgerTree {
    let ledger: any InferenceLedger
    let key: ReceiptKey
    let logger: Logger
    /// Leaves are grouped in aligned chunks of this many: the root of each complete chunk is kept,
    /// not its leaves, so memory grows by 32 bytes per chunk and a proof costs a read of at most
    /// two chunks' leaves and about n / chunk hashes.
    let chunk: Int
    /// The tree so far (its size is the number of leaves read: positions 1 through size).
    private var frontier = MerkleFrontier()
    /// The roots of the complete chunks, in order.
    private var chunkRoots: [Data] = []
    /// The leaves after the last complete chunk.
    private var tail: [Data] = []

    public init(ledger: any InferenceLedger, key: ReceiptKey, chunk: Int = 1024, logger: Logger) {
        self.chunk = max(2, chunk)
        self.ledger = ledger
        self.key = key
        self.logger = logger
    }

    /// An inclusion proof: the record at `position` is leaf `position − 1` of the signed head.
    public struct InclusionProof: Sendable {
        public let position: Int64
        public let leafHash: Data
        public let hashes: [Data]
        public let head: LedgerTreeHead
    }

    /// A consistency proof between two signed heads.
    public struct ConsistencyProof: Sendable {
        public let from: LedgerTreeHead
        public let to: LedgerTreeHead
        public let hashes: [Data]
    }

    /// Reads the leaves written since the last call, up to the last position given; positions
    /// without a leaf (records written before the tree, or without a key) get one made from the
    /// record's receipt (empty data when it has none, or is gone).
    private func catchUp() async throws {
        let last = try await ledger.sequence().last
        while Int64(size) < last {
            let after = Int64(size)
            let page = try await ledger.leaves(afterPosition: after, limit: 10_000)
            if page.first?.position == after + 1 {
                for leaf in page {
                    guard leaf.position == Int64(size) + 1 else { break }
                    append(leaf.hash)
                }
                continue
            }
            // A gap just after `after`: fill it up to the next leaf (or the last position given).
            let end = min(page.first?.position ?? last + 1, last + 1, after + 1 + 10_000)
            var records: [Int64: InferenceRecord] = [:]
            for record in try await ledger.records(afterPosition: after, limit: Int(end - after - 1)) {
                if let position = record.position { records[position] = record }
            }
            let made = (after + 1..<end).map { position in
                LedgerLeaf(position: position, hash: records[position].map(InferenceReceipt.leafHash(of:)) ?? MerkleTree.leafHash(Data()))
            }
            // Stored only where no leaf is (another gateway may have stored its own first); read back next.
            try await ledger.addLeaves(made)
            logger.info("ledger tree: leaves made for positions written without one", metadata: ["count": "\(made.count)"])
        }
    }

    private func append(_ hash: Data) {
        frontier.append(hash)
        tail.append(hash)
        if tail.count == chunk {
            chunkRoots.append(MerkleTree.root(tail[...]))
            tail.removeAll(keepingCapacity: true)
        }
    }

    private var size: Int { frontier.size }

    /// A chunk whose leaves a proof needs and that is not read yet.
    private struct MissingChunk: Error { let index: Int }

    /// MTH of the leaves in `range` (indexed from 0; within the leaves read): complete aligned
    /// subtrees of whole chunks from the chunks' roots, the rest from leaves (the tail's, or a
    /// chunk's in `loaded`), split as RFC 9162 splits.
    private func subtree(_ range: Range<Int>, loaded: [Int: [Data]]) throws -> Data {
        let count = range.count
        if count >= chunk, range.lowerBound % chunk == 0, count & (count - 1) == 0, range.upperBound / chunk <= chunkRoots.count {
            return MerkleTree.root(chunkRoots[(range.lowerBound / chunk)..<(range.upperBound / chunk)])
        }
        let index = range.lowerBound / chunk
        if range.upperBound <= (index + 1) * chunk {
            let base = index * chunk
            let leaves: [Data]
            if index == chunkRoots.count {
                leaves = tail
            } else if let read = loaded[index] {
                leaves = read
            } else {
                throw MissingChunk(index: index)
            }
            guard range.upperBound - base <= leaves.count else { throw MissingChunk(index: index) }
            return MerkleTree.root(leaves[(range.lowerBound - base)..<(range.upperBound - base)])
        }
        let middle = range.lowerBound + MerkleTree.split(count)
        return MerkleTree.nodeHash(try subtree(range.lowerBound..<middle, loaded: loaded), try subtree(middle..<range.upperBound, loaded: loaded))
    }

    /// Complete chunks' leaves read lately (a chunk's leaves never change), the newest last.
    private var recentChunks: [(index: Int, leaves: [Data])] = []

    /// Runs `make` with the chunks it asks for read from the ledger (a proof needs at most a few;
    /// the last 16 read are kept, so proofs against one head share the chunk at its edge).
    private func withChunks<T>(_ make: ([Int: [Data]]) throws -> T) async throws -> T {
        var loaded = Dictionary(recentChunks.map { ($0.index, $0.leaves) }, uniquingKeysWith: { _, newer in newer })
        for _ in 0..<8 {
            do {
                return try make(loaded)
            } catch let missing as MissingChunk {
                let after = Int64(missing.index * chunk)
                let leaves = try await ledger.leaves(afterPosition: after, limit: chunk)
                guard leaves.enumerated().allSatisfy({ $0.element.position == after + 1 + Int64($0.offset) }) else {
                    throw LedgerError.configuration("the ledger's leaves after position \(after) are not contiguous")
                }
                loaded[missing.index] = leaves.map(\.hash)
                if leaves.count == chunk {
                    recentChunks.append((missing.index, leaves.map(\.hash)))
                    if recentChunks.count > 16 { recentChunks.removeFirst() }
                }
            }
        }
        throw LedgerError.configuration("a proof needed more of the ledger's leaves than expected")
    }

    /// Signs a head of the tree as it stands (when it grew since the newest head) and keeps it;
    /// returns the newest head (nil while the ledger is empty).
    @discardableResult
    public func signHead() async throws -> LedgerTreeHead? {
        try await catchUp()
        let newest = try await ledger.treeHead(size: nil)
        guard frontier.size > 0, (newest?.size ?? 0) < Int64(frontier.size) else { return newest }
        let signed = try TreeHead.sign(size: Int64(frontier.size), root: frontier.root, with: key)
        let head = LedgerTreeHead(size: signed.size, root: signed.rootHash, createdAt: signed.time, envelope: signed.envelope)
        try await ledger.saveTreeHead(head)
        // Logged, so a copy lives outside the database (`ledger verify --tree-head` checks one).
        logger.info("tree head signed", metadata: ["size": "\(head.size)", "root": "\(head.root.hexString)", "envelope": "\(head.envelope)"])
        // Another gateway may have signed this size first: its head is the one kept.
        return try await ledger.treeHead(size: head.size) ?? head
    }

    /// The signed head of `size`, or the newest when nil.
    public nonisolated func head(size: Int64?) async throws -> LedgerTreeHead? { try await ledger.treeHead(size: size) }

    /// The proof that the record at `position` is in the newest signed head; nil when no signed
    /// head covers it yet.
    public func inclusionProof(position: Int64) async throws -> InclusionProof? {
        guard position >= 1, let head = try await ledger.treeHead(size: nil), head.size >= position else { return nil }
        if Int64(size) < head.size { try await catchUp() }
        guard Int64(size) >= head.size, head.size <= Int64(Int.max / 2) else { return nil }
        let index = Int(position - 1)
        let (leaf, hashes) = try await withChunks { loaded in
            (
                try subtree(index..<(index + 1), loaded: loaded),
                try MerkleTree.inclusionProof(index, size: Int(head.size)) { try subtree($0, loaded: loaded) }
            )
        }
        return InclusionProof(position: position, leafHash: leaf, hashes: hashes, head: head)
    }

    /// The proof that the signed head of size `from` is a prefix of the one of size `to`; nil when
    /// either is not a signed head.
    public func consistencyProof(from: Int64, to: Int64) async throws -> ConsistencyProof? {
        guard from >= 1, from <= to, let first = try await ledger.treeHead(size: from), let second = try await ledger.treeHead(size: to)
        else { return nil }
        if Int64(size) < to { try await catchUp() }
        guard Int64(size) >= to, to <= Int64(Int.max / 2) else { return nil }
        let hashes = try await withChunks { loaded in
            try MerkleTree.consistencyProof(Int(from), size: Int(to)) { try subtree($0, loaded: loaded) }
        }
        return ConsistencyProof(from: first, to: second, hashes: hashes)
    }
}

/// Signs a tree head of the ledger every `interval` while the tree grows, and a last one on
/// shutdown (after the drain, so the last answers are in it).
public struct TreeHeadSigner: Service {
    let tree: LedgerTree
    let interval: Duration
    let logger: Logger

    public init(tree: LedgerTree, interval: Duration, logger: Logger) {
        self.tree = tree
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await sign()
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { break }
        }
        // Shutting down: the last head, in a task of its own (this one may be cancelled).
        let tree = self.tree
        let logger = self.logger
        await Task { await Self.sign(tree, logger) }.value
    }

    private func sign() async { await Self.sign(tree, logger) }

    private static func sign(_ tree: LedgerTree, _ logger: Logger) async {
        do {
            try await tree.signHead()
        } catch {
            logger.warning("tree head not signed", metadata: ["error": "\(error)"])
        }
    }
}
