import Crypto
public import Foundation

/// The Merkle tree of RFC 9162 (Certificate Transparency 2.0, §2.1) over SHA-256: a leaf's hash is
/// `SHA-256(0x00 ‖ data)`, a node's `SHA-256(0x01 ‖ left ‖ right)`, and a tree of n leaves splits
/// at the largest power of two below n. Functions here take the leaves' hashes (what the ledger
/// keeps), indexed from 0.
public enum MerkleTree {
    /// `SHA-256(0x00 ‖ data)`.
    public static func leafHash(_ data: some DataProtocol) -> Data {
        var hasher = SHA256()
        hasher.update(data: [0])
        hasher.update(data: Data(data))
        return Data(hasher.finalize())
    }

    /// `SHA-256(0x01 ‖ left ‖ right)`.
    public static func nodeHash(_ left: Data, _ right: Data) -> Data {
        var hasher = SHA256()
        hasher.update(data: [1])
        hasher.update(data: left)
        hasher.update(data: right)
        return Data(hasher.finalize())
    }

    /// The hash of the empty tree: `SHA-256()`.
    public static let emptyRoot = Data(SHA256.hash(data: Data()))

    /// The largest power of two smaller than `n` (n ≥ 2).
    public static func split(_ n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// MTH(D[n]) of the leaves' hashes.
    public static func root(_ leaves: ArraySlice<Data>) -> Data {
        switch leaves.count {
        case 0: return emptyRoot
        case 1: return leaves[leaves.startIndex]
        default:
            let k = split(leaves.count)
            let middle = leaves.startIndex + k
            return nodeHash(root(leaves[..<middle]), root(leaves[middle...]))
        }
    }

    /// The audit path of leaf `index` in the tree of `leaves` (RFC 9162 §2.1.3.1), leaf to root.
    public static func inclusionProof(_ index: Int, _ leaves: ArraySlice<Data>) -> [Data] {
        let start = leaves.startIndex
        // (The closure does not throw.)
        return (try? inclusionProof(index, size: leaves.count) { range in root(leaves[(start + range.lowerBound)..<(start + range.upperBound)]) })
            ?? []
    }

    /// The audit path of leaf `index` in a tree of `size` leaves, given the root of any range of
    /// leaves the path needs (`subtree(range)` = MTH of the leaves in `range`, indexed from 0).
    public static func inclusionProof(_ index: Int, size: Int, subtree: (Range<Int>) throws -> Data) throws -> [Data] {
        guard index >= 0, index < size else { return [] }
        func path(_ m: Int, _ range: Range<Int>) throws -> [Data] {
            guard range.count > 1 else { return [] }
            let middle = range.lowerBound + split(range.count)
            if m < middle { return try path(m, range.lowerBound..<middle) + [subtree(middle..<range.upperBound)] }
            return try path(m, middle..<range.upperBound) + [subtree(range.lowerBound..<middle)]
        }
        return try path(index, 0..<size)
    }

    /// The proof that the tree of the first `m` leaves is a prefix of the tree of `leaves`
    /// (RFC 9162 §2.1.4.1); empty when m is 0 or the whole tree.
    public static func consistencyProof(_ m: Int, _ leaves: ArraySlice<Data>) -> [Data] {
        let start = leaves.startIndex
        return (try? consistencyProof(m, size: leaves.count) { range in root(leaves[(start + range.lowerBound)..<(start + range.upperBound)]) }) ?? []
    }

    /// The consistency proof from `m` leaves to `size`, given the root of any range of leaves.
    public static func consistencyProof(_ m: Int, size: Int, subtree: (Range<Int>) throws -> Data) throws -> [Data] {
        guard m > 0, m <= size else { return [] }
        func subproof(_ m: Int, _ range: Range<Int>, _ complete: Bool) throws -> [Data] {
            if m == range.upperBound { return complete ? [] : [try subtree(range)] }
            let middle = range.lowerBound + split(range.count)
            if m <= middle { return try subproof(m, range.lowerBound..<middle, complete) + [subtree(middle..<range.upperBound)] }
            return try subproof(m, middle..<range.upperBound, false) + [subtree(range.lowerBound..<middle)]
        }
        return try subproof(m, 0..<size, true)
    }

    /// Whether `proof` shows the leaf hash `leaf` at `index` in a tree of `size` whose root is
    /// `root` (RFC 9162 §2.1.3.2).
    public static func verifyInclusion(leaf: Data, index: Int, size: Int, proof: [Data], root: Data) -> Bool {
        guard index >= 0, index < size else { return false }
        var fn = index
        var sn = size - 1
        var r = leaf
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// Whether `proof` shows the tree of `size1` leaves with root `root1` is a prefix of the tree
    /// of `size2` leaves with root `root2` (RFC 9162 §2.1.4.2).
    public static func verifyConsistency(size1: Int, size2: Int, proof: [Data], root1: Data, root2: Data) -> Bool {
        guard size1 > 0, size1 <= size2 else { return false }
        if size1 == size2 { return proof.isEmpty && root1 == root2 }
        var path = proof
        if size1 & (size1 - 1) == 0 { path.insert(root1, at: 0) }  // size1 a power of two
        guard !path.isEmpty else { return false }
        var fn = size1 - 1
        var sn = size2 - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == root1 && sr == root2 && sn == 0
    }
}

/// The right edge of a growing tree (its perfect subtrees' roots, largest first): appending a
/// leaf costs O(log n) hashes, and the root of every size along the way is at hand, without
/// keeping the leaves.
public struct MerkleFrontier: Sendable, Hashable {
    /// (leaf count, root) of each perfect subtree, left to right; counts are distinct powers of two.
    private var peaks: [(count: Int, hash: Data)] = []
    public private(set) var size = 0

    public init() {}

    public mutating func append(_ leafHash: Data) {
        var node = (count: 1, hash: leafHash)
        while let last = peaks.last, last.count == node.count {
            peaks.removeLast()
            node = (last.count * 2, MerkleTree.nodeHash(last.hash, node.hash))
        }
        peaks.append(node)
        size += 1
    }

    /// MTH of the leaves appended so far: the peaks folded right to left.
    public var root: Data {
        guard var hash = peaks.last?.hash else { return MerkleTree.emptyRoot }
        for peak in peaks.dropLast().reversed() { hash = MerkleTree.nodeHash(peak.hash, hash) }
        return hash
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.size == rhs.size && lhs.peaks.map(\.hash) == rhs.peaks.map(\.hash)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(size)
        for peak in peaks { hasher.combine(peak.hash) }
    }
}
