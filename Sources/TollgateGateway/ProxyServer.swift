import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// What the connections of one event loop share.
struct LoopResources {
    let pool: UpstreamPool
    let ticker: DeadlineTicker
}

/// The proxy port has as many client connections as it may.
struct ClientConnectionLimitReached: Error {}

/// The proxy port as a service: a `ConnectionGuard` and a `ProxyHandler` per connection, one
/// upstream pool per event loop. On graceful shutdown it stops accepting, lets in-flight calls
/// finish for up to the drain timeout, cuts the rest, and returns.
public final class ProxyServer: Service, Sendable {
    private let shared: ProxyContext
    private let group: any EventLoopGroup
    private let onListening: @Sendable (Int) -> Void

    public init(
        configuration: GatewayConfiguration, directory: GatewayDirectory, recorder: UsageRecorder, quotas: QuotaLedger,
        localRoutes: LocalRoutes = LocalRoutes(), logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.shared = ProxyContext(
            directory: directory, recorder: recorder, quotas: quotas, configuration: configuration, localRoutes: localRoutes,
            logger: logger)
        self.group = group
        self.onListening = onListening
    }

    public func run() async throws {
        var perLoop: [ObjectIdentifier: NIOLoopBound<LoopResources>] = [:]
        let upstreamConnections = UpstreamConnectionCount(limit: shared.configuration.edge.maxUpstreamConnectionsPerProduct)
        let resolution = shared.configuration.edge.deadlineResolution(readTimeout: shared.configuration.readTimeout)
        for loop in group.makeIterator() {
            perLoop[ObjectIdentifier(loop)] = try await loop.submit {
                NIOLoopBound(
                    LoopResources(
                        pool: UpstreamPool(eventLoop: loop, configuration: self.shared.configuration, connections: upstreamConnections),
                        ticker: DeadlineTicker(eventLoop: loop, resolution: resolution)),
                    eventLoop: loop)
            }.get()
        }
        let loopResources = perLoop
        let quiesce = ServerQuiescingHelper(group: group)
        let shared = self.shared
        let edge = shared.configuration.edge
        let clients = ClientConnections(limit: edge.maxClientConnections)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let resources = loopResources[ObjectIdentifier(channel.eventLoop)]?.value else {
                        throw ChannelError.inappropriateOperationForState
                    }
                    // Over the limit, the connection is closed as soon as it is accepted.
                    guard clients.admit(channel) else { throw ClientConnectionLimitReached() }
                    if let tls = shared.configuration.tls {
                        try channel.pipeline.syncOperations.addHandler(PlainHTTPOnTLSPort())
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    try channel.pipeline.syncOperations.addHandler(ConnectionGuard(policy: edge, ticker: resources.ticker))
                    // The proxy handler reads requests from the bytes itself (`ClientRequestDecoder`),
                    // writes its answers as bytes (`ResponseHead`) and keeps pipelined requests in
                    // order (NIO's pipelining assistance would stop and restart reading for every
                    // request).
                    try channel.pipeline.syncOperations.addHandler(
                        ProxyHandler(shared: shared, pool: resources.pool, ticker: resources.ticker))
                }
            }
            .bind(host: shared.configuration.host, port: shared.configuration.port)
            .get()
        let port = channel.localAddress?.port ?? shared.configuration.port
        shared.logger.info("proxy listening", metadata: ["address": "\(shared.configuration.host):\(port)"])
        onListening(port)

        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            shared.logger.info("proxy draining in-flight calls")
            quiesce.initiateShutdown(promise: nil)
        }
        // Wait until every connection has finished its call (or the drain timeout cuts the
        // stragglers), then drop idle upstream connections.
        let drained = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: drained)
        let deadline = drained.futureResult.eventLoop.scheduleTask(in: edge.drainTimeout) {
            shared.logger.warning("drain timeout reached; closing the connections left", metadata: ["connections": "\(clients.count)"])
            clients.closeAll()
        }
        try? await drained.futureResult.get()
        deadline.cancel()
        for (_, resources) in loopResources {
            try? await resources.eventLoop.submit { resources.value.pool.closeAll() }.get()
        }
        // No call is in flight any more: the quota leases can come down to the exact counts.
        shared.recorder.settleLeases(shared.quotas.exactCounts())
    }
}
