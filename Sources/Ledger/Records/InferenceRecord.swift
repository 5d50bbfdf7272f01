import Crypto
public import Foundation

/// How a recorded inference ended.
public enum RecordStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case completed, cancelled, failed
}

/// What a recorded inference was asked: raw text, or chat messages (as JSON).
public enum InputKind: String, Sendable, Hashable, Codable, CaseIterable {
    case prompt, messages
}

/// One inference as the ledger keeps it: enough to say which weights, data and parameters
/// produced an answer, and to run it again.
public struct InferenceRecord: Sendable, Hashable, Codable {
    /// Sortable id (`RecordID`): time first, then randomness.
    public var id: String
    public var createdAt: Date
    /// The API key's name when authentication is on (a label); nil otherwise.
    public var caller: String?
    /// The API key's id: what owns the record (nil without authentication, and in records made
    /// before ids were kept: those are read by audit and admin keys only).
    public var callerKey: String?
    public var status: RecordStatus
    /// Why a failed request failed.
    public var error: String?
    public var model: String
    /// Canonical revision id (`name@sha`).
    public var revision: String
    public var commit: String
    public var artifactMD5: String
    /// The weights' SHA-256 as loaded (nil when they never loaded, and in older records).
    public var artifactSHA256: String?
    /// The check of the weights' signature as JSON with sorted keys: `status` (verified, unsigned,
    /// unverified), and `file`, `method`, `signer`, `reason` where known (nil like `artifactSHA256`).
    public var signature: String?
    /// The lineage the answer came from, as JSON: datasets (path, md5), parameters (file, key,
    /// value), code (path, md5) and the pipeline's stage names.
    public var lineage: String
    /// llama.cpp's build and CPU features.
    public var engine: String
    /// The full sampling as JSON (temperature, topK, topP, minP, repeatPenalty, seed, maxTokens, stop).
    public var sampling: String
    public var seed: Int64
    public var inputKind: InputKind
    /// The prompt, or the messages as JSON; with the privacy setting, `sha256:` and its digest.
    public var input: String
    /// The generated text; hashed like `input` under the privacy setting.
    public var output: String
    public var finishReason: String
    public var promptTokens: Int
    public var completionTokens: Int
    /// The generated token ids as JSON: replay compares these.
    public var completionTokenIDs: String
    public var timeToFirstTokenMs: Double
    public var totalMs: Double
    /// The HTTP request that asked for it (`X-Request-Id`); nil from the CLI.
    public var requestID: String?
    /// The W3C trace id of the request that asked for it (when tracing is on).
    public var traceID: String?
    /// Its signed receipt: a DSSE envelope (JSON) of an in-toto statement (nil in records made
    /// before receipts, or without a receipt key).
    public var receipt: String?
    /// Its place in the ledger's one sequence (1, 2, 3, …; nil in records made before positions).
    public var position: Int64?

    public init(
        id: String, createdAt: Date, caller: String?, status: RecordStatus, error: String?, model: String, revision: String, commit: String,
        artifactMD5: String, lineage: String, engine: String, sampling: String, seed: Int64, inputKind: InputKind, input: String,
        output: String, finishReason: String, promptTokens: Int, completionTokens: Int, completionTokenIDs: String,
        timeToFirstTokenMs: Double, totalMs: Double, requestID: String? = nil, traceID: String? = nil, callerKey: String? = nil,
        receipt: String? = nil, position: Int64? = nil, artifactSHA256: String? = nil, signature: String? = nil
    ) {
        self.artifactSHA256 = artifactSHA256
        self.signature = signature
        self.position = position
        self.receipt = receipt
        self.callerKey = callerKey
        self.id = id
        self.createdAt = createdAt
        self.caller = caller
        self.status = status
        self.error = error
        self.model = model
        self.revision = revision
        self.commit = commit
        self.artifactMD5 = artifactMD5
        self.lineage = lineage
        self.engine = engine
        self.sampling = sampling
        self.seed = seed
        self.inputKind = inputKind
        self.input = input
        self.output = output
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.completionTokenIDs = completionTokenIDs
        self.timeToFirstTokenMs = timeToFirstTokenMs
        self.totalMs = totalMs
        self.requestID = requestID
        self.traceID = traceID
    }

    /// Text as stored under the privacy setting: its SHA-256, marked so it is never mistaken for text.
    public static func digest(_ text: String) -> String {
        "sha256:" + SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A keyed digest (HMAC-SHA256 with the deployment's salt): what the privacy setting `hash`
    /// stores for prompts, outputs and token ids, so short texts cannot be found by hashing
    /// guesses without the salt.
    public static func digest(_ text: String, salt: Data) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: SymmetricKey(data: salt))
        return saltedPrefix + code.map { String(format: "%02x", $0) }.joined()
    }

    public static let saltedPrefix = "hmac-sha256:"

    /// Whether the input was stored as a digest (such a record cannot be replayed).
    public var inputIsDigest: Bool {
        (input.hasPrefix("sha256:") && input.count == 71) || (input.hasPrefix(Self.saltedPrefix) && input.count == Self.saltedPrefix.count + 64)
    }

    /// What follows the excerpt of a failed request's long input: `[… truncated: N bytes, sha256:…]`.
    public static let truncationMark = "[… truncated: "

    /// Whether the input is an excerpt (a failed request's long input; it cannot be replayed).
    public var inputIsExcerpt: Bool { status == .failed && input.hasSuffix("]") && input.contains(Self.truncationMark + "") }
}

/// Sortable ids: 48 bits of milliseconds since 1970 and 80 random bits in Crockford base32 (a
/// ULID), so ids sort by creation time and page with `id < cursor`.
public enum RecordID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    public static func make(at date: Date = Date()) -> String {
        var value = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var time = [Character](repeating: "0", count: 10)
        for index in stride(from: 9, through: 0, by: -1) {
            time[index] = alphabet[Int(value & 31)]
            value >>= 5
        }
        var random = ""
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<16 { random.append(alphabet[Int(generator.next() % 32)]) }
        return String(time) + random
    }

    /// Whether `text` looks like an id (26 Crockford characters).
    public static func isValid(_ text: String) -> Bool {
        text.count == 26 && text.allSatisfy { alphabet.contains($0) }
    }
}
