/// Why a request may not go on. Each maps to one error code (`UNAUTHENTICATED` 401,
/// `FORBIDDEN` 403, `RATE_LIMITED` 429) in the serving core's table.
public enum AccessError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No key, a malformed key, or one that is unknown or revoked.
    case unauthenticated(String)
    /// A valid key whose role does not allow the operation.
    case forbidden(String)
    /// Over one of the key's quotas; `retryAfter` seconds until the request would pass.
    case rateLimited(String, retryAfter: Int)

    public var description: String {
        switch self {
        case .unauthenticated(let message), .forbidden(let message), .rateLimited(let message, _): message
        }
    }
}
