import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TollgateCore
@testable import TollgateGateway
import TollgateTestSupport

/// The client side of the proxy port in memory: the proxy handler, which reads requests from
/// the bytes itself, on an `EmbeddedChannel`, its answers read back as the bytes it writes. Only requests
/// Tollgate answers itself reach no upstream, so these are the ones tried here.
@Suite("Proxy handler's own answers (in memory)")
struct ProxyHandlerTests {
    static func withChannel(_ body: @Sendable (EmbeddedChannel) throws -> Void) async throws {
        try await TestDatabase.sqlite.withStore { store in
            let recorder = UsageRecorder(store: store, logger: TestLogger.make())
            let shared = ProxyContext(
                directory: DecisionTests.directory, recorder: recorder, quotas: QuotaLedger(recorder: recorder),
                configuration: GatewayConfiguration(), localRoutes: LocalRoutes(), logger: TestLogger.make())
            let loop = EmbeddedEventLoop()
            let ticker = DeadlineTicker(eventLoop: loop, resolution: .milliseconds(100))
            let pool = UpstreamPool(
                eventLoop: loop, configuration: shared.configuration, connections: UpstreamConnectionCount(limit: 4))
            let channel = EmbeddedChannel(loop: loop)
            try channel.pipeline.syncOperations.addHandler(ProxyHandler(shared: shared, pool: pool, ticker: ticker))
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
            try body(channel)
            _ = try? channel.finish()
        }
    }

    static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    static let unauthorized = #"{"message":"No API key found in request"}"#

    @Test("A refusal is one answer of bytes, Content-Length framed; the connection stays open")
    func refusal() async throws {
        try await Self.withChannel { channel in
            try channel.writeInbound(ByteBuffer(string: "GET /shop/hello HTTP/1.1\r\nHost: a\r\n\r\n"))
            let answer = try Self.written(channel)
            #expect(answer.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
            #expect(answer.contains("\r\nContent-Length: \(Self.unauthorized.utf8.count)\r\n"))
            #expect(answer.contains("\r\nWWW-Authenticate: Key\r\n"))
            #expect(!answer.contains("Connection:"))
            #expect(answer.hasSuffix("\r\n\r\n" + Self.unauthorized))
            #expect(channel.isActive)
        }
    }

    @Test("A refusal of HEAD has the same head and no body")
    func headRefusal() async throws {
        try await Self.withChannel { channel in
            try channel.writeInbound(ByteBuffer(string: "HEAD /shop/hello HTTP/1.1\r\nHost: a\r\n\r\n"))
            let answer = try Self.written(channel)
            #expect(answer.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
            #expect(answer.contains("\r\nContent-Length: \(Self.unauthorized.utf8.count)\r\n"))
            #expect(answer.hasSuffix("\r\n\r\n"))
        }
    }

    @Test("Pipelined requests in one read are answered in order, each whole")
    func pipelined() async throws {
        try await Self.withChannel { channel in
            try channel.writeInbound(ByteBuffer(string: "GET /shop/hello HTTP/1.1\r\nHost: a\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n"))
            let answer = try Self.written(channel)
            let first = try #require(answer.range(of: "HTTP/1.1 401 Unauthorized\r\n"))
            let second = try #require(answer.range(of: "HTTP/1.1 404 Not Found\r\n"))
            #expect(first.lowerBound < second.lowerBound)
            #expect(answer.hasSuffix(#"{"message":"no Route matched with those values"}"#))
        }
    }

    @Test("A refused request with a body ends the connection with its answer")
    func refusalWithBodyCloses() async throws {
        try await Self.withChannel { channel in
            try channel.writeInbound(ByteBuffer(string: "POST /shop/orders/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"))
            let answer = try Self.written(channel)
            #expect(answer.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
            #expect(answer.contains("\r\nConnection: close\r\n"))
            #expect(!channel.isActive)
        }
    }

    @Test("HTTP/1.0: closed after the answer unless kept alive, and then told so")
    func http10() async throws {
        try await Self.withChannel { channel in
            try channel.writeInbound(ByteBuffer(string: "GET /shop/hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
            let kept = try Self.written(channel)
            #expect(kept.hasPrefix("HTTP/1.0 401 Unauthorized\r\n"))
            #expect(kept.contains("\r\nConnection: keep-alive\r\n"))
            #expect(channel.isActive)
            try channel.writeInbound(ByteBuffer(string: "GET /shop/hello HTTP/1.0\r\n\r\n"))
            let closed = try Self.written(channel)
            #expect(closed.hasPrefix("HTTP/1.0 401 Unauthorized\r\n"))
            #expect(closed.contains("\r\nConnection: close\r\n"))
            #expect(!channel.isActive)
        }
    }

    @Test(
        "Requests that cannot be read are answered 400 with a message and the connection ends",
        arguments: [
            "GET /shop/hello HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
            "POST /shop/hello HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /shop/hello HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "GET /shop/hello HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n",
            "GET /shop/hello HTTP/1.1\r\nHost: a\r\nX-A: a\u{0}b\r\n\r\n",
            "GET /shop/hello HTTP/1.1\nHost: a\n\n",
        ])
    func malformed(request: String) async throws {
        try await Self.withChannel { channel in
            _ = try? channel.writeInbound(ByteBuffer(string: request))
            let answer = try Self.written(channel)
            #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n"))
            #expect(answer.contains("\r\nConnection: close\r\n\r\n{\"message\":\"Bad request: "))
            #expect(!channel.isActive)
        }
    }
}
