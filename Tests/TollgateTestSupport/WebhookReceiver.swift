import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A vendor's webhook endpoint on loopback: records every request and answers as told.
public final class WebhookReceiver: Sendable {
    /// One request as received.
    public struct Received: Sendable {
        public var at: Date
        public var headers: HTTPHeaders
        public var body: String

        /// The body as a JSON object.
        public func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
                throw TestFailure("not a JSON object: \(body)")
            }
            return object
        }
    }

    /// How to answer one request: a status and extra headers.
    public typealias Answer = @Sendable (_ index: Int, _ request: Received) -> (status: Int, headers: [(String, String)])

    private let channel: any Channel
    private let log: NIOLockedValueBox<[Received]>

    public var port: Int { channel.localAddress?.port ?? 0 }
    public var url: String { "http://127.0.0.1:\(port)/hooks" }
    public var received: [Received] { log.withLockedValue { $0 } }

    private init(channel: any Channel, log: NIOLockedValueBox<[Received]>) {
        self.channel = channel
        self.log = log
    }

    /// Starts on 127.0.0.1:`port` (0: any free port); `answer` decides each response (200 by
    /// default); with `tls`, it speaks HTTPS with that context.
    public static func start(
        port: Int = 0, tls: NIOSSLContext? = nil, answer: @escaping Answer = { _, _ in (200, []) }
    ) async throws -> WebhookReceiver {
        let log = NIOLockedValueBox<[Received]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(log: log, answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return WebhookReceiver(channel: channel, log: log)
    }

    public func stop() async {
        try? await channel.close()
    }

    /// Waits until at least `count` requests arrived.
    public func waitFor(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [Received] {
        try await waitForValue("\(count) webhook requests (\(received.count) arrived)", timeout: timeout) {
            let all = received
            return all.count >= count ? all : nil
        }
    }

    /// Waits until a request that `matches` arrived; returns every request received by then.
    public func waitFor(
        _ what: String, timeout: Duration = .seconds(20), where matches: (Received) throws -> Bool
    ) async throws -> [Received] {
        try await waitForValue("a webhook request with \(what) (\(received.count) others arrived)", timeout: timeout) {
            let all = received
            return try all.contains(where: matches) ? all : nil
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let log: NIOLockedValueBox<[Received]>
        let answer: Answer
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(log: NIOLockedValueBox<[Received]>, answer: @escaping Answer) {
            self.log = log
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var part):
                body.writeBuffer(&part)
            case .end:
                guard let head else { return }
                let request = Received(at: Date(), headers: head.headers, body: String(buffer: body))
                let index = log.withLockedValue { log in
                    log.append(request)
                    return log.count - 1
                }
                let (status, extra) = answer(index, request)
                var headers = HTTPHeaders([("Content-Length", "0")])
                for (name, value) in extra { headers.add(name: name, value: value) }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(
                    version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
