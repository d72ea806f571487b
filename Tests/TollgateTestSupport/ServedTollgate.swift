import Foundation
import Synchronization

/// `tollgate serve` as a child process with the test catalog on free ports, for what needs a
/// real process: restarts, SIGTERM, `kill -9`.
public struct ServedTollgate: Sendable {
    public static let adminKey = "served-admin-key"

    public let process: TollgateProcess
    public let proxy: String
    public let admin: String

    /// Starts a server on `dataDirectory` (the catalog file is written there once, so a restart
    /// serves the same one); `database` overrides the default SQLite file.
    public static func start(
        dataDirectory: String, upstreamPort: Int, database: String? = nil, arguments extra: [String] = []
    ) async throws -> ServedTollgate {
        let catalog = URL(fileURLWithPath: dataDirectory).appendingPathComponent("catalog.yaml")
        if !FileManager.default.fileExists(atPath: catalog.path) {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            try TestCatalog.yaml(upstreamPort: upstreamPort).write(to: catalog, atomically: true, encoding: .utf8)
        }
        var arguments = ["serve", "--config", catalog.path, "--data-dir", dataDirectory, "--proxy-port", "0", "--admin-port", "0"]
        if let database { arguments += ["--database", database] }
        arguments += extra
        let process = try TollgateProcess.start(arguments, environment: ["TOLLGATE_ADMIN_KEY": adminKey])
        let (proxy, admin) = try await process.waitUntilListening()
        return ServedTollgate(process: process, proxy: "http://127.0.0.1:\(proxy)", admin: "http://127.0.0.1:\(admin)")
    }

    private var auth: [(String, String)] { [("Authorization", "Bearer \(Self.adminKey)")] }

    /// Creates a customer subscribed to `plan`; returns the subscription id and its token.
    public func subscribe(plan: String) async throws -> (id: String, token: String) {
        let customer = try await TestHTTP.request("POST", admin + "/v1/customers", headers: auth, body: #"{"name":"Served"}"#).json()
        guard let customerID = customer["id"] as? String else { throw TestFailure("no customer: \(customer)") }
        let subscription = try await TestHTTP.request(
            "POST", admin + "/v1/subscriptions", headers: auth, body: #"{"customer":"\#(customerID)","plan":"\#(plan)"}"#).json()
        guard let id = subscription["id"] as? String, let token = subscription["token"] as? String else {
            throw TestFailure("no subscription: \(subscription)")
        }
        return (id, token)
    }

    /// All billable calls of a subscription in its current period.
    public func billedCalls(_ subscription: String) async throws -> Int {
        let usage = try await TestHTTP.request("GET", admin + "/v1/subscriptions/\(subscription)/usage", headers: auth)
        guard let endpoints = try usage.json()["endpoints"] as? [String: Int] else { throw TestFailure("no usage: \(usage.body)") }
        return endpoints.values.reduce(0, +)
    }

    /// Sends SIGTERM and returns the exit status.
    public func stop() async throws -> Int32 {
        process.signal(SIGTERM)
        return try await process.waitForExit()
    }
}

/// A value shared between concurrent test tasks.
public final class Shared<Value: Sendable>: Sendable {
    private let box: Mutex<Value>

    public init(_ value: Value) {
        box = Mutex(value)
    }

    public var value: Value { box.withLock { $0 } }

    public func update(_ change: (inout Value) -> Void) {
        box.withLock { change(&$0) }
    }
}
