import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// The path is normalized once; that one form is matched, metered and forwarded.
@Suite("Gateway paths")
struct GatewayPathTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var sent: String
        var forwarded: String
        var endpoint: String?
        var testDescription: String { sent }
    }

    static let normalized: [Case] = [
        Case(sent: "/shop/hello", forwarded: "/hello", endpoint: "hello"),
        Case(sent: "/shop//hello", forwarded: "/hello", endpoint: "hello"),
        Case(sent: "/shop/./hello", forwarded: "/hello", endpoint: "hello"),
        Case(sent: "/shop/items/../hello", forwarded: "/hello", endpoint: "hello"),
        Case(sent: "/shop/%68ello", forwarded: "/hello", endpoint: "hello"),
        Case(sent: "/shop/items/%7E1", forwarded: "/items/~1", endpoint: "get-item"),
        Case(sent: "/shop/items/a%2fb", forwarded: "/items/a%2Fb", endpoint: "get-item"),
        Case(sent: "/shop/items/a%2Fb/c", forwarded: "/items/a%2Fb/c", endpoint: nil),
        Case(sent: "/sh%6fp/hello", forwarded: "/hello", endpoint: "hello"),
    ]

    @Test(arguments: normalized)
    func oneNormalFormIsMatchedMeteredAndForwarded(_ check: Case) async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            let response = try await RawHTTP.get(port: server.proxyPort, target: check.sent, headers: [("apikey", token)])
            #expect(response.status == 200)
            let json = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
            #expect(json?["path"] as? String == check.forwarded)
            let billed = try await server.billedCalls(id)
            if let endpoint = check.endpoint {
                #expect(billed[endpoint] == 1)
                #expect(billed.values.reduce(0, +) == 1)
            } else {
                #expect(billed.values.reduce(0, +) == 0)
            }
        }
    }

    @Test(arguments: ["/shop/../strict/hello", "/shop/%2e%2e/strict/hello", "/shop/%2E%2E/strict/hello", "/../shop/hello", "/shop/a/../../strict/hello"])
    func aPathThatLeavesItsProductIsRefused(path: String) async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "strict-basic")
            let response = try await RawHTTP.get(port: server.proxyPort, target: path, headers: [("apikey", token)])
            #expect(response.status == 400)
            #expect(response.body.contains(#""message""#))
            #expect(server.upstream.requestCount == 0)
        }
    }

    @Test func aMalformedEscapeIsRefused() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "shop-basic")
            let response = try await RawHTTP.get(port: server.proxyPort, target: "/shop/bad%zzescape", headers: [("apikey", token)])
            #expect(response.status == 400)
            #expect(server.upstream.requestCount == 0)
        }
    }
}
