import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where a product's calls go: one pool entry per product, host and port, so that each
/// product's connections are counted against its own limit.
struct UpstreamKey: Hashable {
    let product: String
    let host: String
    let port: Int
    let tls: Bool
    /// The fields' hash, computed once: a pool is looked up twice per call.
    private let fieldsHash: Int

    init(product: String, host: String, port: Int, tls: Bool) {
        self.product = product
        self.host = host
        self.port = port
        self.tls = tls
        var hasher = Hasher()
        hasher.combine(product)
        hasher.combine(host)
        hasher.combine(port)
        hasher.combine(tls)
        fieldsHash = hasher.finalize()
    }

    static func == (a: UpstreamKey, b: UpstreamKey) -> Bool {
        a.fieldsHash == b.fieldsHash && a.port == b.port && a.tls == b.tls && a.product == b.product && a.host == b.host
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(fieldsHash)
    }
}

/// The number of open upstream connections of every product, across event loops.
final class UpstreamConnectionCount: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts a connection about to be opened; false when the product is at its limit.
    func reserve(_ product: String) -> Bool {
        counts.withLockedValue { counts in
            let open = counts[product, default: 0]
            guard open < limit else { return false }
            counts[product] = open + 1
            return true
        }
    }

    /// A connection closed, or was never opened.
    func release(_ product: String) {
        counts.withLockedValue { counts in
            let open = counts[product, default: 1] - 1
            counts[product] = open > 0 ? open : nil
        }
    }
}

/// The product is at its limit of upstream connections.
struct UpstreamConnectionLimitReached: Error {}

/// The receiving end of one upstream connection's parts.
protocol UpstreamOwner: AnyObject {
    func upstreamRead(_ part: UpstreamResponsePart)
    func upstreamReadComplete()
    /// The connection closed; `error` is what closed it, if anything went wrong.
    func upstreamClosed(after error: (any Error)?)
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// Sits at the end of a pooled client channel to an upstream and forwards what arrives, read
/// by its `UpstreamResponseDecoder`, to the proxy handler that currently owns the connection
/// (on the same event loop). It writes each request as bytes: the head `UpstreamRequest`
/// wrote, the body framed as the head said. There is no HTTP codec in the pipeline.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    /// The proxy handler using the connection; nil while idle in the pool.
    var owner: (any UpstreamOwner)?
    private var readsPaused = false
    private var pendingRead = false
    /// What went wrong on the connection (a TLS handshake that failed), told when it closes.
    private var failure: (any Error)?
    /// The body of the request being sent is chunked.
    private var chunked = false
    private var decoder = UpstreamResponseDecoder()
    /// Bytes read and not yet decoded.
    private var received = ByteBuffer()
    /// Bytes were written and not flushed yet.
    private var unflushed = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Writes a request's head, as `UpstreamRequest.write` made it.
    func sendHead(_ bytes: ByteBuffer, isHead: Bool, chunked: Bool) {
        self.chunked = chunked
        decoder.expectAnswer(toHead: isHead)
        sendBytes(bytes)
    }

    private func sendBytes(_ bytes: ByteBuffer) {
        guard let context else { return }
        context.write(wrapOutboundOut(bytes), promise: nil)
        unflushed = true
    }

    /// Writes a part of the request's body (a chunk when the body is chunked), or its end.
    func send(_ part: HTTPClientRequestPart) {
        guard let context else { return }
        switch part {
        case .head:
            preconditionFailure("a request's head is sent by sendHead")
        case .body(.byteBuffer(let bytes)):
            if chunked {
                guard bytes.readableBytes > 0 else { return }
                var framed = context.channel.allocator.buffer(capacity: bytes.readableBytes + 16)
                BodyFraming.chunked.append(bytes, to: &framed)
                sendBytes(framed)
            } else {
                sendBytes(bytes)
            }
        case .body(.fileRegion):
            preconditionFailure("request bodies arrive in buffers")
        case .end:
            if chunked { sendBytes(ByteBuffer(staticString: "0\r\n\r\n")) }
        }
    }

    /// Flushes what was written since the last flush; nothing, and no trip through the
    /// pipeline, when nothing was (a request's end without a body, a read that brought no
    /// body bytes).
    func flush() {
        guard unflushed else { return }
        unflushed = false
        context?.flush()
    }

