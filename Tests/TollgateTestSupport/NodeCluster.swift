import Foundation
import TollgateStore

/// A deployment of real processes on one PostgreSQL schema of its own: one control node (admin
/// API, catalog) and any number of gateway nodes, as DESIGN §2 describes several nodes.
public final class NodeCluster: Sendable {
    /// One gateway node: its process, proxy port and admin port (`/metrics`, `/healthz`).
    public struct Gateway: Sendable {
        public let process: TollgateProcess
        public let port: Int
        public let adminPort: Int
        public var proxy: String { "http://127.0.0.1:\(port)" }

        /// The node's own metrics.
        public func metrics() async throws -> MetricsText {
            let response = try await TestHTTP.request(
                "GET", "http://127.0.0.1:\(adminPort)/metrics", headers: [("Authorization", "Bearer \(NodeCluster.adminKey)")])
            guard response.status == 200 else { throw TestFailure("/metrics answered \(response.status)") }
            return MetricsText(response.body)
        }
    }

    public static let adminKey = "node-admin-key"
    public static let environment = ["TOLLGATE_ADMIN_KEY": adminKey, "TOLLGATE_COLLECTOR_KEY": "node-collector-key"]

    public let database: String
    public let directory: URL
    public let control: TollgateProcess
    public let adminPort: Int
    public var admin: String { "http://127.0.0.1:\(adminPort)" }

    private init(database: String, directory: URL, control: TollgateProcess, adminPort: Int) {
        self.database = database
        self.directory = directory
        self.control = control
        self.adminPort = adminPort
    }

    /// Starts the control node with `catalog` (YAML) on a new schema.
    public static func start(catalog: String) async throws -> NodeCluster {
        let database = try TestDatabase.postgres.makeURL().connectionString
        let directory = TemporaryDirectory.make()
        let catalogFile = directory.appendingPathComponent("catalog.yaml")
        try catalog.write(to: catalogFile, atomically: true, encoding: .utf8)
        let control = try TollgateProcess.start(
            ["serve", "--role", "control", "--config", catalogFile.path, "--database", database,
             "--data-dir", directory.appendingPathComponent("control").path, "--admin-port", "0"],
            environment: environment)
        do {
            let port = try await control.waitUntilListening(proxyOnly: false)
            return NodeCluster(database: database, directory: directory, control: control, adminPort: port)
        } catch {
            control.signal(SIGKILL)
            throw error
        }
    }

    /// Starts a gateway node on the same database, with `arguments` added to `serve`.
    public func startGateway(_ arguments: [String] = []) async throws -> Gateway {
        let process = try TollgateProcess.start(
            ["serve", "--role", "gateway", "--database", database,
             "--data-dir", directory.appendingPathComponent("gateway-" + UUID().uuidString).path, "--proxy-port", "0",
             "--admin-port", "0"] + arguments,
            environment: Self.environment)
        do {
            let (proxy, admin) = try await process.waitUntilListening()
            return Gateway(process: process, port: proxy, adminPort: admin)
        } catch {
            process.signal(SIGKILL)
            throw error
        }
    }

    /// A request to the control node's admin API, with the admin key.
    public func admin(_ method: String, _ path: String, body: String? = nil) async throws -> TestResponse {
        try await TestHTTP.request(method, admin + path, headers: [("Authorization", "Bearer \(Self.adminKey)")], body: body)
    }

    /// Creates customer `customer` and subscribes it to `plan`: the subscription's id and token.
    public func subscribe(customer: String, plan: String) async throws -> (id: String, token: String) {
        let created = try await admin("POST", "/v1/customers", body: #"{"id":"\#(customer)","name":"\#(customer)"}"#)
        guard created.status == 201 else { throw TestFailure("customer not created: \(created.status) \(created.body)") }
        let subscription = try await admin("POST", "/v1/subscriptions", body: #"{"customer":"\#(customer)","plan":"\#(plan)"}"#).json()
        guard let id = subscription["id"] as? String, let token = subscription["token"] as? String else {
            throw TestFailure("subscription not created: \(subscription)")
        }
        return (id, token)
    }

    /// Stops the control node (gateways are the caller's).
    public func stop() {
        control.signal(SIGKILL)
    }
}
