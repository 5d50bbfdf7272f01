import CLlama
public import Foundation

/// A GGUF file's header, checked in Swift before llama.cpp (in-process, with asserts that end the
/// process) reads it: version, key and tensor counts, every length and type, and every tensor's
/// data within the file. A file that passes may still be refused by llama.cpp (an unknown
/// architecture, a missing tensor), but with an error, not a crash.
public struct GGUFHeader: Sendable {
    public let version: UInt32
    public let tensorCount: Int
    public let keyCount: Int
    public let alignment: Int
    /// Where tensor data begins; every tensor ends at or before the end of the file.
    public let dataOffset: Int
    /// The ggml types of the tensors of two or more dimensions (the matrices products may read),
    /// by raw value.
    public let matrixTypes: Set<UInt32>

    /// Types that are not weight types: what activations are quantized to (Q8_1, Q8_K), integers
    /// and doubles. ggml multiplies no matrix of them.
    static let nonWeightTypes: Set<UInt32> = [
        GGML_TYPE_Q8_1, GGML_TYPE_Q8_K, GGML_TYPE_I8, GGML_TYPE_I16, GGML_TYPE_I32, GGML_TYPE_I64, GGML_TYPE_F64,
    ].reduce(into: []) { $0.insert($1.rawValue) }

    /// Limits on what a header may declare.
    public static let maxTensors = 1 << 16
    public static let maxKeys = 1 << 16
    public static let maxKeyLength = 1 << 16
    public static let maxStringLength = 1 << 26
    public static let maxArrayDepth = 2

