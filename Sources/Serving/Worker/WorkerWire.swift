public import ArtifactStore
public import Foundation
public import Inference

/// What a gateway and its inference workers say to each other, as JSON over HTTP: a generation
/// is a POST answered at once by a stream of server-sent events (`token`, then `summary` or
/// `error`; a `: heartbeat` comment every second, also while the weights load); a worker's state
/// is a GET. Every request carries the shared token (`Authorization: Bearer`).
///
/// HTTP/1.1 with server-sent events rather than gRPC: the same stack, codes and limits as the
/// public API, no code generator in the build, readable with curl; streaming, deadlines
/// (`deadlineMs`, enforced by the worker), cancellation (closing the connection ends the
/// generation) and health (`/readyz`, `status`) are all plain HTTP.
public enum WorkerWire {
    public static let generatePath = "/worker/v1/generate"
    public static let statusPath = "/worker/v1/status"
    /// Load weights now (`LoadRequest`): answered like a generation, heartbeats then `loaded`
    /// (the model as `Status.Model`) or `error`.
    public static let loadPath = "/worker/v1/load"
    /// Unload weights if idle (`UnloadRequest`): `{"unloaded": Bool}`, or `OVERLOADED` while busy.
    public static let unloadPath = "/worker/v1/unload"

    public struct LoadRequest: Codable, Sendable {
        public var artifact: Artifact
        public init(artifact: Artifact) { self.artifact = artifact }
    }

    public struct UnloadRequest: Codable, Sendable {
        public var md5: String
        public init(md5: String) { self.md5 = md5 }
    }

    /// Which weights to run: the artifact's DVC object and where the worker's own DVC
    /// configuration finds it.
    public struct Artifact: Codable, Sendable, Hashable {
        public var md5: String
        /// DVC's `hash:` of the out (`md5` for DVC 3 outs, nil for the legacy layout).
        public var hashName: String?
        public var size: Int64
        /// The weights' path inside a directory out; nil when the out is the file.
        public var pathInOut: String?
        /// The DVC remote the out names; nil for the worker's default remote.
        public var remote: String?

        public init(md5: String, hashName: String?, size: Int64, pathInOut: String?, remote: String?) {
            self.md5 = md5
            self.hashName = hashName
            self.size = size
            self.pathInOut = pathInOut
            self.remote = remote
        }

        public func location() throws -> ArtifactLocation {
            let object = try ObjectID(md5: md5, scheme: ObjectID.Scheme(hashName: hashName))
            return ArtifactLocation(object: object, size: size > 0 ? size : nil, pathInOut: pathInOut, remote: remote)
        }
    }

    public struct GenerateRequest: Codable, Sendable {
        public var artifact: Artifact
        /// Raw text, or chat messages (exactly one of the two).
        public var prompt: String?
        public var messages: [ChatMessage]?
        public var sampling: SamplingParameters
        /// Milliseconds the gateway will wait; the worker ends the generation past them.
        public var deadlineMs: Int?

        public init(artifact: Artifact, request: GenerationRequest, deadlineMs: Int? = nil) {
            self.artifact = artifact
            switch request.input {
            case .prompt(let text): prompt = text
            case .messages(let list): messages = list
            }
            sampling = request.sampling
            self.deadlineMs = deadlineMs
        }

        public var generationRequest: GenerationRequest? {
            switch (prompt, messages) {
            case (let text?, nil): GenerationRequest(input: .prompt(text), sampling: sampling)
            case (nil, let list?): GenerationRequest(input: .messages(list), sampling: sampling)
            default: nil
            }
        }
    }

    /// One event of a generation's stream.
    public enum Event: Sendable, Equatable {
        case token(String)
        case summary(GenerationSummary)
        /// The generation failed: an error code (`OVERLOADED`, `MODEL_LOAD_FAILED`, …) and why.
        case error(code: String, message: String)
        /// A load finished: the model as the worker now holds it.
        case loaded(Status.Model)
    }

    /// A worker's state, for placement and health.
    public struct Status: Codable, Sendable, Equatable {
        public struct Model: Codable, Sendable, Equatable {
            public var md5: String
            public var memoryBytes: Int64
            /// By device (absent from a worker of an older build: then all of it counts as host memory).
            public var memory: ModelMemory?
            public var slots: Int
            public var activeSlots: Int
            public var queueDepth: Int

            public init(md5: String, memory: ModelMemory, slots: Int, activeSlots: Int, queueDepth: Int) {
                self.md5 = md5
                self.memoryBytes = memory.total
                self.memory = memory
                self.slots = slots
                self.activeSlots = activeSlots
                self.queueDepth = queueDepth
            }
        }
        public var engine: EngineFacts
        public var models: [Model]
        /// Bytes of weights it may still load (nil: no budget set).
        public var memoryFree: Int64?
        public var maxModels: Int
        public var draining: Bool

        public init(engine: EngineFacts, models: [Model], memoryFree: Int64?, maxModels: Int, draining: Bool) {
            self.engine = engine
            self.models = models
            self.memoryFree = memoryFree
            self.maxModels = maxModels
            self.draining = draining
        }
    }
}

extension WorkerWire.Event {
    /// The event as server-sent-event text.
    public var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        func json(_ value: some Encodable) -> String { (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}" }
        switch self {
        case .token(let piece): return "event: token\ndata: \(json(["text": piece]))\n\n"
        case .summary(let summary): return "event: summary\ndata: \(json(summary))\n\n"
        case .error(let code, let message): return "event: error\ndata: \(json(["code": code, "message": message]))\n\n"
        case .loaded(let model): return "event: loaded\ndata: \(json(model))\n\n"
        }
    }

    /// Parses one event (its `event:` name and `data:` text); nil when it is not one of ours.
    public init?(name: String, data: Data) {
        let decoder = JSONDecoder()
        switch name {
        case "token":
            guard let piece = try? decoder.decode([String: String].self, from: data)["text"] else { return nil }
            self = .token(piece)
        case "summary":
            guard let summary = try? decoder.decode(GenerationSummary.self, from: data) else { return nil }
            self = .summary(summary)
        case "error":
            guard let fields = try? decoder.decode([String: String].self, from: data), let code = fields["code"] else { return nil }
            self = .error(code: code, message: fields["message"] ?? "")
        case "loaded":
            guard let model = try? decoder.decode(WorkerWire.Status.Model.self, from: data) else { return nil }
            self = .loaded(model)
        default:
            return nil
        }
    }
}

extension WorkerWire.Status.Model {
    /// A loaded model as a worker reports it.
    public init(_ status: ModelManager.Status) {
        self.init(
            md5: status.md5, memory: status.memory, slots: status.slots, activeSlots: status.activeSlots, queueDepth: status.queueDepth)
    }
}

extension ModelManager.Status {
    /// A model `worker` reported holding, as the gateway shows it (`loadedModels`, `loadModel`).
    init(_ model: WorkerWire.Status.Model, on worker: String, revisions: [String]) {
        self.init(
            md5: model.md5, revisions: revisions,
            memory: model.memory ?? ModelMemory(devices: [.init(name: ModelMemory.host, weights: model.memoryBytes)]), slots: model.slots,
            activeSlots: model.activeSlots,
            queueDepth: model.queueDepth, lastUsed: Date(), worker: worker)
    }
}
