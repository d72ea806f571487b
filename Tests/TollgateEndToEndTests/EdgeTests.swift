import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
import TollgateApp
import TollgateCore
import TollgateGateway
import SQLKit
@testable import TollgateStore
import TollgateTestSupport

/// The attacks of docs/security.md, sent as raw bytes to a real Tollgate in front of an
/// upstream that parses and records every request itself: each must find the edge closed.
@Suite("Edge: attacks on the gateway")
struct EdgeTests {
    static func catalog(upstreamPort: Int) -> String {
        """
        products:
          - id: edge
            name: Edge API
            upstream: http://127.0.0.1:\(upstreamPort)
            upstream_header: { name: X-Upstream-Secret, value: edge-secret }
            unlisted_endpoints: allow
            endpoints:
              - { identifier: create-invoice, name: Create invoice, method: POST, path: /invoice }
              - { identifier: get-invoice, name: Get invoice, method: GET, path: "/invoice/{id}" }
              - { identifier: report, name: Report, method: GET, path: /report }
              - { identifier: reuse, name: Reuse, method: GET, path: /drop-on-reuse }
              - { identifier: reuse-post, name: Reuse post, method: POST, path: /drop-on-reuse }
              - { identifier: switch, name: Switch, method: GET, path: /switch }
              - { identifier: hold, name: Hold, method: GET, path: /hold }
              - { identifier: short, name: Short, method: GET, path: /short }
          - id: exact
            name: Exact API
            upstream: http://127.0.0.1:\(upstreamPort)
            case_sensitive_paths: true
            endpoints:
              - { identifier: create-invoice, name: Create invoice, method: POST, path: /invoice }
          - id: down
            name: Down API
            upstream: http://127.0.0.1:1
            endpoints:
              - { identifier: hello, name: Hello, method: GET, path: /hello }
        plans:
          - { id: edge-basic, product: edge, name: Basic, currency: EUR, period: month, prices: [] }
          - { id: exact-basic, product: exact, name: Basic, currency: EUR, period: month, prices: [] }
          - id: down-quota
            product: down
            name: Quota
            currency: EUR
            period: month
            prices: [ { kind: prepaid, endpoint: hello, quota: 2, window: month } ]
        """
    }

    /// Runs `body` with Tollgate in front of a fresh recording upstream.
    static func withEdge(
        edge: @escaping @Sendable (inout EdgePolicy) -> Void = { _ in },
        _ body: @Sendable (RunningTollgate, RecordingUpstream) async throws -> Void
    ) async throws {
        let upstream = try await RecordingUpstream.start()
        do {
            try await withTollgate(configure: { options in
                options.catalog = try? Catalog.parse(yaml: catalog(upstreamPort: upstream.port))
                edge(&options.edge)
            }) { server in
                try await body(server, upstream)
            }
        } catch {
            await upstream.stop()
            throw error
        }
        await upstream.stop()
    }

    /// The endpoints a subscription was billed for, without those of no calls.
    static func billed(_ server: RunningTollgate, _ subscription: String) async throws -> [String: Int] {
        try await server.billedCalls(subscription).filter { $0.value > 0 }
    }

    static func head(_ requestLine: String, port: Int, token: String?, _ headers: [String] = []) -> String {
        var text = "\(requestLine)\r\nHost: 127.0.0.1:\(port)\r\n"
        if let token { text += "apikey: \(token)\r\n" }
        for header in headers { text += header + "\r\n" }
        return text + "\r\n"
    }

    static func chunked(_ body: String) -> String {
        String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n"
    }

    static let smuggled = "POST /invoice HTTP/1.1\r\nHost: upstream\r\nX-Consumer-ID: spoofed-customer\r\nContent-Length: 0\r\n\r\n"

    // MARK: Framing

