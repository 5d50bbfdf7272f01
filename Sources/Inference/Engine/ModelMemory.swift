import CLlama
import Foundation

/// The memory a model holds, by device, as llama.cpp allocated it: its weights, its context (the
/// KV cache and other per-sequence state), its compute buffers, and the prompt prefixes the
/// engine keeps. Read from llama.cpp's buffers (`llama_get_memory_breakdown`), or, before a load,
/// what a dry run of the same load would allocate (`no_alloc`).
public struct ModelMemory: Sendable, Hashable, Codable {
    /// The memory on one device: `host` (every buffer in host memory: mapped or repacked
    /// weights, the CPU's KV cache, a GPU's pinned host buffers) or a GPU (`CUDA0`).
    public struct Device: Sendable, Hashable, Codable {
        public var name: String
        /// What the device is (`NVIDIA H200`); empty for host memory.
        public var description: String
        public var isGPU: Bool
        public var weights: Int64
        public var context: Int64
        public var compute: Int64
        /// Saved prompt prefixes (host memory only).
        public var prefixCache: Int64
        /// What the model keeps in host memory outside llama.cpp's buffers: its vocabulary (token
        /// texts, merges, lookup tables), metadata and tensor descriptions. Measured while the dry
        /// run loaded the same file (`ModelMemory.HostMeter`).
        public var metadata: Int64

        public var total: Int64 { weights + context + compute + prefixCache + metadata }

        public init(
            name: String, description: String = "", isGPU: Bool = false, weights: Int64 = 0, context: Int64 = 0, compute: Int64 = 0,
            prefixCache: Int64 = 0, metadata: Int64 = 0
        ) {
            self.name = name
            self.description = description
            self.isGPU = isGPU
            self.weights = weights
            self.context = context
            self.compute = compute
            self.prefixCache = prefixCache
            self.metadata = metadata
        }

        private enum CodingKeys: String, CodingKey {
            case name, description, isGPU, weights, context, compute, prefixCache, metadata
        }

        /// A report without `metadata` (a worker of an earlier build) reads as none.
        public init(from decoder: any Decoder) throws {
            let values = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                name: try values.decode(String.self, forKey: .name), description: try values.decode(String.self, forKey: .description),
                isGPU: try values.decode(Bool.self, forKey: .isGPU), weights: try values.decode(Int64.self, forKey: .weights),
                context: try values.decode(Int64.self, forKey: .context), compute: try values.decode(Int64.self, forKey: .compute),
                prefixCache: try values.decode(Int64.self, forKey: .prefixCache),
                metadata: try values.decodeIfPresent(Int64.self, forKey: .metadata) ?? 0)
        }
    }

    /// The name of host memory among the devices.
    public static let host = "host"

    /// By device: host first, then GPUs by name.
    public var devices: [Device]

    public init(devices: [Device] = []) {
        self.devices = devices.sorted { ($0.name == Self.host ? 0 : 1, $0.name) < ($1.name == Self.host ? 0 : 1, $1.name) }
    }

    public var total: Int64 { devices.reduce(0) { $0 + $1.total } }

    /// Bytes on one device (0 when it holds nothing there).
    public func bytes(on device: String) -> Int64 { devices.first { $0.name == device }?.total ?? 0 }

    /// The same with `bytes` more of prompt prefixes in host memory.
    func addingPrefixCache(_ bytes: Int64) -> ModelMemory { addingToHost(bytes, \.prefixCache) }

    /// The same with `bytes` more of the model's own host memory (vocabulary, metadata).
    func addingMetadata(_ bytes: Int64) -> ModelMemory { addingToHost(bytes, \.metadata) }

    private func addingToHost(_ bytes: Int64, _ part: WritableKeyPath<Device, Int64>) -> ModelMemory {
        guard bytes > 0 else { return self }
        var devices = self.devices
        if let index = devices.firstIndex(where: { $0.name == Self.host }) {
            devices[index][keyPath: part] += bytes
        } else {
            var device = Device(name: Self.host)
            device[keyPath: part] = bytes
            devices.append(device)
        }
        return ModelMemory(devices: devices)
    }

    /// The host memory the process keeps between its start and `kept`: the larger of the
    /// allocator's bytes in use (every thread's arena) and the process's resident anonymous
    /// memory, each now less then (the allocator's count misses its own pages and fragments;
    /// resident memory misses pages freed earlier and handed out again). Other threads'
    /// allocations meanwhile would count too: loads measure one at a time.
    struct HostMeter {
        private let heap = Int64(clamping: pedigree_heap_in_use())
        private let resident = ModelMemory.residentAnonymous()

        var kept: Int64 { max(Int64(clamping: pedigree_heap_in_use()) - heap, ModelMemory.residentAnonymous() - resident, 0) }
    }

    /// The process's resident anonymous memory (`RssAnon`), 0 where /proc does not tell.
    static func residentAnonymous() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
            let kib = Int64(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib * 1024
    }

    /// Gives the allocator's free pages back to the system (after a dry run).
    static func trimHeap() { pedigree_heap_trim() }

    /// What llama.cpp holds for `context` and its model, by device.
    static func read(context: OpaquePointer) -> ModelMemory {
        var entries = [pedigree_buffer_memory](repeating: pedigree_buffer_memory(), count: 16)
        var count = Int(pedigree_memory_breakdown(context, &entries, Int32(entries.count)))
        if count > entries.count {
            entries = [pedigree_buffer_memory](repeating: pedigree_buffer_memory(), count: count)
            count = min(count, Int(pedigree_memory_breakdown(context, &entries, Int32(entries.count))))
        }
        var byDevice: [String: Device] = [:]
        for var entry in entries.prefix(count) {
            let deviceName = withUnsafeBytes(of: &entry.device) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let description = withUnsafeBytes(of: &entry.description) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let host = entry.is_host != 0
            let name = host ? Self.host : (deviceName.isEmpty ? "device" : deviceName)
            var device = byDevice[name] ?? Device(name: name, description: host ? "" : description, isGPU: !host && entry.is_gpu != 0)
            device.weights += Int64(clamping: entry.model)
            device.context += Int64(clamping: entry.context)
            device.compute += Int64(clamping: entry.compute)
            byDevice[name] = device
        }
        return ModelMemory(devices: Array(byDevice.values))
    }
}

extension ModelMemory: CustomStringConvertible {
    /// `host 284.1 MiB` or `host 12.0 MiB, CUDA0 4.1 GiB`.
    public var description: String {
        devices.map { "\($0.name) \(Self.describe($0.total))" }.joined(separator: ", ")
    }

    /// `512 B`, `13.8 MiB`: powers of 1024, one decimal.
    public static func describe(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}
