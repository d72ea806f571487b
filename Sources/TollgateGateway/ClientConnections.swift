import NIOConcurrencyHelpers
import NIOCore

/// The first handler of every client connection, in front of the HTTP decoder: it bounds how
/// long a keep-alive connection may stay silent, how long a request head may take from its
/// first byte, and how large it may grow. Between a head and the end of its answer the
/// `ProxyHandler` owns the connection's timing (body inactivity, upstream timeouts).
///
/// A phase change only writes down the phase's deadline; the event loop's `DeadlineTicker`
/// finds it passed. A request costs no timer operation.
final class ConnectionGuard: ChannelInboundHandler, DeadlineWatcher {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Phase {
        /// Between requests: nothing of the next head has come yet.
        case idle
        /// Part of a head has come; it must be whole before the head timeout.
        case head(bytes: Int)
        /// A request is being answered: no deadline here.
        case request
    }

    private let policy: EdgePolicy
    private let ticker: DeadlineTicker
    private var phase = Phase.idle
    /// When the current phase ends the connection; nil while a request is being answered.
    private var deadline: NIODeadline?
    private var context: ChannelHandlerContext?

    init(policy: EdgePolicy, ticker: DeadlineTicker) {
        self.policy = policy
        self.ticker = ticker
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        ticker.add(self)
        if context.channel.isActive { enter(.idle, for: policy.idleTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        enter(.idle, for: policy.idleTimeout)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker.remove(self)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        ticker.remove(self)
        deadline = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        switch phase {
        case .idle: enter(.head(bytes: count), for: policy.requestHeadTimeout)
        case .head(let bytes): phase = .head(bytes: bytes + count)
        case .request: break
        }
        context.fireChannelRead(data)
        // The decoder has read what it could: a head still incomplete past the limit is refused.
        if case .head(let bytes) = phase, bytes > policy.maxRequestHeadBytes {
            refuse(Self.headTooLarge, context: context)
        }
    }

    /// A whole head arrived: the request's own limits apply until its answer ends.
    func requestStarted() {
        phase = .request
        deadline = nil
    }

    /// The answer ended and the connection stays open: the idle limit applies again.
    func requestFinished() {
        enter(.idle, for: policy.idleTimeout)
    }

    private func enter(_ next: Phase, for limit: TimeAmount) {
        phase = next
        deadline = (context?.eventLoop.now ?? .now()) + limit
    }

    func deadlinesDue(at now: NIODeadline) {
        guard let context, let deadline, deadline <= now else { return }
        self.deadline = nil
        switch phase {
        case .idle: context.close(promise: nil)
        case .head: refuse(Self.headTimedOut, context: context)
        case .request: break
        }
    }

    /// Writes a whole answer before the HTTP encoder (no answer is in progress between
    /// requests) and closes the connection.
    private func refuse(_ answer: String, context: ChannelHandlerContext) {
        phase = .request
        deadline = nil
        context.writeAndFlush(wrapInboundOut(ByteBuffer(string: answer))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private static func rawAnswer(status: String, message: String) -> String {
        let body = "{\"message\":\"\(message)\"}"
        return "HTTP/1.1 \(status)\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n\(body)"
    }

    static let headTimedOut = rawAnswer(status: "408 Request Timeout", message: "Request head timed out")
    static let headTooLarge = rawAnswer(status: "431 Request Header Fields Too Large", message: "Request header fields too large")
}

/// The open client connections of the proxy port: counted, so that more than the limit are
/// refused, and listed, so that a drain that outlasts its deadline can cut them.
final class ClientConnections: Sendable {
    private let open = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Registers a new connection; false (and nothing registered) when the limit is reached.
    func admit(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let admitted = open.withLockedValue { open in
            guard open.count < limit else { return false }
            open[key] = channel
            return true
        }
        if admitted {
            channel.closeFuture.whenComplete { [open] _ in _ = open.withLockedValue { $0.removeValue(forKey: key) } }
        }
        return admitted
    }

    var count: Int { open.withLockedValue { $0.count } }

    /// Closes every connection still open.
    func closeAll() {
        for channel in open.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
    }
}