    @Test(arguments: ["GET", "HEAD", "DELETE", "OPTIONS"])
    func aChunkedBodyOfAnyMethodStaysInsideItsRequest(method: String) async throws {
        try await Self.withEdge { server, upstream in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let connection = try await RawConnection.open(port: server.proxyPort)
            try await connection.send(
                Self.head("\(method) /edge/report HTTP/1.1", port: server.proxyPort, token: token, ["Transfer-Encoding: chunked"])
                    + Self.chunked(Self.smuggled))
            try await connection.send(Self.head("GET /edge/report HTTP/1.1", port: server.proxyPort, token: token))
            #expect(await connection.waitForResponses(2))
            #expect(connection.statuses == [200, 200])
            let seen = upstream.requests
            #expect(seen.map(\.method) == [method, "GET"])
            #expect(seen.map(\.uri) == ["/report", "/report"])
            #expect(seen.first?.body == Self.smuggled)
            #expect(!seen.contains { $0.values("x-consumer-id").contains("spoofed-customer") })
            await connection.close()
        }
    }

    @Test func aContentLengthBodyOfAGetStaysInsideItsRequest() async throws {
        try await Self.withEdge { server, upstream in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let connection = try await RawConnection.open(port: server.proxyPort)
            try await connection.send(
                Self.head("GET /edge/report HTTP/1.1", port: server.proxyPort, token: token, ["Content-Length: \(Self.smuggled.utf8.count)"])
                    + Self.smuggled + Self.head("GET /edge/report HTTP/1.1", port: server.proxyPort, token: token))
            #expect(await connection.waitForResponses(2))
            #expect(connection.statuses == [200, 200])
            #expect(upstream.requests.map(\.method) == ["GET", "GET"])
            #expect(upstream.requests.first?.body == Self.smuggled)
            await connection.close()
        }
    }

    @Test func traceConnectAndOtherCodingsAreRefusedAndReachNothing() async throws {
        try await Self.withEdge { server, upstream in
            let (id, token) = try await server.subscribe(plan: "edge-basic")
            let port = server.proxyPort
            let attempts: [(String, Int)] = [
                (Self.head("TRACE /edge/report HTTP/1.1", port: port, token: token, ["Content-Length: \(Self.smuggled.utf8.count)"])
                    + Self.smuggled, 405),
                (Self.head("CONNECT 127.0.0.1:1 HTTP/1.1", port: port, token: token), 405),
                (Self.head("POST /edge/invoice HTTP/1.1", port: port, token: token, ["Transfer-Encoding: gzip, chunked"])
                    + Self.chunked("x"), 400),
            ]
            for (bytes, status) in attempts {
                let connection = try await RawConnection.open(port: port)
                try await connection.send(bytes)
                #expect(await connection.waitForResponses(1))
                #expect(connection.statuses.first == status, "\(bytes.prefix(30)): \(connection.text)")
                await connection.close()
            }
            #expect(upstream.requests.isEmpty)
            #expect(try await Self.billed(server, id).isEmpty)
        }
    }

    @Test func requestsThatCannotBeReadAre400WithTheirFaultAndReachNothing() async throws {
        try await Self.withEdge { server, upstream in
            let (id, token) = try await server.subscribe(plan: "edge-basic")
            let port = server.proxyPort
            let attempts: [(bytes: String, fault: String)] = [
                // A framework that folds the method's case would run the billed GET handler.
                (Self.head("get /edge/report HTTP/1.1", port: port, token: token), "malformed method"),
                (Self.head("POST /edge/invoice HTTP/1.1", port: port, token: token, ["Content-Length: 3", "Transfer-Encoding: chunked"])
                    + Self.chunked("abc"), "both Content-Length and Transfer-Encoding"),
                (Self.head("GET /edge/report HTTP/1.1", port: port, token: token, ["X-A: a\nb"]), "a line not ended by CRLF"),
                // The head is forwarded, then its body breaks: the call ends as a refusal, unbilled.
                (Self.head("POST /edge/invoice HTTP/1.1", port: port, token: token, ["Transfer-Encoding: chunked"])
                    + "3\r\nabc\r\nzz\r\n", "an invalid chunk size line"),
            ]
            for attempt in attempts {
                let connection = try await RawConnection.open(port: port)
                try await connection.send(attempt.bytes)
                #expect(await connection.waitForResponses(1))
                #expect(connection.statuses == [400], "\(connection.text)")
                #expect(connection.text.contains(#"{"message":"Bad request: \#(attempt.fault)"}"#), "\(connection.text)")
                #expect(await connection.waitForClose())
                await connection.close()
            }
            #expect(upstream.requests.allSatisfy { $0.method != "GET" })
            #expect(try await Self.billed(server, id).isEmpty)
        }
    }

