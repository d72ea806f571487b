import Foundation
import NIOCore
import Testing
import TollgateApp
import TollgateStore
import TollgateTestSupport

/// Every row of DESIGN §3.3's error table, through a real server and a real upstream.
@Suite("Gateway errors")
struct GatewayErrorTests {
    @Test func noCredentialIs401WithWWWAuthenticate() async throws {
        try await withTollgate { server in
            let response = try await server.proxy("/shop/hello")
            #expect(response.status == 401)
            #expect(response.header("WWW-Authenticate") == "Key")
            #expect(response.header("Content-Type")?.hasPrefix("application/json") == true)
            #expect(response.body == #"{"message":"No API key found in request"}"#)
            #expect(server.upstream.requestCount == 0)
        }
    }

    @Test(arguments: ["tg_unknownunknownunknownunknown123", "", "not-a-token"])
    func unknownTokenIs401(token: String) async throws {
        try await withTollgate { server in
            let response = try await server.proxy("/shop/hello", headers: [("apikey", token.isEmpty ? "x" : token)])
            #expect(response.status == 401)
            #expect(response.body == #"{"message":"Invalid authentication credentials"}"#)
            #expect(server.upstream.requestCount == 0)
        }
    }

    @Test func terminatedTokenIs401() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 200)
            #expect(try await server.admin("POST", "/v1/subscriptions/\(id)/terminate").status == 200)
            let response = try await server.proxy("/shop/hello", headers: [("apikey", token)])
            #expect(response.status == 401)
            #expect(response.body == #"{"message":"Invalid authentication credentials"}"#)
        }
    }

    @Test func tokenOfAnotherProductIs403() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "strict-basic")
            let response = try await server.proxy("/shop/hello", headers: [("apikey", token)])
            #expect(response.status == 403)
            #expect(response.body == #"{"message":"You cannot consume this service"}"#)
            #expect(server.upstream.requestCount == 0)
        }
    }

    // `/_portal` is the consumer portal now; a `/_` path that no local route claims is still no route.
    @Test(arguments: ["/nothing/hello", "/", "/SHOP/hello", "/_nothing"])
    func unknownProductIs404(path: String) async throws {
        try await withTollgate { server in
            let response = try await server.proxy(path, headers: [("apikey", "whatever")])
            #expect(response.status == 404)
            #expect(response.body == #"{"message":"no Route matched with those values"}"#)
        }
    }

    @Test func deniedUnlistedEndpointIs404AndAllowedOneIsProxiedUnbilled() async throws {
        try await withTollgate { server in
            let (_, strictToken) = try await server.subscribe(plan: "strict-basic")
            let denied = try await server.proxy("/strict/other", headers: [("apikey", strictToken)])
            #expect(denied.status == 404)
            #expect(denied.body == #"{"message":"no Route matched with those values"}"#)
            #expect(try await server.proxy("/strict/hello", headers: [("apikey", strictToken)]).status == 200)

            let (shopID, shopToken) = try await server.subscribe(plan: "shop-basic")
            let allowed = try await server.proxy("/shop/not/listed", headers: [("apikey", shopToken)])
            #expect(allowed.status == 200)
            let billed = try await server.billedCalls(shopID)
            #expect(billed.values.reduce(0, +) == 0)
        }
    }

    @Test func credentialCheckComesBeforeTheEndpointCheck() async throws {
        try await withTollgate { server in
            let response = try await server.proxy("/strict/other")
            #expect(response.status == 401)
        }
    }

    @Test func unreachableUpstreamIs502() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "down-basic")
            let response = try await server.proxy("/down/hello", headers: [("apikey", token)])
            #expect(response.status == 502)
            #expect(response.body == #"{"message":"An invalid response was received from the upstream server"}"#)
        }
    }

    @Test func upstreamClosingWithoutAnswerIs502() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            let response = try await server.proxy("/shop/drop", headers: [("apikey", token)])
            #expect(response.status == 502)
            #expect(response.body == #"{"message":"An invalid response was received from the upstream server"}"#)
            #expect(try await server.billedCalls(id)["drop"] == 0)
        }
    }

    @Test func slowUpstreamIs504() async throws {
        try await withTollgate(configure: { $0.readTimeout = .milliseconds(300) }) { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            let response = try await server.proxy("/shop/slow/3000", headers: [("apikey", token)])
            #expect(response.status == 504)
            #expect(response.body == #"{"message":"The upstream server is timing out"}"#)
            #expect(try await server.billedCalls(id)["slow"] == 0)
            // The connection and the gateway stay usable.
            #expect(try await server.proxy("/shop/slow/10", headers: [("apikey", token)]).status == 200)
        }
    }

    @Test func upstreamConnectionsAreKeptAliveAndReused() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "shop-basic")
            for _ in 0..<20 {
                #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 200)
            }
            #expect(server.upstream.requestCount == 20)
            // One connection per event loop at most, whatever the client connections did.
            #expect(server.upstream.connectionCount <= System.coreCount)
        }
    }

    @Test func refusedCallsOfAConsumerAreRecordedForAnalyticsButNotBilledAndAnonymousOnesNotStored() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "strict-basic")
            #expect(try await server.proxy("/strict/hello").status == 401)
            #expect(try await server.proxy("/nothing").status == 404)
            #expect(try await server.proxy("/strict/other", headers: [("apikey", token)]).status == 404)
            // A billable call is durable before its answer, and usage is written in order.
            #expect(try await server.proxy("/strict/hello", headers: [("apikey", token)]).status == 200)
            let stored = try await TollgateStore.withStore(url: server.database, logger: TestLogger.make()) { try await $0.eventCount() }
            #expect(stored == 2)
            #expect(try await server.billedCalls(id).filter { $0.value > 0 } == ["hello": 1])
        }
    }
}
