import NIOConcurrencyHelpers
import NIOCore

/// The first handler of every client connection, in front of the HTTP decoder: it bounds how
/// long a keep-alive connection may stay silent, how long a request head may take from its
/// first byte, and how large it may grow. Between a head and the end of its answer the
/// `ProxyHandler` owns the connection's timing (body inactivity, upstream timeouts).
///
/// One timer at a time: a phase change only moves the deadline, and the timer, when it fires
/// early, waits on for the deadline now in force. A request on a busy keep-alive connection
/// costs no timer operation.
final class ConnectionGuard: ChannelInboundHandler {
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
    private var phase = Phase.idle
    /// When the current phase ends the connection; nil while a request is being answered.
    private var deadline: NIODeadline?
    private var timer: Scheduled<Void>?
    /// When the scheduled timer fires.
    private var timerDeadline = NIODeadline.distantFuture
    private var context: ChannelHandlerContext?

    init(policy: EdgePolicy) {
        self.policy = policy
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { enter(.idle, for: policy.idleTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        enter(.idle, for: policy.idleTimeout)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
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
        let newDeadline = NIODeadline.now() + limit
        deadline = newDeadline
        // A later deadline waits for the timer already set; an earlier one needs its own.
        if timer == nil || newDeadline < timerDeadline {
            timer?.cancel()
            schedule(at: newDeadline)
        }
    }

    private func schedule(at time: NIODeadline) {
        guard let context else { return }
        timerDeadline = time
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: time) { [self] in
            timer = nil
            deadlineReached()
        }
    }

    private func deadlineReached() {
        guard let context, let deadline else { return }
        if deadline > .now() {
            schedule(at: deadline)
            return
        }
        switch phase {
        case .idle: context.close(promise: nil)
        case .head: refuse(Self.headTimedOut, context: context)
        case .request: break
        }
    }

    /// Writes a whole answer before the HTTP encoder (no answer is in progress between
    /// requests) and closes the connection.
    private func refuse(_ answer: String, context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
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