    /// Why a file is not a GGUF file llama.cpp can safely open.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Checks the file at `path` (mapped, so only the header's pages are read).
    public init(path: String) throws(Invalid) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw Invalid("the file cannot be read")
        }
        try self.init(data)
    }

    /// Checks a whole GGUF file held in `data`.
    public init(_ data: Data) throws(Invalid) {
        var reader = Reader(data: data)
        guard try reader.bytes(4) == Array("GGUF".utf8) else { throw Invalid("not a GGUF file (bad magic)") }
        version = try reader.u32()
        guard version == 2 || version == 3 else { throw Invalid("GGUF version \(version) is not supported (2 or 3)") }
        let tensors = try reader.u64()
        let keys = try reader.u64()
        guard tensors <= UInt64(Self.maxTensors) else { throw Invalid("\(tensors) tensors declared (at most \(Self.maxTensors))") }
        guard keys <= UInt64(Self.maxKeys) else { throw Invalid("\(keys) metadata keys declared (at most \(Self.maxKeys))") }
        tensorCount = Int(tensors)
        keyCount = Int(keys)

        var alignment = 32
        for _ in 0..<keyCount {
            let key = try reader.string(max: Self.maxKeyLength)
            let type = try reader.u32()
            if key == "general.alignment" {
                guard type == 4 else { throw Invalid("general.alignment must be a uint32") }
                let value = try reader.u32()
                guard value > 0, value & (value - 1) == 0, value <= 1 << 20 else { throw Invalid("general.alignment \(value) is not a power of two") }
                alignment = Int(value)
            } else {
                try reader.skipValue(type: type, depth: 0)
            }
        }
        self.alignment = alignment

        var tensorEnds: [(offset: Int, size: Int)] = []
        tensorEnds.reserveCapacity(tensorCount)
        var matrixTypes: Set<UInt32> = []
        for index in 0..<tensorCount {
            _ = try reader.string(max: Self.maxKeyLength)
            let dimensions = try reader.u32()
            guard dimensions >= 1, dimensions <= UInt32(GGML_MAX_DIMS) else { throw Invalid("tensor \(index) has \(dimensions) dimensions") }
            var elements: [Int] = []
            for _ in 0..<dimensions {
                let extent = try reader.u64()
                guard extent >= 1, extent <= UInt64(Int64.max) else { throw Invalid("tensor \(index) has an extent of \(extent)") }
                elements.append(Int(extent))
            }
            let rawType = try reader.u32()
            guard rawType < GGML_TYPE_COUNT.rawValue else { throw Invalid("tensor \(index) has unknown type \(rawType)") }
            let type = ggml_type(rawValue: rawType)
            let block = Int(ggml_blck_size(type))
            let typeSize = ggml_type_size(type)
            guard block > 0, typeSize > 0 else { throw Invalid("tensor \(index) has removed type \(rawType)") }
            guard elements[0] % block == 0 else { throw Invalid("tensor \(index): row of \(elements[0]) is not a multiple of its block of \(block)") }
            var size = elements[0] / block
            var overflow = false
            for factor in [Int(typeSize)] + elements.dropFirst() {
                let (product, over) = size.multipliedReportingOverflow(by: factor)
                size = product
                overflow = overflow || over
            }
            // ggml has no product kernel for these: a matrix of one ends the process at the first
            // request (a null function pointer), so it is refused here.
            guard elements.count < 2 || !Self.nonWeightTypes.contains(rawType) else {
                throw Invalid("tensor \(index) is a matrix of type \(String(cString: ggml_type_name(type))), which no product can read")
            }
            let offset = try reader.u64()
            guard !overflow, offset <= UInt64(Int.max) else { throw Invalid("tensor \(index) is too large") }
            guard Int(offset) % alignment == 0 else { throw Invalid("tensor \(index) is not aligned to \(alignment)") }
            tensorEnds.append((Int(offset), size))
            if elements.count >= 2 { matrixTypes.insert(rawType) }
        }
        self.matrixTypes = matrixTypes
        let headerEnd = reader.position
        let (aligned, over) = headerEnd.addingReportingOverflow(alignment - 1)
        guard !over else { throw Invalid("the header is too large") }
        dataOffset = aligned / alignment * alignment
        for (index, tensor) in tensorEnds.enumerated() {
            let (start, overStart) = dataOffset.addingReportingOverflow(tensor.offset)
            let (end, overEnd) = start.addingReportingOverflow(tensor.size)
            guard !overStart, !overEnd, end <= data.count else {
                throw Invalid("tensor \(index) lies past the end of the file (truncated?)")
            }
        }
    }

    /// Bounds-checked little-endian reads over the file's bytes.
    struct Reader {
        let data: Data
        var position = 0

        mutating func bytes(_ count: Int) throws(Invalid) -> [UInt8] {
            guard count >= 0, count <= data.count - position else { throw Invalid("the header ends early (truncated?)") }
            let start = data.startIndex + position
            position += count
            return Array(data[start..<start + count])
        }

        mutating func skip(_ count: UInt64) throws(Invalid) {
            guard count <= UInt64(data.count - position) else { throw Invalid("the header ends early (truncated?)") }
            position += Int(count)
        }

        mutating func u32() throws(Invalid) -> UInt32 {
            let raw = try bytes(4)
            return raw.reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }

        mutating func u64() throws(Invalid) -> UInt64 {
            let raw = try bytes(8)
            return raw.reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }

        mutating func string(max: Int) throws(Invalid) -> String {
            let length = try u64()
            guard length <= UInt64(max) else { throw Invalid("a string of \(length) bytes (at most \(max))") }
            return String(decoding: try bytes(Int(length)), as: UTF8.self)
        }

        /// Bytes of the fixed-size metadata types: uint8, int8, bool; uint16, int16; uint32, int32,
        /// float32; uint64, int64, float64.
        static let fixedWidth: [UInt32: UInt64] = [0: 1, 1: 1, 7: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 10: 8, 11: 8, 12: 8]

        /// Skips one metadata value of GGUF type `type`.
        mutating func skipValue(type: UInt32, depth: Int) throws(Invalid) {
            if let width = Self.fixedWidth[type] {
                try skip(width)
                return
            }
            switch type {
            case 8:
                let length = try u64()
                guard length <= UInt64(GGUFHeader.maxStringLength) else { throw Invalid("a string of \(length) bytes") }
                try skip(length)
            case 9:
                guard depth < GGUFHeader.maxArrayDepth else { throw Invalid("arrays nested deeper than \(GGUFHeader.maxArrayDepth)") }
                let elementType = try u32()
                let count = try u64()
                // Every element takes at least one byte: more elements than bytes left is a lie.
                guard count <= UInt64(data.count - position) else { throw Invalid("an array of \(count) elements past the end of the file") }
                if let width = Self.fixedWidth[elementType] {
                    try skip(count * width)  // count ≤ bytes left, so this cannot overflow
                } else {
                    for _ in 0..<count { try skipValue(type: elementType, depth: depth + 1) }
                }
            default:
                throw Invalid("unknown metadata type \(type)")
            }
        }
    }
}
