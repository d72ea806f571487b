import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
@testable import TollgateGateway

/// The gateway's decision about a request head and the head it sends upstream, in memory: no
/// socket, no store.
@Suite("Decision and upstream heads (in memory)")
struct DecisionTests {
    static let token = "tg_test_token_shop"
    static let otherToken = "tg_test_token_other"

    static let directory: GatewayDirectory = {
        let catalog = try! Catalog.parse(yaml: """
            products:
              - id: shop
                name: Shop
                upstream: http://127.0.0.1:9/base
                upstream_header: { name: X-Upstream-Secret, value: s3cret }
                endpoints:
                  - { identifier: hello, name: Hello, method: GET, path: /hello }
                  - { identifier: order, name: Order, method: POST, path: "/orders/{id}" }
              - id: other
                name: Other
                upstream: http://127.0.0.1:9
                unlisted_endpoints: deny
                endpoints:
                  - { identifier: ping, name: Ping, method: GET, path: /ping }
            plans:
              - { id: shop-basic, product: shop, name: Basic, currency: EUR, period: month, prices: [] }
              - { id: other-basic, product: other, name: Basic, currency: EUR, period: month, prices: [] }
            """)
        let directory = GatewayDirectory()
        directory.replaceRoutes(catalog.products.map { ($0, false) })
        directory.replacePlans(catalog.plans)
        directory.setCredential(
            APIToken.hash(token[...]),
            Consumer(subscription: "sub_shop", customer: "cus_1", product: "shop", plan: "shop-basic", startedAt: Date()))
        directory.setCredential(
            APIToken.hash(otherToken[...]),
            Consumer(subscription: "sub_other", customer: "cus_2", product: "other", plan: "other-basic", startedAt: Date()))
        return directory
    }()

