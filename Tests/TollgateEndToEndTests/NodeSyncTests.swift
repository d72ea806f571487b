import Foundation
import Testing
import TollgateTestSupport

/// Several nodes on one PostgreSQL: a gateway node learns what the control node changed from
/// PostgreSQL's notifications, not from its poll (set to an hour here, so only a notification
/// can explain a change arriving).
@Suite("Nodes on one PostgreSQL")
struct NodeSyncTests {
    @Test func aGatewayNodeFollowsTheControlNodeByNotification() async throws {
        let upstream = try await RecordingUpstream.start()
        defer { Task { await upstream.stop() } }
        let cluster = try await NodeCluster.start(catalog: """
            products:
              - id: shared
                name: Shared
                upstream: http://127.0.0.1:\(upstream.port)
                endpoints:
                  - { identifier: hello, name: Hello, method: GET, path: /hello }
            plans:
              - { id: shared-plan, product: shared, name: S, currency: EUR, period: month, prices: [] }
            """)
        defer { cluster.stop() }
        let gateway = try await cluster.startGateway(["--sync-interval", "3600"])
        defer { gateway.process.signal(SIGKILL) }
        let proxy = gateway.port
        // The gateway's admin port serves its metrics (with the admin key) and nothing of the admin API.
        let gatewayAdmin = "http://127.0.0.1:\(gateway.adminPort)"
        #expect(try await TestHTTP.request("GET", gatewayAdmin + "/metrics").status == 401)
        #expect(try await gateway.metrics().text.contains("tollgate_usage_queue_depth"))
        #expect(try await TestHTTP.request("GET", gatewayAdmin + "/healthz").status == 200)
        let adminAuth = [("Authorization", "Bearer \(NodeCluster.adminKey)")]
        #expect(try await TestHTTP.request("GET", gatewayAdmin + "/v1/customers", headers: adminAuth).status == 404)
        #expect(try await TestHTTP.request("GET", gatewayAdmin + "/dashboard", headers: adminAuth).status == 404)
        let (id, token) = try await cluster.subscribe(customer: "n", plan: "shared-plan")
        func status() async throws -> Int {
            try await TestHTTP.request("GET", "http://127.0.0.1:\(proxy)/shared/hello", headers: [("apikey", token)]).status
        }
        // Created on the control node: the gateway lets the token in without waiting for its poll.
        try await waitUntil("the gateway node to accept the new token") { try await status() == 200 }
        // Terminated on the control node: the gateway refuses it.
        #expect(try await cluster.admin("POST", "/v1/subscriptions/\(id)/terminate").status == 200)
        try await waitUntil("the gateway node to refuse the terminated token") { try await status() == 401 }
        // A catalog change (a new endpoint) reaches the gateway's routes the same way.
        let (_, secondToken) = try await cluster.subscribe(customer: "m", plan: "shared-plan")
        let patched = try await cluster.admin("PATCH", "/v1/products/shared", body: #"{"unlisted_endpoints":"deny"}"#)
        #expect(patched.status == 200)
        try await waitUntil("the gateway node to deny unlisted endpoints") {
            try await TestHTTP.request("GET", "http://127.0.0.1:\(proxy)/shared/other", headers: [("apikey", secondToken)]).status == 404
        }
        #expect(try await TestHTTP.request(
            "GET", "http://127.0.0.1:\(proxy)/shared/hello", headers: [("apikey", secondToken)]).status == 200)
    }
}
