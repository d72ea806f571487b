import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The proxy port as a service: SwiftNIO's HTTP/1.1 server codec and a `ProxyHandler` per
/// connection, one upstream pool per event loop. On graceful shutdown it stops accepting,
/// lets in-flight calls finish, and returns.
public final class ProxyServer: Service, Sendable {
    private let shared: ProxyContext
    private let group: any EventLoopGroup
    private let onListening: @Sendable (Int) -> Void

    public init(
        configuration: GatewayConfiguration, directory: GatewayDirectory, recorder: UsageRecorder, quotas: QuotaLedger,
        logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.shared = ProxyContext(
            directory: directory, recorder: recorder, quotas: quotas, configuration: configuration, logger: logger)
        self.group = group
        self.onListening = onListening
    }

    public func run() async throws {
        var pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = try await loop.submit {
                NIOLoopBound(UpstreamPool(eventLoop: loop, configuration: self.shared.configuration), eventLoop: loop)
            }.get()
        }
        let upstreamPools = pools
        let quiesce = ServerQuiescingHelper(group: group)
        let shared = self.shared
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
                    guard let pool = upstreamPools[ObjectIdentifier(channel.eventLoop)]?.value else {
                        throw ChannelError.inappropriateOperationForState
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ProxyHandler(shared: shared, pool: pool))
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
        // Wait until every connection has finished its call, then drop idle upstream connections.
        let drained = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: drained)
        try? await drained.futureResult.get()
        for (_, pool) in upstreamPools {
            try? await pool.eventLoop.submit { pool.value.closeAll() }.get()
        }
        // No call is in flight any more: the quota leases can come down to the exact counts.
        shared.recorder.settleLeases(shared.quotas.exactCounts())
    }
}
