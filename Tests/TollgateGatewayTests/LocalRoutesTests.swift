import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing
import TollgateGateway
import TollgateTestSupport

/// Answers with what it was asked: method, target, client address and body.
private struct EchoResponder: LocalResponder {
    func respond(to request: LocalRequest) async -> LocalResponse {
        let text = "{\"echo\":\"\(request.head.method.rawValue) \(request.head.uri) from \(request.clientAddress): "
            + String(buffer: request.body) + "\"}"
        let body = ByteBuffer(string: text)
        return LocalResponse(status: .ok, headers: ["Content-Type": "application/json", "Content-Length": "999"], body: body)
    }
}

/// The proxy port's own paths (`LocalRoutes`), served by a real proxy on loopback.
@Suite("Local routes of the proxy port")
struct LocalRoutesTests {
    func withProxy(_ body: @Sendable (Int) async throws -> Void) async throws {
        try await TestDatabase.sqlite.withStore { store in
            let recorder = UsageRecorder(store: store, logger: TestLogger.make())
            var routes = LocalRoutes()
            routes.maxBodyBytes = 64
            routes.add(prefix: "/_echo", EchoResponder())
            var configuration = GatewayConfiguration()
            configuration.port = 0
            let port = NIOLockedValueBox<Int?>(nil)
            let proxy = ProxyServer(
                configuration: configuration, directory: GatewayDirectory(), recorder: recorder,
                quotas: QuotaLedger(recorder: recorder), localRoutes: routes, logger: TestLogger.make(),
                onListening: { listening in port.withLockedValue { $0 = listening } })
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: recorder), .init(service: proxy)], logger: TestLogger.make()))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let listening = try await waitForValue("the proxy listens") { port.withLockedValue { $0 } }
                do {
                    try await body(listening)
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    @Test("A claimed prefix is answered by its responder, with its body, keep-alive and pipelined")
    func answersClaimedPaths() async throws {
        try await withProxy { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send(
                "POST /_echo/hook?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                    + "GET /_echo HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(await connection.waitForResponses(2))
            let text = connection.text
            #expect(connection.statuses == [200, 200])
            #expect(text.contains("POST /_echo/hook?x=1 from 127.0.0.1: hello"))
            #expect(text.contains("GET /_echo from 127.0.0.1: "))
            // The proxy sets the length itself, whatever the responder claimed.
            #expect(!text.contains("999"))
            #expect(!connection.isClosed)
            await connection.close()
        }
    }

    @Test("Unclaimed paths under /_ are unknown routes; a prefix must end at a segment")
    func unclaimedPaths() async throws {
        try await withProxy { port in
            let other = try await RawHTTP.get(port: port, target: "/_other")
            let longer = try await RawHTTP.get(port: port, target: "/_echoes")
            let deeper = try await RawHTTP.get(port: port, target: "/_echo/deeper")
            #expect(other.status == 404)
            #expect(longer.status == 404)
            #expect(deeper.status == 200)
        }
    }

    @Test("A body over the limit is answered 413 and the connection closed")
    func bodyTooLarge() async throws {
        try await withProxy { port in
            let connection = try await RawConnection.open(port: port)
            let body = String(repeating: "x", count: 100)
            try await connection.send("POST /_echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n\(body)")
            #expect(await connection.waitForResponses(1))
            #expect(connection.statuses == [413])
            #expect(connection.text.contains("Request body too large"))
            #expect(await connection.waitForClose())
        }
    }

    @Test("TRACE to a local path is refused like any other")
    func traceRefused() async throws {
        try await withProxy { port in
            let answer = try await RawHTTP.exchange(port: port, bytes: "TRACE /_echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 405"))
        }
    }
}
