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
        rawWriter = try? channel.pipeline.syncOperations.handler(type: RawWriter.self)
        for part in waiting { send(part, flush: false) }
        waiting = []
        channel.flush()
    }

    /// Below the upstream's response decoder when there is one (`RawWriter`): its outbound
    /// side takes only HTTP parts.
    private var rawWriter: RawWriter?

    private func send(_ part: Outbound, flush: Bool) {
        if let rawWriter, let raw = part as? RawPart {
            // The decoder sees the request's head pass (it needs the method), not its bytes.
            if raw.startsRequest { upstream?.write(HTTPClientRequestPart.head(RawWriter.request), promise: nil) }
            rawWriter.write(raw.bytes, flush: flush)
        } else if flush {
            upstream?.writeAndFlush(part, promise: nil)
        } else {
            upstream?.write(part, promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (part, flush) = forward(unwrapInboundIn(data))
        guard upstream != nil else {
            waiting.append(part)
            return
        }
        send(part, flush: flush)
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

/// Bytes for the upstream, and whether they start a request.
struct RawPart: Sendable {
    var bytes: ByteBuffer
    var startsRequest = false
}

/// The first handler of an upstream connection: writes bytes from below the response decoder
/// after it, and swallows the request heads passing through that decoder.
final class RawWriter: ChannelOutboundHandler {
    typealias OutboundIn = HTTPClientRequestPart
    static let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
    private var context: ChannelHandlerContext?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed()
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ bytes: ByteBuffer, flush: Bool) {
        guard let context else { return }
        if flush {
            context.writeAndFlush(NIOAny(bytes), promise: nil)
        } else {
            context.write(NIOAny(bytes), promise: nil)
        }
    }
}

/// The three relays `proxy-floor` runs.
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
    /// NIOHTTP1's decoders on both sides, heads written back as bytes (no encoder): what
    /// Tollgate's pipeline does before any gateway work.
    static func decoders(upstreamPort: Int) -> ClientRelay<HTTPServerRequestPart, RawPart> {
        ClientRelay(
            upstreamPort: upstreamPort,
            upstreamHandlers: { channel, client in
                try channel.pipeline.syncOperations.addHandler(RawWriter())
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder()))
                try channel.pipeline.syncOperations.addHandler(
                    UpstreamRelay<HTTPClientResponsePart, ByteBuffer>(client: client) { part in
                        switch part {
                        case .head(let head):
                            var bytes = ByteBuffer()
                            bytes.writeString("HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n")
                            for (name, value) in head.headers { bytes.writeString("\(name): \(value)\r\n") }
                            bytes.writeStaticString("\r\n")
                            return (bytes, false)
                        case .body(let buffer): return (buffer, false)
                        case .end: return (ByteBuffer(), true)
                        }
                    })
            },
            forward: { part in
                switch part {
                case .head(let head):
                    var bytes = ByteBuffer()
                    bytes.writeString("\(head.method.rawValue) \(head.uri) HTTP/1.1\r\n")
                    for (name, value) in head.headers where name.lowercased() != "apikey" {
                        bytes.writeString("\(name): \(value)\r\n")
                    }
                    bytes.writeStaticString("X-Consumer-ID: floor\r\n\r\n")
                    return (RawPart(bytes: bytes, startsRequest: true), false)
                case .body(let buffer): return (RawPart(bytes: buffer), false)
                case .end: return (RawPart(bytes: ByteBuffer()), true)
                }
            })
    }

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