    @Test func anUpgradeIsRefusedAndClosedAndH2CIsAnsweredInHTTP11() async throws {
        try await Self.withEdge { server, upstream in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let websocket = try await RawConnection.open(port: server.proxyPort)
            try await websocket.send(Self.head(
                "GET /edge/report HTTP/1.1", port: server.proxyPort, token: token,
                ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]))
            #expect(await websocket.waitForClose())
            #expect(websocket.statuses == [400])
            #expect(websocket.text.contains("not supported"))

            let h2c = try await RawConnection.open(port: server.proxyPort)
            try await h2c.send(Self.head(
                "GET /edge/report HTTP/1.1", port: server.proxyPort, token: token,
                ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"]))
            #expect(await h2c.waitForClose())
            #expect(h2c.statuses == [200])
            #expect(upstream.requests.count == 1)
            #expect(upstream.requests.first?.values("upgrade") == [])
        }
    }

    @Test func anUnaskedSwitchingProtocolsIsA502AndItsConnectionIsNotReused() async throws {
        try await Self.withEdge { server, upstream in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let switched = try await server.proxy("/edge/switch", headers: [("apikey", token)])
            #expect(switched.status == 502)
            try await waitUntil("the upstream connection to close") { upstream.closedConnectionCount >= 1 }
            let next = try await server.proxy("/edge/report", headers: [("apikey", token)])
            #expect(next.status == 200)
            #expect(Set(upstream.requests.map(\.connection)).count == 2)
        }
    }

    @Test func anAnswerThatEndsEarlyCutsTheClientAndInformationalAnswersAreDropped() async throws {
        try await Self.withEdge { server, upstream in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let short = try await RawConnection.open(port: server.proxyPort)
            try await short.send(Self.head("GET /edge/short HTTP/1.1", port: server.proxyPort, token: token))
            #expect(await short.waitForClose())
            // The head promised 100 bytes: the client sees 10 and a closed connection, never a
            // complete answer it could mistake for the whole.
            #expect(short.statuses == [200])
            #expect(short.text.hasSuffix("0123456789"))

            let early = try await RawConnection.open(port: server.proxyPort)
            try await early.send(Self.head("GET /edge/early HTTP/1.1", port: server.proxyPort, token: token))
            #expect(await early.waitForResponses(1))
            #expect(early.statuses == [200])
            #expect(!early.text.contains("103"))
            // The connection is still good for the next call.
            try await early.send(Self.head("GET /edge/report HTTP/1.1", port: server.proxyPort, token: token))
            #expect(await early.waitForResponses(2))
            #expect(early.statuses == [200, 200])
            await early.close()
            #expect(upstream.requests.map(\.uri) == ["/short", "/early", "/report"])
        }
    }

    // MARK: Free paths

    @Test func everySpellingOfABilledCallIsBilled() async throws {
        try await Self.withEdge { server, upstream in
            let (id, token) = try await server.subscribe(plan: "edge-basic")
            let calls: [(String, String)] = [
                ("POST", "/edge/INVOICE"), ("POST", "/edge/Invoice/"), ("POST", "/edge/invoice;x=1"), ("POST", "/edge/%69nvoice"),
                ("HEAD", "/edge/invoice/7"), ("GET", "/edge/INVOICE/8;jsessionid=abc"),
            ]
            for (method, path) in calls {
                let response = try await server.proxy(path, method: method, headers: [("apikey", token)])
                #expect(response.status == 200, "\(method) \(path)")
            }
            #expect(try await Self.billed(server, id) == ["create-invoice": 4, "get-invoice": 2])
            // Forwarded as sent (normalized), parameters included.
            #expect(upstream.requests.map(\.uri).contains("/invoice;x=1"))
        }
    }

    @Test func caseSensitiveProductsMatchOnlyTheExactCase() async throws {
        try await Self.withEdge { server, _ in
            let (id, token) = try await server.subscribe(plan: "exact-basic")
            #expect(try await server.proxy("/exact/INVOICE", method: "POST", headers: [("apikey", token)]).status == 200)
            #expect(try await server.proxy("/exact/invoice", method: "POST", headers: [("apikey", token)]).status == 200)
            #expect(try await Self.billed(server, id) == ["create-invoice": 1])
        }
    }

    @Test func methodOverridesNeverReachTheUpstream() async throws {
        try await Self.withEdge { server, upstream in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let response = try await server.proxy("/edge/report?_method=POST&keep=1", headers: [
                ("apikey", token), ("X-HTTP-Method-Override", "POST"), ("X-HTTP-Method", "POST"), ("X-Method-Override", "POST"),
                ("X_HTTP_Method_Override", "POST"),
            ])
            #expect(response.status == 200)
            let seen = try #require(upstream.requests.last)
            #expect(seen.uri == "/report?keep=1")
            for name in ["x-http-method-override", "x-http-method", "x-method-override", "x_http_method_override"] {
                #expect(seen.values(name).isEmpty, "\(name)")
            }
        }
    }

    // MARK: Spoofing

    @Test func protectedHeadersInOtherSpellingsAreRemovedAndForwardingHeadersReplaced() async throws {
        try await Self.withEdge { server, upstream in
            let (id, token) = try await server.subscribe(plan: "edge-basic")
            let response = try await server.proxy("/edge/report", headers: [
                ("apikey", token), ("X_Consumer_ID", "spoofed"), ("x_consumer_username", "spoofed"), ("X-CONSUMER-ID", "spoofed"),
                ("X_Upstream_Secret", "guess"), ("x-upstream-SECRET", "guess"), ("X_Credential_Identifier", "spoofed"),
                ("Forwarded", "for=6.6.6.6"), ("X-Real-IP", "6.6.6.6"), ("X-Forwarded-For", "6.6.6.6"), ("X_Forwarded_For", "6.6.6.6"),
                ("X_Real_IP", "6.6.6.6"),
            ])
            #expect(response.status == 200)
            let seen = try #require(upstream.requests.last)
            let names = seen.headers.map { $0.name.lowercased().replacingOccurrences(of: "_", with: "-") }
            for protected in ["x-consumer-id", "x-consumer-username", "x-upstream-secret", "x-forwarded-for", "x-real-ip", "forwarded"] {
                #expect(names.filter { $0 == protected }.count == 1, "\(protected): \(seen.headers)")
            }
            #expect(seen.values(exactly: "X-Consumer-Username") == [id])
            #expect(seen.values(exactly: "X-Upstream-Secret") == ["edge-secret"])
            #expect(seen.values("x-credential-identifier").isEmpty && !names.contains("x-credential-identifier"))
            #expect(seen.values(exactly: "X-Forwarded-For") == ["127.0.0.1"])
            #expect(seen.values(exactly: "X-Real-IP") == ["127.0.0.1"])
            #expect(seen.values(exactly: "Forwarded").first?.hasPrefix("for=127.0.0.1;proto=http") == true)
            #expect(!seen.headers.contains { $0.value.contains("6.6.6.6") || $0.value == "spoofed" || $0.value == "guess" })
        }
    }

    @Test func aTrustedProxyExtendsTheForwardedChain() async throws {
        try await Self.withEdge(edge: { $0.trustedProxies = [AddressRange("127.0.0.0/8")!] }) { server, upstream in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let response = try await server.proxy("/edge/report", headers: [("apikey", token), ("X-Forwarded-For", "203.0.113.9, 127.0.0.2")])
            #expect(response.status == 200)
            let seen = try #require(upstream.requests.last)
            #expect(seen.values(exactly: "X-Forwarded-For") == ["203.0.113.9, 127.0.0.2, 127.0.0.1"])
            #expect(seen.values(exactly: "X-Real-IP") == ["203.0.113.9"])
        }
    }

    // MARK: Storage

    @Test func anonymousRefusalsStoreNothingAndAConsumersRefusalStoresAShortPath() async throws {
        try await Self.withEdge { server, _ in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let (_, exactToken) = try await server.subscribe(plan: "exact-basic")
            let longPath = "/" + String(repeating: "a", count: 10_000)
            for index in 0..<200 {
                let target = index.isMultiple(of: 2) ? "/nothing\(longPath)" : "/edge\(longPath)"
                let response = try await RawHTTP.get(port: server.proxyPort, target: target, headers: index % 4 == 1 ? [("apikey", "tg_wrong")] : [])
                #expect(response.status == 404 || response.status == 401)
            }
            // A refusal of a known consumer (wrong product) is kept for analytics, with its path cut short.
            #expect(try await server.proxy("/edge\(longPath)", headers: [("apikey", exactToken)]).status == 403)
            // A billable call is durable before its answer, and batches are written in order.
            #expect(try await server.proxy("/edge/report", headers: [("apikey", token)]).status == 200)
            let stored = try await TollgateStore.withStore(url: server.database, logger: TestLogger.make()) { store in
                try await store.eventCount()
            }
            #expect(stored == 2)
        }
    }

    // MARK: Pipelining

    @Test func pipelinedRequestsAreAnsweredInOrderAndEachBilledOnce() async throws {
        try await Self.withEdge { server, upstream in
            let (id, token) = try await server.subscribe(plan: "edge-basic")
            let port = server.proxyPort
            let body = #"{"n":1}"#
            let connection = try await RawConnection.open(port: port)
            // Four requests in one write: the gateway must not read them as one, nor answer out of order.
            try await connection.send(
                Self.head("GET /edge/report HTTP/1.1", port: port, token: token)
                    + Self.head("POST /edge/invoice HTTP/1.1", port: port, token: token, ["Content-Length: \(body.utf8.count)"]) + body
                    + Self.head("GET /edge/report HTTP/1.1", port: port, token: nil)
                    + Self.head("GET /edge/invoice/7 HTTP/1.1", port: port, token: token))
            #expect(await connection.waitForResponses(4))
            #expect(connection.statuses == [200, 200, 401, 200])
            #expect(!connection.isClosed)
            #expect(upstream.requests.map(\.uri) == ["/report", "/invoice", "/invoice/7"])
            #expect(upstream.requests.map(\.body) == ["", body, ""])
            #expect(try await Self.billed(server, id) == ["report": 1, "create-invoice": 1, "get-invoice": 1])
            await connection.close()
        }
    }

    // MARK: Time and count limits

    @Test func aHeadThatNeverEndsIsCutWith408() async throws {
        try await Self.withEdge(edge: { $0.requestHeadTimeout = .milliseconds(300) }) { server, upstream in
            let connection = try await RawConnection.open(port: server.proxyPort)
            try await connection.send("GET /edge/report HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            #expect(await connection.waitForClose())
            #expect(connection.statuses == [408])
            #expect(upstream.requests.isEmpty)
        }
    }

    @Test func anOversizedHeadIs431() async throws {
        try await Self.withEdge(edge: { $0.maxRequestHeadBytes = 4096 }) { server, upstream in
            let connection = try await RawConnection.open(port: server.proxyPort)
            try await connection.send("GET /edge/" + String(repeating: "a", count: 8192) + " HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await connection.waitForClose())
            #expect(connection.statuses == [431])
            #expect(upstream.requests.isEmpty)
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosed() async throws {
        try await Self.withEdge(edge: { $0.idleTimeout = .milliseconds(300) }) { server, _ in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let connection = try await RawConnection.open(port: server.proxyPort)
            try await connection.send(Self.head("GET /edge/report HTTP/1.1", port: server.proxyPort, token: token))
            #expect(await connection.waitForResponses(1))
            #expect(await connection.waitForClose())
            #expect(connection.statuses == [200])
        }
    }

    @Test func aTrickledBodyIsCutAndItsUpstreamConnectionReleased() async throws {
        try await Self.withEdge(edge: { $0.bodyTimeout = .milliseconds(300) }) { server, upstream in
            let (id, token) = try await server.subscribe(plan: "edge-basic")
            let connection = try await RawConnection.open(port: server.proxyPort)
            try await connection.send(
                Self.head("POST /edge/invoice HTTP/1.1", port: server.proxyPort, token: token, ["Content-Length: 100"]) + "0123456789")
            #expect(await connection.waitForClose())
            #expect(connection.statuses == [408])
            try await waitUntil("the upstream connection to close") { upstream.closedConnectionCount >= 1 }
            #expect(upstream.requests.isEmpty)
            #expect(try await Self.billed(server, id).isEmpty)
        }
    }

    @Test func connectionsOverTheLimitAreClosedAtOnce() async throws {
        try await Self.withEdge(edge: { $0.maxClientConnections = 2 }) { server, _ in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let first = try await RawConnection.open(port: server.proxyPort)
            let second = try await RawConnection.open(port: server.proxyPort)
            try await first.send(Self.head("GET /edge/report HTTP/1.1", port: server.proxyPort, token: token))
            try await second.send(Self.head("GET /edge/report HTTP/1.1", port: server.proxyPort, token: token))
            #expect(await first.waitForResponses(1))
            #expect(await second.waitForResponses(1))
            let third = try await RawConnection.open(port: server.proxyPort)
            #expect(await third.waitForClose())
            #expect(third.statuses.isEmpty)
            await first.close()
            try await waitUntil("a new connection to be served") {
                // Until the server has seen the first one close, a new connection is closed at once.
                let fourth = try await RawConnection.open(port: server.proxyPort)
                guard (try? await fourth.send(Self.head("GET /edge/report HTTP/1.1", port: server.proxyPort, token: token))) != nil
                else { return false }
                let answered = await fourth.waitForResponses(1, limit: .seconds(2))
                await fourth.close()
                return answered
            }
            await second.close()
        }
    }

    @Test func upstreamConnectionsOverTheProductLimitAre503AndFree() async throws {
        try await Self.withEdge(edge: { $0.maxUpstreamConnectionsPerProduct = 1 }) { server, upstream in
            let (id, token) = try await server.subscribe(plan: "edge-basic")
            let holding = try await RawConnection.open(port: server.proxyPort)
            try await holding.send(Self.head("GET /edge/hold HTTP/1.1", port: server.proxyPort, token: token))
            try await waitUntil("the upstream to receive the call") { upstream.requests.count == 1 }
            let refused = try await server.proxy("/edge/report", headers: [("apikey", token)])
            #expect(refused.status == 503)
            #expect(refused.header("Retry-After") == "1")
            #expect(try await Self.billed(server, id).isEmpty)
            await holding.close()
            try await waitUntil("a call once the connection is free") { (try? await server.proxy("/edge/report", headers: [("apikey", token)]).status) == 200 }
        }
    }

    @Test func theDrainDeadlineCutsCallsThatNeverEnd() async throws {
        let upstream = try await RecordingUpstream.start()
        let holding = NIOLockedValueBox<RawConnection?>(nil)
        try await withTollgate(configure: { options in
            options.catalog = try? Catalog.parse(yaml: Self.catalog(upstreamPort: upstream.port))
            options.edge.drainTimeout = .milliseconds(300)
        }) { server in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            let connection = try await RawConnection.open(port: server.proxyPort)
            try await connection.send(Self.head("GET /edge/hold HTTP/1.1", port: server.proxyPort, token: token))
            try await waitUntil("the upstream to receive the call") { upstream.requests.count == 1 }
            holding.withLockedValue { $0 = connection }
        }
        // withTollgate returned: the shutdown finished although the call never ended.
        let connection = try #require(holding.withLockedValue { $0 })
        #expect(await connection.waitForClose())
        await upstream.stop()
    }

    // MARK: Failure paths

    @Test func aNonIdempotentCallIsNeverSentTwice() async throws {
        try await Self.withEdge { server, upstream in
            let (_, token) = try await server.subscribe(plan: "edge-basic")
            // One client connection: its calls share one event loop, so one pool of upstream connections.
            let client = try await RawConnection.open(port: server.proxyPort)
            func call(_ method: String, _ path: String, answers: Int) async throws {
                try await client.send(Self.head("\(method) /edge\(path) HTTP/1.1", port: server.proxyPort, token: token))
                #expect(await client.waitForResponses(answers), "\(method) \(path)")
            }
            try await call("GET", "/drop-on-reuse", answers: 1)
            // The pooled connection is reused and dropped: a POST must not be sent again.
            try await call("POST", "/drop-on-reuse", answers: 2)
            #expect(upstream.requests.filter { $0.method == "POST" }.count == 1)
            // A GET is: it is idempotent (first on a new pooled connection, then on a fresh one).
            try await call("GET", "/report", answers: 3)
            try await call("GET", "/drop-on-reuse", answers: 4)
            #expect(client.statuses == [200, 502, 200, 200])
            #expect(upstream.requests.map(\.method) == ["GET", "POST", "GET", "GET", "GET"])
            await client.close()
        }
    }

    @Test func tollgatesOwnFailuresUseNoQuota() async throws {
        try await Self.withEdge { server, _ in
            let (id, token) = try await server.subscribe(plan: "down-quota")
            for _ in 0..<4 {
                let response = try await server.proxy("/down/hello", headers: [("apikey", token)])
                #expect(response.status == 502)
            }
            let quota = try await server.admin("GET", "/v1/subscriptions/\(id)/quota")
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(quota.body.utf8)) as? [[String: Any]])
            #expect(rows.first?["used"] as? Int == 0)
            #expect(rows.first?["remaining"] as? Int == 2)
        }
    }

    @Test func aFailedLeaseWriteFailsOnlyItsCallsAndTheNextCallAsksAgain() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "shop-200")
            @Sendable func renameLeases(_ from: String, _ to: String) async throws {
                try await TollgateStore.withStore(url: server.database, logger: TestLogger.make()) { store in
                    try await store.backend.withSQL { try await $0.raw("ALTER TABLE \(ident: from) RENAME TO \(ident: to)").run() }
                }
            }
            // The first call of the month needs a lease: with its table gone, the write fails.
            try await renameLeases("quota_leases", "quota_leases_away")
            let failed = try await server.proxy("/shop/hello", headers: [("apikey", token)])
            #expect(failed.status == 503)
            try await renameLeases("quota_leases_away", "quota_leases")
            let next = try await server.proxy("/shop/hello", headers: [("apikey", token)])
            #expect(next.status == 200)
            // The failed call used no quota.
            #expect(next.header("X-RateLimit-Remaining-Month") == "199")
        }
    }
}
