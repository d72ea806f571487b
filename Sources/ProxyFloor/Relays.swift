import NIOCore
import NIOHTTP1
import NIOPosix

/// The client half of a relay: opens one upstream connection per client connection on the same
/// event loop, then passes what the client sends across, converted by `forward` (a part and
/// whether to flush after it).
final class ClientRelay<Inbound, Outbound: Sendable>: ChannelInboundHandler {
    typealias InboundIn = Inbound

    private let upstreamPort: Int
    /// Adds the upstream connection's handlers, given the client's channel.
    private let upstreamHandlers: @Sendable (any Channel, _ client: any Channel) throws -> Void
    private let forward: (Inbound) -> (part: Outbound, flush: Bool)
    private var upstream: (any Channel)?
    /// What the client sent before the upstream connection was open.
    private var waiting: [Outbound] = []

    init(
        upstreamPort: Int, upstreamHandlers: @escaping @Sendable (any Channel, any Channel) throws -> Void,
        forward: @escaping (Inbound) -> (part: Outbound, flush: Bool)
    ) {
        self.upstreamPort = upstreamPort
        self.upstreamHandlers = upstreamHandlers
        self.forward = forward
    }

    func channelActive(context: ChannelHandlerContext) {
        let client = context.channel
        let relay = NIOLoopBound(self, eventLoop: context.eventLoop)
        let upstreamHandlers = self.upstreamHandlers
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try upstreamHandlers(channel, client) }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .whenComplete { result in
                switch result {
                case .success(let channel): relay.value.opened(channel)
                case .failure: client.close(promise: nil)
                }
            }
    }

    private func opened(_ channel: any Channel) {
        upstream = channel
        for part in waiting { channel.write(part, promise: nil) }
        waiting = []
        channel.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (part, flush) = forward(unwrapInboundIn(data))
        guard let upstream else {
            waiting.append(part)
            return
        }
        if flush {
            upstream.writeAndFlush(part, promise: nil)
        } else {
            upstream.write(part, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The upstream half of a relay: passes what the upstream sends to the client, converted by
/// `forward`.
final class UpstreamRelay<Inbound, Outbound: Sendable>: ChannelInboundHandler {
    typealias InboundIn = Inbound

    private let client: any Channel
    private let forward: (Inbound) -> (part: Outbound, flush: Bool)

    init(client: any Channel, forward: @escaping (Inbound) -> (part: Outbound, flush: Bool)) {
        self.client = client
        self.forward = forward
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (part, flush) = forward(unwrapInboundIn(data))
        if flush {
            client.writeAndFlush(part, promise: nil)
        } else {
            client.write(part, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The two relays `proxy-floor` runs.
enum Relays {
    /// Bytes copied unparsed both ways: what a proxy costs on SwiftNIO before any HTTP work.
    static func bytes(upstreamPort: Int) -> ClientRelay<ByteBuffer, ByteBuffer> {
        ClientRelay(
            upstreamPort: upstreamPort,
            upstreamHandlers: { channel, client in
                try channel.pipeline.syncOperations.addHandler(
                    UpstreamRelay<ByteBuffer, ByteBuffer>(client: client) { ($0, true) })
            },
            forward: { ($0, true) })
    }

    /// HTTP/1.1 parts through NIOHTTP1's decoders and encoders on both connections, the
    /// `apikey` header removed and one identity header added: what a proxy costs with SwiftNIO's
    /// HTTP/1.1 codec and no gateway work (no credential, routing or metering).
    static func http1(upstreamPort: Int) -> ClientRelay<HTTPServerRequestPart, HTTPClientRequestPart> {
        ClientRelay(
            upstreamPort: upstreamPort,
            upstreamHandlers: { channel, client in
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(
                    UpstreamRelay<HTTPClientResponsePart, HTTPServerResponsePart>(client: client) { part in
                        switch part {
                        case .head(let head): (.head(head), false)
                        case .body(let buffer): (.body(.byteBuffer(buffer)), false)
                        case .end(let trailers): (.end(trailers), true)
                        }
                    })
            },
            forward: { part in
                switch part {
                case .head(let head):
                    var forwarded = HTTPRequestHead(version: head.version, method: head.method, uri: head.uri, headers: head.headers)
                    forwarded.headers.remove(name: "apikey")
                    forwarded.headers.add(name: "X-Consumer-ID", value: "floor")
                    return (.head(forwarded), false)
                case .body(let buffer):
                    return (.body(.byteBuffer(buffer)), false)
                case .end(let trailers):
                    return (.end(trailers), true)
                }
            })
    }
}
