import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where a product's calls go: one pool entry per product, host and port, so that each
/// product's connections are counted against its own limit.
struct UpstreamKey: Hashable {
    var product: String
    var host: String
    var port: Int
    var tls: Bool
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
    func upstreamRead(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    /// The connection closed; `error` is what closed it, if anything went wrong.
    func upstreamClosed(after error: (any Error)?)
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// Sits at the end of a pooled client channel to an upstream and forwards what arrives to the
/// proxy handler that currently owns the connection (on the same event loop).
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    /// The proxy handler using the connection; nil while idle in the pool.
    var owner: (any UpstreamOwner)?
    private var readsPaused = false
    private var pendingRead = false
    /// What went wrong on the connection (a TLS handshake that failed), told when it closes.
    private var failure: (any Error)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func send(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
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
        guard let owner else {
            // An idle connection must not talk; drop it.
            context.close(promise: nil)
            return
        }
        owner.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
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
        while let connection = idle[key]?.popLast() {
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
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
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
        var list = idle[key, default: []]
        list.removeAll { !$0.isActive }
        if list.count >= configuration.maxIdleConnectionsPerUpstream {
            connection.close()
        } else {
            list.append(connection)
        }
        idle[key] = list
    }

    /// Closes every idle connection (at shutdown).
    func closeAll() {
        for list in idle.values { for connection in list { connection.close() } }
        idle = [:]
    }
}
