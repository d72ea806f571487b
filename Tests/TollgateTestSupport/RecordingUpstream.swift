import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An upstream that parses its connections' bytes with NIO's own HTTP/1.1 decoder and records
/// every request it parses, in order, so that a request smuggled inside another's body shows
/// up as a request of its own. It answers each with 200 and a small JSON body, except:
/// - `/hold`: never answers;
/// - `/switch`: answers `101 Switching Protocols` without being asked;
/// - `/drop-on-reuse`: closes the connection without answering unless it is the connection's
///   first request;
/// - `/short`: announces a 100-byte body, sends 10 bytes and closes;
/// - `/early`: sends `103 Early Hints` before its answer.
public final class RecordingUpstream: Sendable {
    /// One request as the upstream parsed it.
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        /// Header names as sent, in order.
        public var headers: [(name: String, value: String)]
        public var body: String
        /// Which connection (numbered from 1) carried it.
        public var connection: Int

        /// The values of a header, its name compared exactly (not case-folded, no `_`/`-` folding).
        public func values(exactly name: String) -> [String] {
            headers.filter { $0.name == name }.map(\.value)
        }

        /// The values of a header whose name is `name` ignoring case.
        public func values(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }
    }

    private let channel: any Channel
    private let recorded: NIOLockedValueBox<[Request]>
    private let closedConnections: NIOLockedValueBox<Int>

    public var port: Int { channel.localAddress?.port ?? 0 }
    /// Every request parsed so far.
    public var requests: [Request] { recorded.withLockedValue { $0 } }
    /// Connections the upstream saw closed so far.
    public var closedConnectionCount: Int { closedConnections.withLockedValue { $0 } }

    private init(channel: any Channel, recorded: NIOLockedValueBox<[Request]>, closedConnections: NIOLockedValueBox<Int>) {
        self.channel = channel
        self.recorded = recorded
        self.closedConnections = closedConnections
    }

    /// Starts the upstream on a free loopback port; with `tls`, it speaks HTTPS with that context.
    public static func start(tls: NIOSSLContext? = nil) async throws -> RecordingUpstream {
        let recorded = NIOLockedValueBox<[Request]>([])
        let closed = NIOLockedValueBox(0)
        let connections = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let number = connections.withLockedValue { $0 += 1; return $0 }
                channel.closeFuture.whenComplete { _ in closed.withLockedValue { $0 += 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(recorded: recorded, connection: number))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return RecordingUpstream(channel: channel, recorded: recorded, closedConnections: closed)
    }

    public func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let recorded: NIOLockedValueBox<[Request]>
        let connection: Int
        var current: Request?
        var answered = 0

        init(recorded: NIOLockedValueBox<[Request]>, connection: Int) {
            self.recorded = recorded
            self.connection = connection
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                current = Request(
                    method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: "",
                    connection: connection)
            case .body(let buffer):
                current?.body += String(buffer: buffer)
            case .end:
                guard let request = current else { return }
                current = nil
                recorded.withLockedValue { $0.append(request) }
                let path = request.uri.prefix { $0 != "?" }
                if path.hasSuffix("/hold") { return }
                if path.hasSuffix("/drop-on-reuse"), answered > 0 {
                    context.close(promise: nil)
                    return
                }
                answered += 1
                if path.hasSuffix("/switch") {
                    var headers = HTTPHeaders()
                    headers.add(name: "Connection", value: "Upgrade")
                    headers.add(name: "Upgrade", value: "websocket")
                    context.writeAndFlush(
                        wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))),
                        promise: nil)
                    return
                }
                if path.hasSuffix("/short") {
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Length", value: "100")
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "0123456789")))), promise: nil)
                    context.close(promise: nil)
                    return
                }
                if path.hasSuffix("/early") {
                    var hints = HTTPHeaders()
                    hints.add(name: "Link", value: "</style.css>; rel=preload")
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: 103), headers: hints))), promise: nil)
                }
                let body = #"{"method":"\#(request.method)","parsed":\#(recorded.withLockedValue { $0.count })}"#
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                if request.method != "HEAD" {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
