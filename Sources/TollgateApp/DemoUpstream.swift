import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A small upstream API for the demo and the tests. It answers, under any prefix:
/// - `/bytes/N`: N bytes, streamed in 64 KiB parts as fast as the reader takes them;
/// - `/upload`: reads the body and answers `{"received": bytes}`;
/// - `/slow/MS`: answers after MS milliseconds;
/// - `/drop`: closes the connection without answering;
/// - `/status/CODE`: answers CODE;
/// - anything else: echoes the request as JSON (method, path, headers, body bytes).
/// With a `secret`, every request must carry that header and value (403 otherwise), and the
/// echo shows `"vendor_secret": "verified"` instead of the value.
public final class DemoUpstream: Sendable {
    private let channel: any Channel
    private let counter: NIOLockedValueBox<Int>
    private let connections: NIOLockedValueBox<Int>

    /// The port it listens on (127.0.0.1).
    public var port: Int { channel.localAddress?.port ?? 0 }
    /// Requests answered or started so far.
    public var requestCount: Int { counter.withLockedValue { $0 } }
    /// Connections accepted so far.
    public var connectionCount: Int { connections.withLockedValue { $0 } }

    private init(channel: any Channel, counter: NIOLockedValueBox<Int>, connections: NIOLockedValueBox<Int>) {
        self.channel = channel
        self.counter = counter
        self.connections = connections
    }

    /// Starts listening on 127.0.0.1:`port` (0 picks a free port).
    public static func start(
        port: Int = 0, secret: (name: String, value: String)? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> DemoUpstream {
        let secret = secret.map { Secret(name: $0.name, value: $0.value) }
        let counter = NIOLockedValueBox(0)
        let connections = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connections.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(DemoUpstreamHandler(counter: counter, secret: secret))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        return DemoUpstream(channel: channel, counter: counter, connections: connections)
    }

    public func stop() async {
        try? await channel.close()
    }
}

private struct Secret: Sendable {
    var name: String
    var value: String
}

private final class DemoUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let counter: NIOLockedValueBox<Int>
    private let secret: Secret?
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var remainingDownload = 0
    private var chunk: ByteBuffer?

    init(counter: NIOLockedValueBox<Int>, secret: Secret?) {
        self.counter = counter
        self.secret = secret
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
            counter.withLockedValue { $0 += 1 }
            if head.uri.hasSuffix("/drop") { context.close(promise: nil) }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            guard let head else { return }
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let secret, head.headers[secret.name] != [secret.value] {
            sendJSON(#"{"message":"the vendor secret is missing"}"#, status: .forbidden, context: context)
            return
        }
        let path = String(head.uri.prefix { $0 != "?" })
        let parts = path.split(separator: "/")
        let last = parts.last.map(String.init) ?? ""
        let verb = parts.count >= 2 ? String(parts[parts.count - 2]) : ""
        switch verb {
        case "bytes":
            startDownload(Int(last) ?? 0, context: context)
        case "slow":
            let delay = TimeAmount.milliseconds(Int64(last) ?? 0)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: delay) {
                let (handler, context) = bound.value
                handler.sendJSON(#"{"slow":true}"#, status: .ok, context: context)
            }
        case "status":
            sendJSON(#"{"status":\#(Int(last) ?? 200)}"#, status: HTTPResponseStatus(statusCode: Int(last) ?? 200), context: context)
        default:
            if last == "upload" {
                sendJSON(#"{"received":\#(bodyBytes)}"#, status: .ok, context: context)
            } else {
                sendJSON(echo(head), status: .ok, context: context)
            }
        }
    }

    private func echo(_ head: HTTPRequestHead) -> String {
        var headers: [String: [String]] = [:]
        for (name, value) in head.headers where name.lowercased() != secret?.name.lowercased() {
            headers[name.lowercased(), default: []].append(value)
        }
        var object: [String: Any] = [
            "method": head.method.rawValue, "path": head.uri, "headers": headers, "body_bytes": bodyBytes,
            "message": "Hello from the demo upstream",
        ]
        if secret != nil { object["vendor_secret"] = "verified" }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func sendJSON(_ body: String, status: HTTPResponseStatus, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func startDownload(_ total: Int, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Content-Length", value: String(total))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        remainingDownload = total
        chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
        continueDownload(context: context)
    }

    private func continueDownload(context: ChannelHandlerContext) {
        guard let chunk, remainingDownload >= 0 else { return }
        while remainingDownload > 0 && context.channel.isWritable {
            let size = min(remainingDownload, chunk.readableBytes)
            remainingDownload -= size
            context.write(wrapOutboundOut(.body(.byteBuffer(chunk.getSlice(at: chunk.readerIndex, length: size)!))), promise: nil)
        }
        if remainingDownload == 0 {
            remainingDownload = -1
            self.chunk = nil
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { continueDownload(context: context) }
        context.fireChannelWritabilityChanged()
    }
}