    /// A request head as the proxy reads it from the bytes of its request line and header lines.
    static func head(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)] = [("apikey", token)]) -> ClientRequestHead {
        let text = "\(method.rawValue) \(uri) HTTP/1.1\r\n" + headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
        return try! ClientRequestDecoder.parseHead(ByteBuffer(string: text))
    }

    /// The decision on a connection's first call.
    static func decide(_ head: ClientRequestHead) -> Decision {
        var tokens = RecentTokenHash()
        return Decision.make(head: head, directory: directory, tokens: &tokens)
    }

    static func forwarded(_ head: ClientRequestHead) throws -> Forward {
        guard case .forward(let forward) = decide(head) else { throw DecisionFailure(decision: "\(decide(head))") }
        return forward
    }

    static func refusal(_ head: ClientRequestHead) -> ProxyRefusal? {
        if case .refuse(let refusal, _) = decide(head) { return refusal }
        return nil
    }

    @Test("A billed endpoint matches whatever the case of its literal segments, its ; parameters and HEAD")
    func billedPathsCannotBeDisguised() throws {
        for uri in ["/shop/hello", "/shop/HELLO", "/shop/hello;x=1", "/shop/./hello", "/shop/a/../hello"] {
            let forward = try Self.forwarded(Self.head(.GET, uri))
            #expect(forward.endpoint == "hello", "\(uri)")
            #expect(forward.meteredPath.hasPrefix("/shop/"), "\(uri)")
            #expect(!forward.meteredPath.contains(";"), "\(uri)")
        }
        #expect(try Self.forwarded(Self.head(.HEAD, "/shop/hello")).endpoint == "hello")
        #expect(try Self.forwarded(Self.head(.POST, "/shop/orders/42")).endpoint == "order")
        #expect(try Self.forwarded(Self.head(.GET, "/shop/unlisted")).endpoint == nil)
    }

    @Test("The credential comes from apikey, Bearer or the query, and never travels on")
    func credentialSources() throws {
        let bearer = try Self.forwarded(Self.head(.GET, "/shop/hello", [("Authorization", "Bearer \(Self.token)")]))
        #expect(bearer.credentialInAuthorization)
        let query = try Self.forwarded(Self.head(.GET, "/shop/hello?a=1&apikey=\(Self.token)&_method=DELETE&b=2", []))
        #expect(query.query == "a=1&b=2")
        #expect(query.endpoint == "hello")
    }

    @Test("One connection's calls: each token presented decides its own call, the last one's hash reused or not")
    func tokensOfOneConnection() throws {
        var tokens = RecentTokenHash()
        func decide(_ head: ClientRequestHead) -> Decision {
            Decision.make(head: head, directory: Self.directory, tokens: &tokens)
        }
        let calls: [(head: ClientRequestHead, subscription: String?, refusal: HTTPResponseStatus?)] = [
            (Self.head(.GET, "/shop/hello"), "sub_shop", nil),
            (Self.head(.GET, "/shop/hello"), "sub_shop", nil),
            (Self.head(.GET, "/shop/hello", [("apikey", Self.otherToken)]), nil, .forbidden),
            (Self.head(.GET, "/shop/hello", [("apikey", String(Self.token.dropLast()))]), nil, .unauthorized),
            (Self.head(.GET, "/shop/hello", [("apikey", Self.token + "x")]), nil, .unauthorized),
            (Self.head(.GET, "/shop/hello", [("Authorization", "Bearer \(Self.token)")]), "sub_shop", nil),
            (Self.head(.GET, "/other/ping", [("Authorization", "Bearer \(Self.otherToken)")]), "sub_other", nil),
            (Self.head(.GET, "/shop/hello", [("apikey", "tg_wrong")]), nil, .unauthorized),
            (Self.head(.GET, "/shop/hello", []), nil, .unauthorized),
            (Self.head(.GET, "/shop/hello"), "sub_shop", nil),
        ]
        for (index, call) in calls.enumerated() {
            switch decide(call.head) {
            case .forward(let forward):
                #expect(forward.consumer.subscription == call.subscription, "call \(index)")
                #expect(call.refusal == nil, "call \(index)")
            case .refuse(let refusal, _):
                #expect(refusal.status == call.refusal, "call \(index)")
                #expect(call.subscription == nil, "call \(index)")
            }
        }
    }

    @Test("Refusals: no credential, an unknown one, another product's, an unlisted endpoint denied, no route")
    func refusals() {
        #expect(Self.refusal(Self.head(.GET, "/shop/hello", []))?.status == .unauthorized)
        #expect(Self.refusal(Self.head(.GET, "/shop/hello", [("apikey", "tg_wrong")]))?.status == .unauthorized)
        #expect(Self.refusal(Self.head(.GET, "/other/ping"))?.status == .forbidden)
        #expect(Self.refusal(Self.head(.GET, "/other/elsewhere", [("apikey", Self.otherToken)]))?.status == .notFound)
        #expect(Self.refusal(Self.head(.GET, "/nowhere/hello"))?.status == .notFound)
        #expect(Self.refusal(Self.head(.GET, "/shop/../other/ping"))?.status == .badRequest)
    }

    @Test("What no route may receive: TRACE, CONNECT, upgrades other than h2c, codings other than chunked")
    func unacceptableHeads() {
        #expect(Self.refusal(Self.head(.TRACE, "/shop/hello"))?.status == .methodNotAllowed)
        #expect(Self.refusal(Self.head(.CONNECT, "/shop/hello"))?.status == .methodNotAllowed)
        let websocket = Self.head(.GET, "/shop/hello", [("apikey", Self.token), ("Connection", "Upgrade"), ("Upgrade", "websocket")])
        #expect(Self.refusal(websocket)?.status == .badRequest)
        let h2c = Self.head(.GET, "/shop/hello", [("apikey", Self.token), ("Connection", "Upgrade"), ("Upgrade", "h2c")])
        #expect(Self.refusal(h2c) == nil)
        let gzip = Self.head(.POST, "/shop/orders/1", [("apikey", Self.token), ("Transfer-Encoding", "gzip, chunked")])
        #expect(Self.refusal(gzip)?.status == .badRequest)
    }

    @Test("Upstream heads: identity in every spelling replaced, hop-by-hop and credentials dropped, framing kept")
    func upstreamHead() throws {
        let client = Self.head(.POST, "/shop/orders/7?x=1", [
            ("Host", "api.example"), ("apikey", Self.token), ("X-Consumer-ID", "spoofed"), ("x_consumer_username", "spoofed"),
            ("X-CONSUMER-GROUPS", "admin"), ("X-Forwarded-For", "6.6.6.6"), ("X_Forwarded_For", "7.7.7.7"), ("X-Real-IP", "6.6.6.6"),
            ("X-HTTP-Method-Override", "DELETE"), ("Connection", "keep-alive, X-Drop"), ("X-Drop", "1"), ("Keep-Alive", "timeout=5"),
            ("X-Upstream-Secret", "guess"), ("Transfer-Encoding", "chunked"), ("Accept", "application/json"),
        ])
        let forward = try Self.forwarded(client)
        let upstream = Self.upstreamHead(client, forward)
        let headers = upstream.headers
        #expect(upstream.requestLine == "POST /base/orders/7?x=1 HTTP/1.1")
        #expect(upstream.chunked)
        #expect(headers["X-Consumer-ID"] == ["cus_1"])
        #expect(headers["X-Consumer-Username"] == ["sub_shop"])
        #expect(headers["X-Consumer-Groups"].isEmpty)
        #expect(headers["X-Upstream-Secret"] == ["s3cret"])
        #expect(headers["X-Forwarded-For"] == ["127.0.0.1"])
        #expect(headers["X-Real-IP"] == ["127.0.0.1"])
        #expect(headers["X-Forwarded-Host"] == ["api.example"])
        #expect(headers["Host"] == ["127.0.0.1:9"])
        #expect(headers["Transfer-Encoding"] == ["chunked"])
        #expect(headers["X-Forwarded-Proto"] == ["http"])
        #expect(headers["X-Forwarded-Prefix"] == ["/shop"])
        #expect(headers["X-Request-ID"] == ["req_1"])
        #expect(headers["Forwarded"] == [#"for=127.0.0.1;proto=http;host="api.example""#])
        #expect(headers["Accept"] == ["application/json"])
        for dropped in ["apikey", "X-HTTP-Method-Override", "Connection", "X-Drop", "Keep-Alive"] {
            #expect(headers[dropped].isEmpty, "\(dropped)")
        }
        #expect(!headers.contains { $0.name.lowercased().replacingOccurrences(of: "_", with: "-") == "x-consumer-username" && $0.value == "spoofed" })
    }
}

