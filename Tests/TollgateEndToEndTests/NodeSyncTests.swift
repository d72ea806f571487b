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
        let schema = "t_" + String(UUID().uuidString.lowercased().filter(\.isLetter).prefix(16))
        let separator = TestDatabase.postgresURL.contains("?") ? "&" : "?"
        let database = TestDatabase.postgresURL + separator + "search_path=" + schema
        let directory = TemporaryDirectory.make()
        let catalog = directory.appendingPathComponent("catalog.yaml")
        try """
            products:
              - id: shared
                name: Shared
                upstream: http://127.0.0.1:\(upstream.port)
                endpoints:
                  - { identifier: hello, name: Hello, method: GET, path: /hello }
            plans:
              - { id: shared-plan, product: shared, name: S, currency: EUR, period: month, prices: [] }
            """.write(to: catalog, atomically: true, encoding: .utf8)
        let environment = ["TOLLGATE_ADMIN_KEY": "node-admin-key", "TOLLGATE_COLLECTOR_KEY": "node-collector-key"]
        let control = try TollgateProcess.start(
            ["serve", "--role", "control", "--config", catalog.path, "--database", database,
             "--data-dir", directory.appendingPathComponent("control").path, "--admin-port", "0"],
            environment: environment)
        defer { control.signal(SIGKILL) }
        let admin = try await control.waitUntilListening(proxyOnly: false)
        let gateway = try TollgateProcess.start(
            ["serve", "--role", "gateway", "--database", database, "--sync-interval", "3600",
             "--data-dir", directory.appendingPathComponent("gateway").path, "--proxy-port", "0"],
            environment: environment)
        defer { gateway.signal(SIGKILL) }
        let proxy = try await gateway.waitUntilListening(proxyOnly: true)

        let auth = [("Authorization", "Bearer node-admin-key")]
        let base = "http://127.0.0.1:\(admin)"
        #expect(try await TestHTTP.request("POST", base + "/v1/customers", headers: auth, body: #"{"id":"n","name":"N"}"#).status == 201)
        let subscription = try await TestHTTP.request(
            "POST", base + "/v1/subscriptions", headers: auth, body: #"{"customer":"n","plan":"shared-plan"}"#).json()
        let id = try #require(subscription["id"] as? String)
        let token = try #require(subscription["token"] as? String)
        func status() async throws -> Int {
            try await TestHTTP.request("GET", "http://127.0.0.1:\(proxy)/shared/hello", headers: [("apikey", token)]).status
        }
        // Created on the control node: the gateway lets the token in without waiting for its poll.
        try await waitUntil("the gateway node to accept the new token") { try await status() == 200 }
        // Terminated on the control node: the gateway refuses it.
        #expect(try await TestHTTP.request("POST", base + "/v1/subscriptions/\(id)/terminate", headers: auth).status == 200)
        try await waitUntil("the gateway node to refuse the terminated token") { try await status() == 401 }
        // A catalog change (a new endpoint) reaches the gateway's routes the same way.
        #expect(try await TestHTTP.request(
            "POST", base + "/v1/customers", headers: auth, body: #"{"id":"m","name":"M"}"#).status == 201)
        let second = try await TestHTTP.request(
            "POST", base + "/v1/subscriptions", headers: auth, body: #"{"customer":"m","plan":"shared-plan"}"#).json()
        let secondToken = try #require(second["token"] as? String)
        let patched = try await TestHTTP.request(
            "PATCH", base + "/v1/products/shared", headers: auth, body: #"{"unlisted_endpoints":"deny"}"#)
        #expect(patched.status == 200)
        try await waitUntil("the gateway node to deny unlisted endpoints") {
            try await TestHTTP.request("GET", "http://127.0.0.1:\(proxy)/shared/other", headers: [("apikey", secondToken)]).status == 404
        }
        #expect(try await TestHTTP.request(
            "GET", "http://127.0.0.1:\(proxy)/shared/hello", headers: [("apikey", secondToken)]).status == 200)
    }
}
