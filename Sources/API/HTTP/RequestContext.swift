public import Hummingbird
public import NIOCore

/// The request context of Pedigree's routes: Hummingbird's basic one plus the connection, so a
/// streaming answer can stop the work behind it as soon as the client's connection closes.
public struct PedigreeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's connection.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
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