extension DecisionTests {
    /// The head `UpstreamRequest.write` makes, read back: its request line, headers and framing.
    static func upstreamHead(
        _ client: ClientRequestHead, _ forward: Forward
    ) -> (requestLine: String, headers: HTTPHeaders, chunked: Bool, text: String) {
        var buffer = ByteBuffer()
        let chunked = UpstreamRequest.write(
            for: client, forward: forward, requestID: "req_1", clientAddress: "127.0.0.1", edge: EdgePolicy(), into: &buffer)
        let text = String(buffer: buffer)
        var lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst()
        var headers = HTTPHeaders()
        for line in lines where !line.isEmpty {
            let colon = line.firstIndex(of: ":")!
            headers.add(name: String(line[..<colon]), value: String(line[line.index(after: colon)...].dropFirst()))
        }
        return (requestLine, headers, chunked, text)
    }

    @Test("Upstream heads as bytes: unchanged header lines copied in order, one blank line at the end, framing as NIO's encoder")
    func upstreamHeadBytes() throws {
        let get = Self.head(.GET, "/shop/hello", [("Host", "api.example"), ("apikey", Self.token), ("Accept", "*/*"), ("X-Custom", "a, b")])
        let written = Self.upstreamHead(get, try Self.forwarded(get))
        #expect(written.text.hasPrefix("GET /base/hello HTTP/1.1\r\nAccept: */*\r\nX-Custom: a, b\r\nHost: 127.0.0.1:9\r\n"))
        #expect(written.text.hasSuffix("\r\nX-Request-ID: req_1\r\n\r\n"))
        #expect(!written.chunked)
        #expect(written.headers["Transfer-Encoding"].isEmpty)
        // A POST without a length goes chunked (an empty body is then one last chunk).
        let post = Self.head(.POST, "/shop/orders/1", [("apikey", Self.token)])
        let posted = Self.upstreamHead(post, try Self.forwarded(post))
        #expect(posted.chunked)
        #expect(posted.headers["transfer-encoding"] == ["chunked"])
        // A length wins: the body goes as it is.
        let sized = Self.head(.PUT, "/shop/orders/1", [("apikey", Self.token), ("Content-Length", "3")])
        let put = Self.upstreamHead(sized, try Self.forwarded(sized))
        #expect(!put.chunked)
        #expect(put.headers["Content-Length"] == ["3"])
        #expect(put.headers["Transfer-Encoding"].isEmpty)
        // A HEAD stays a HEAD, a query stays with its path.
        let head = Self.head(.HEAD, "/shop/hello?q=1", [("apikey", Self.token)])
        #expect(Self.upstreamHead(head, try Self.forwarded(head)).requestLine == "HEAD /base/hello?q=1 HTTP/1.1")
    }
}

private struct DecisionFailure: Error, CustomStringConvertible {
    var decision: String
    var description: String { "not forwarded: \(decision)" }
}
