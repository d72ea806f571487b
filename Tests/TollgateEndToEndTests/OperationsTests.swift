import Foundation
import Testing
import TollgateApp
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// What an operator relies on: `/metrics`, private files at rest, the admin port's address.
@Suite("Operations")
struct OperationsTests {
    static func scrape(_ server: RunningTollgate) async throws -> MetricsText {
        let response = try await server.admin("GET", "/metrics")
        guard response.status == 200 else { throw TestFailure("/metrics answered \(response.status)") }
        return MetricsText(response.body)
    }

    /// Scrapes until `condition` holds on the change since `before` (metrics of a batch are
    /// added just after it is written), or fails with the last scrape.
    static func scrape(
        _ server: RunningTollgate, until condition: (MetricsText) -> Bool
    ) async throws -> MetricsText {
        var last = try await scrape(server)
        // On a timeout the caller's expectations report what the last scrape held.
        _ = try? await waitUntil("the metrics to move", timeout: .seconds(5)) {
            last = try await scrape(server)
            return condition(last)
        }
        return last
    }

    /// The sum of the series of `name` whose labels include `labels`.
    static func sum(_ text: MetricsText, _ name: String, _ labels: [String: String]) -> Double {
        text.series(name).filter { series in labels.allSatisfy { series.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    @Test func metricsCountCallsRefusalsCommitsWebhooksAndCollectorEvents() async throws {
        let receiver = try await WebhookReceiver.start()
        try await withTollgate { server in
            #expect(try await server.admin("GET", "/metrics", key: "").status == 401)
            #expect(try await server.admin("GET", "/metrics", key: "wrong-key").status == 401)
            let first = try await server.admin("GET", "/metrics")
            #expect(first.status == 200)
            #expect(first.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)

            let before = try await Self.scrape(server)
            func delta(_ now: MetricsText, _ name: String, _ labels: [String: String]) -> Double {
                Self.sum(now, name, labels) - Self.sum(before, name, labels)
            }
            // Three proxied calls, a fourth refused by the quota (an authenticated consumer),
            // one refused for want of a credential.
            let (id, token) = try await server.subscribe(plan: "shop-quota")
            for _ in 0..<3 {
                #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 200)
            }
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 429)
            #expect(try await server.proxy("/shop/hello").status == 401)
            // A webhook delivered, and collector events accepted, repeated and refused.
            try await WebhookTests.addHookedProduct(server, receiver: receiver)
            _ = try await server.subscribe(plan: "hooked-plan")
            let customer = try await CollectorTests.customer(of: id, server)
            let action = #"{"action_name":"report-generated","company_id":"\#(customer)","transaction_id":"ops-1","metadata":{"pages":1}}"#
            let unknown = #"{"action_name":"report-generated","subscription_id":"sub_unknown","metadata":{"pages":1}}"#
            #expect(try await CollectorTests.post(server, "/v1/actions/batch", "[\(action),\(unknown)]").status == 200)
            #expect(try await CollectorTests.post(server, "/v1/actions", action).status == 201)

            let expected: [(name: String, labels: [String: String], delta: Double)] = [
                ("tollgate_proxy_calls_total", ["product": "shop", "endpoint": "hello", "status": "200"], 3),
                ("tollgate_proxy_calls_total", ["product": "shop", "status": "429"], 1),
                ("tollgate_upstream_latency_seconds_count", ["product": "shop"], 3),
                ("tollgate_webhook_deliveries_total", ["outcome": "delivered"], 1),
                ("tollgate_collector_events_total", ["result": "accepted"], 1),
                ("tollgate_collector_events_total", ["result": "duplicate"], 1),
                ("tollgate_collector_events_total", ["result": "refused"], 1),
            ]
            // The call refused without a consumer is counted as a call or, once the proxy
            // counts such refusals without an event, as a refusal.
            func unauthenticated(_ text: MetricsText) -> Double {
                delta(text, "tollgate_proxy_calls_total", ["status": "401"]) + delta(text, "tollgate_proxy_refusals_total", ["status": "401"])
            }
            let after = try await Self.scrape(server) { text in
                expected.allSatisfy { delta(text, $0.name, $0.labels) >= $0.delta } && unauthenticated(text) >= 1
            }
            for (name, labels, value) in expected {
                #expect(delta(after, name, labels) == value, "\(name) \(labels)")
            }
            #expect(unauthenticated(after) == 1)
            #expect(delta(after, "tollgate_usage_commit_seconds_count", [:]) >= 1)
            #expect(after.series("tollgate_usage_queue_depth").count == 1)
            #expect(after.series("tollgate_usage_dropped_total").count <= 1)
            // Labels name products, endpoints and statuses: never a consumer, a token or a path.
            for secret in [token, id, customer, "demo-secret", server.adminKey, server.collectorKey, "/shop/hello"] {
                #expect(!after.text.contains(secret), "\(secret) appears in /metrics")
            }
        }
        await receiver.stop()
    }

    /// A file's permission bits.
    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) & 0o777
    }

    @Test func theDataDirAndTheDatabaseAreOnlyForTollgatesUser() async throws {
        let dataDirectory = TemporaryDirectory.make().appendingPathComponent("fresh/data").path
        let configure: @Sendable (inout ServeOptions) -> Void = { options in
            options.dataDirectory = dataDirectory
            options.database = nil  // sqlite:DATA_DIR/tollgate.sqlite
            options.adminKey = nil  // both keys generated into the data dir
            options.collectorKey = nil
        }
        try await withTollgate(configure: configure) { server in
            // A write makes sure the log exists; the files are looked at while the server runs.
            let created = try await server.admin("POST", "/v1/customers", body: #"{"name":"Acme"}"#)
            #expect(created.status == 201)
            #expect(try Self.mode(dataDirectory) == 0o700)
            for file in ["tollgate.sqlite", "tollgate.sqlite-wal", "tollgate.sqlite-shm", "admin.key", "collector.key"] {
                #expect(try Self.mode((dataDirectory as NSString).appendingPathComponent(file)) == 0o600, "\(file)")
            }
        }
    }

    @Test func aDatabaseLeftWiderIsNarrowed() async throws {
        let directory = TemporaryDirectory.make()
        let path = directory.appendingPathComponent("tollgate.sqlite").path
        try await TollgateStore.withStore(url: .sqlite(path: path), logger: TestLogger.make()) { try await $0.migrate() }
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        }
        try await TollgateStore.withStore(url: .sqlite(path: path), logger: TestLogger.make()) { store in
            _ = try await store.eventCount()
            for file in [path, path + "-wal", path + "-shm"] {
                #expect(try Self.mode(file) == 0o600, "\(file)")
            }
        }
    }

    @Test func theAdminPortListensOnItsOwnAddress() async throws {
        try await withTollgate(configure: { $0.adminHost = "127.0.0.2" }) { server in
            #expect(server.adminURL.hasPrefix("http://127.0.0.2:"))
            let health = try await server.admin("GET", "/healthz")
            #expect(health.status == 200)
            // The proxy stays on 127.0.0.1, and the admin port is not there.
            #expect(try await server.proxy("/shop/hello").status == 401)
            let adminPort = try #require(Int(server.adminURL.split(separator: ":").last ?? ""))
            await #expect(throws: (any Error).self) {
                _ = try await RawHTTP.get(port: adminPort, target: "/healthz")  // 127.0.0.1: refused
            }
        }
    }
}