    func close() {
        owner = nil
        context?.close(promise: nil)
    }

    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        guard readsPaused else { return }
        readsPaused = false
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if received.readableBytes == 0 {
            received = bytes
        } else {
            received.writeBuffer(&bytes)
        }
        while self.context != nil {
            let part: UpstreamResponsePart
            do {
                guard let next = try decoder.next(from: &received) else { break }
                part = next
            } catch {
                errorCaught(context: context, error: error)
                return
            }
            guard let owner else {
                // An idle connection must not talk; drop it.
                context.close(promise: nil)
                return
            }
            owner.upstreamRead(part)
        }
        // Emptied, it is replaced by the next read (above); a part-read head keeps its bytes.
        if received.readableBytes > 0, received.readerIndex > 64 * 1024 {
            received.discardReadBytes()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // An answer read until the connection closes has ended now.
        if let end = decoder.connectionClosed() { owner?.upstreamRead(end) }
        let owner = self.owner
        self.owner = nil
        owner?.upstreamClosed(after: failure)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        owner?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = error }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }
}

/// Keep-alive connections to upstreams, one pool per event loop, used only on that loop.
final class UpstreamPool {
    private let eventLoop: any EventLoop
    private let configuration: GatewayConfiguration
    private let connections: UpstreamConnectionCount
    private var idle: [UpstreamKey: [UpstreamHandler]] = [:]

    init(eventLoop: any EventLoop, configuration: GatewayConfiguration, connections: UpstreamConnectionCount) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.connections = connections
    }

    /// An idle connection to `key`, if one is still open.
    func takeIdle(_ key: UpstreamKey) -> UpstreamHandler? {
        // The list changed where it lies (through its index): `idle[key]?.popLast()` moved it
        // out of the dictionary and back, allocating on the way.
        guard let list = idle.index(forKey: key) else { return nil }
        while let connection = idle.values[list].popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// Opens a new connection to `key` on this pool's event loop; its pipeline ends in an
    /// `UpstreamHandler`. Fails with `UpstreamConnectionLimitReached` when the product has as
    /// many connections open as it may.
    func connect(_ key: UpstreamKey, tls: UpstreamTLS?) -> EventLoopFuture<any Channel> {
        let tlsContext: NIOSSLContext?
        switch tls?.context {
        case nil: tlsContext = nil
        case .success(let context): tlsContext = context
        case .failure(let error): return eventLoop.makeFailedFuture(error)
        }
        guard connections.reserve(key.product) else {
            return eventLoop.makeFailedFuture(UpstreamConnectionLimitReached())
        }
        let serverHostname = tls?.serverHostname
        let connections = self.connections
        let connected = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tlsContext, serverHostname: serverHostname))
                    }
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
            .connect(host: key.host, port: key.port)
        connected.whenComplete { result in
            switch result {
            case .success(let channel): channel.closeFuture.whenComplete { _ in connections.release(key.product) }
            case .failure: connections.release(key.product)
            }
        }
        return connected
    }

    /// Returns a connection after a complete exchange; closes it when the pool is full.
    func release(_ connection: UpstreamHandler, key: UpstreamKey) {
        connection.owner = nil
        guard connection.isActive else { return }
        // Changed in place: a copy of the list taken out of the dictionary and put back would
        // copy the whole array (and retain every connection in it) on every call.
        let limit = configuration.maxIdleConnectionsPerUpstream
        let kept: Bool
        if let list = idle.index(forKey: key) {
            kept = Self.keep(connection, in: &idle.values[list], limit: limit)
        } else {
            var list: [UpstreamHandler] = []
            kept = Self.keep(connection, in: &list, limit: limit)
            if kept { idle[key] = list }
        }
        if !kept { connection.close() }
    }

    /// Adds `connection` to an idle list unless it holds `limit` open ones. Closed connections
    /// are dropped only when the list looks full (`takeIdle` skips them anyway): looking at every
    /// idle connection on every release cost a call about 1 % of its CPU.
    static func keep(_ connection: UpstreamHandler, in list: inout [UpstreamHandler], limit: Int) -> Bool {
        if list.count >= limit { list.removeAll { !$0.isActive } }
        guard list.count < limit else { return false }
        list.append(connection)
        return true
    }

    /// Closes every idle connection (at shutdown).
    func closeAll() {
        for list in idle.values { for connection in list { connection.close() } }
        idle = [:]
    }
}
