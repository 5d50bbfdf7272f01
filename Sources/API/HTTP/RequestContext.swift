public import Access
public import Hummingbird
public import NIOCore
import Serving

/// The request context of Pedigree's routes: Hummingbird's basic one plus the connection (so a
/// streaming answer can stop the work behind it as soon as the client's connection closes) and
/// the request's id (`X-Request-Id`), set by `RequestIDMiddleware`.
public struct PedigreeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's connection.
    public let channel: any Channel
    /// The request's id: the client's `X-Request-Id` when it sent a usable one, else a new one.
    public var requestID: String = ""
    /// Who asked (set by `AccessMiddleware`; open until then).
    public var principal: Principal = .open

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Who asked, as the services record it.
    var caller: RequestInfo { RequestInfo(principal: principal, requestID: requestID) }
}

/// `stream`, ended as soon as `channel` closes (the client left): ending it cancels the task that
/// feeds it, and through it whatever produces the elements (a generation frees its slot).
func untilClosed<Element: Sendable>(_ stream: AsyncThrowingStream<Element, any Error>, _ channel: any Channel) -> AsyncThrowingStream<
    Element, any Error
> {
    let (forwarded, continuation) = AsyncThrowingStream<Element, any Error>.makeStream()
    let feeder = Task {
        do {
            for try await element in stream { continuation.yield(element) }
            continuation.finish()
        } catch {
            continuation.finish(throwing: error)
        }
    }
    continuation.onTermination = { _ in feeder.cancel() }
    channel.closeFuture.whenComplete { _ in continuation.finish(throwing: CancellationError()) }
    return forwarded
}
