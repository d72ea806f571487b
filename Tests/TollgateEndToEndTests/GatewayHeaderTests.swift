import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// What the upstream receives: identity, the vendor secret, forwarding headers; never the
/// credential, client-sent identity headers or hop-by-hop headers.
@Suite("Gateway headers")
struct GatewayHeaderTests {
    /// The headers the demo upstream saw, lower-cased names.
    func upstreamHeaders(_ response: TestResponse) throws -> [String: [String]] {
        try #require(try response.json()["headers"] as? [String: [String]])
    }

    @Test(arguments: ["header", "bearer", "query"])
    func identityAndSecretAreAddedAndTheCredentialIsNotForwarded(form: String) async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            var headers: [(String, String)] = []
            var path = "/shop/items/7?color=red"
            switch form {
            case "header": headers.append(("apikey", token))
            case "bearer": headers.append(("Authorization", "Bearer \(token)"))
            default: path += "&apikey=\(token)"
            }
            let response = try await server.proxy(path, headers: headers)
            #expect(response.status == 200)
            let json = try response.json()
            #expect(json["vendor_secret"] as? String == "verified")
            #expect(json["path"] as? String == "/items/7?color=red")
            let seen = try upstreamHeaders(response)
            let customer = try await server.admin("GET", "/v1/subscriptions/\(id)").json()["customer"] as? String
            #expect(seen["x-consumer-id"] == [try #require(customer)])
            #expect(seen["x-consumer-username"] == [id])
            #expect(seen["apikey"] == nil)
            #expect(seen["authorization"] == nil)
            #expect(!response.body.contains(token))
            #expect(seen["x-forwarded-proto"] == ["http"])
            #expect(seen["x-forwarded-prefix"] == ["/shop"])
            #expect(seen["x-forwarded-for"] == ["127.0.0.1"])
            #expect(seen["x-forwarded-host"]?.first?.hasPrefix("127.0.0.1:") == true)
            #expect(seen["x-request-id"]?.first?.isEmpty == false)
        }
    }

    @Test func clientSentIdentityHeadersAndSecretCopiesNeverReachTheUpstream() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            for path in ["/shop/hello", "/shop/unlisted/route"] {
                let response = try await server.proxy(path, headers: [
                    ("apikey", token),
                    ("X-Consumer-ID", "evil-customer"), ("X-Consumer-Username", "evil-sub"),
                    ("X-Consumer-Custom-ID", "evil"), ("X-Credential-Identifier", "evil"),
                    ("X-Anonymous-Consumer", "true"), ("X-Upstream-Secret", "guess"),
                ])
                #expect(response.status == 200)
                let seen = try upstreamHeaders(response)
                #expect(seen["x-consumer-username"] == [id])
                #expect(seen["x-consumer-id"]?.count == 1)
                #expect(seen["x-consumer-id"] != ["evil-customer"])
                #expect(seen["x-consumer-custom-id"] == nil)
                #expect(seen["x-credential-identifier"] == nil)
                #expect(seen["x-anonymous-consumer"] == nil)
                #expect(try response.json()["vendor_secret"] as? String == "verified")
            }
        }
    }

    @Test func hopByHopHeadersAreNotForwardedAndOthersAre() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "shop-basic")
            let response = try await server.proxy("/shop/hello", headers: [
                ("apikey", token), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"), ("Proxy-Authorization", "Basic abc"), ("X-Custom", "kept"),
                ("X-Forwarded-For", "10.1.2.3"), ("X-Request-ID", "client-chosen-id"),
            ])
            #expect(response.status == 200)
            let seen = try upstreamHeaders(response)
            #expect(seen["x-hop"] == nil)
            #expect(seen["keep-alive"] == nil)
            #expect(seen["te"] == nil)
            #expect(seen["proxy-authorization"] == nil)
            #expect(seen["x-custom"] == ["kept"])
            // The client is not a trusted proxy: its X-Forwarded-For is replaced (docs/security.md).
            #expect(seen["x-forwarded-for"] == ["127.0.0.1"])
            #expect(seen["x-request-id"] == ["client-chosen-id"])
        }
    }

    @Test func upstreamURLAndSecretNeverReachTheConsumer() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "shop-basic")
            // Tollgate's own answers and the upstream's headers; the echo's body shows what the
            // upstream was sent, which is the upstream's business.
            for path in ["/shop/hello", "/shop/drop", "/shop/status/500", "/nothing", "/down/hello"] {
                let response = try await server.proxy(path, headers: [("apikey", token)])
                if path != "/shop/hello" {
                    #expect(!response.body.contains("demo-secret"))
                    #expect(!response.body.contains("127.0.0.1:\(server.upstream.port)"))
                }
                for (_, value) in response.headers {
                    #expect(!value.contains("demo-secret"))
                    #expect(!value.contains(":\(server.upstream.port)"))
                }
            }
        }
    }
}
