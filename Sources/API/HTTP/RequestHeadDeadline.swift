import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// The HTTP server: HTTP/1.1 with the WebSocket upgrade, where a new connection must deliver its
/// first request head within `idleTimeout`. (Hummingbird's own idle timeout starts once a first
/// head has been read; before that, a client that connects and sends nothing, or sends a head a
/// byte at a time, would hold the connection forever.)
func pedigreeServer(
    idleTimeout: Duration,
    shouldUpgrade:
        @escaping @Sendable (HTTPRequest, any Channel, Logger) throws -> ShouldUpgradeResult<
            WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
        >
) -> HTTPServerBuilder {
    HTTPServerBuilder { responder in
        HeadDeadlineChannel(
            inner: HTTP1WebSocketUpgradeChannel(
                responder: responder, configuration: .init(http1: .init(idleTimeout: .init(idleTimeout))), shouldUpgrade: shouldUpgrade),
            timeout: .init(idleTimeout))
    }
}

/// A child channel that puts `RequestHeadDeadline` in front of another's pipeline.
struct HeadDeadlineChannel<Inner: ServerChildChannel>: ServerChildChannel {
    let inner: Inner
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Inner.Value> {
        let timeout = self.timeout
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RequestHeadDeadline(timeout: timeout))
        }.flatMap { [inner] in inner.setup(channel: channel, logger: logger) }
    }

    func handle(value: Inner.Value, logger: Logger) async { await inner.handle(value: value, logger: logger) }
}

/// Closes a connection whose first request head has not ended (`CRLF CRLF`) within `timeout`,
/// and answers 431 to a first head longer than `maxHeadBytes` (past about 80 KB the HTTP parser
/// fails without answering, and the connection would hang); once a head has ended, it leaves the
/// pipeline (Hummingbird's idle timeout covers the connection from then on).
final class RequestHeadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let maxHeadBytes = 64 << 10
    private let timeout: TimeAmount
    private var seen = 0
    private var timer: Scheduled<Void>?
    /// The last bytes read, so an end of head split across reads is seen.
    private var tail: [UInt8] = []

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let end = headEnd(after: buffer)
        let ended = end != nil
        // The head's length so far: up to its end when it ended in this buffer (a body may follow).
        seen += end ?? buffer.readableBytes
        if seen > Self.maxHeadBytes {
            timer?.cancel()
            timer = nil
            let answer = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
            return
        }
        context.fireChannelRead(data)
        if ended {
            timer?.cancel()
            timer = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    private func start(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    /// Where in `buffer` the head ends (just past `CRLF CRLF`, which may have begun in the
    /// previous read), or nil when it goes on.
    private func headEnd(after buffer: ByteBuffer) -> Int? {
        let kept = tail.count
        let bytes = tail + Array(buffer.readableBytesView)
        tail = Array(bytes.suffix(3))
        var index = 0
        while index + 3 < bytes.count {
            if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13, bytes[index + 3] == 10 { return index + 4 - kept }
            index += 1
        }
        return nil
    }
}
