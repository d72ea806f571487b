import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TollgateApp
import TollgateCore
import TollgateStore

/// An HTTP answer as tests look at it.
public struct TestResponse: Sendable {
    public let status: Int
    public let headers: HTTPHeaders
    public let body: String

    public init(status: Int, headers: HTTPHeaders, body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { headers.first(name: name) }

    /// The body as a JSON object.
    public func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(body)")
        }
        return object
    }
}

/// Real HTTP over loopback with AsyncHTTPClient.
public enum TestHTTP {
    public static func request(
        _ method: String, _ url: String, headers: [(String, String)] = [], body: String? = nil, timeout: Int64 = 60
    ) async throws -> TestResponse {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
                request.headers.add(name: "Content-Type", value: "application/json")
            }
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: buffer))
    }
}

/// A Tollgate server running in this process on loopback ports, with the demo upstream behind it.
public struct RunningTollgate: Sendable {
    public let proxyURL: String
    public let adminURL: String
    public let adminKey: String
    public let collectorKey: String
    public let upstream: DemoUpstream
    public let dataDirectory: String
    public let database: DatabaseURL

    public var proxyPort: Int { Int(proxyURL.split(separator: ":").last ?? "") ?? 0 }

    /// A call to the admin API with the admin key (or `key`, or none with `key: ""`).
    public func admin(_ method: String, _ path: String, body: String? = nil, key: String? = nil) async throws -> TestResponse {
        let key = key ?? adminKey
        let headers = key.isEmpty ? [] : [("Authorization", "Bearer \(key)")]
        return try await TestHTTP.request(method, adminURL + path, headers: headers, body: body)
    }

    /// A call through the proxy.
    public func proxy(_ path: String, method: String = "GET", headers: [(String, String)] = [], body: String? = nil) async throws
        -> TestResponse
    {
        try await TestHTTP.request(method, proxyURL + path, headers: headers, body: body)
    }

    /// Creates a customer and subscribes it to `plan`; returns the subscription id and its token.
    public func subscribe(plan: String, startedAt: String? = nil) async throws -> (id: String, token: String) {
        let customer = try await admin("POST", "/v1/customers", body: #"{"name":"Test customer"}"#)
        guard customer.status == 201, let customerID = try customer.json()["id"] as? String else {
            throw TestFailure("customer not created: \(customer.status) \(customer.body)")
        }
        let started = startedAt.map { #","started_at":"\#($0)""# } ?? ""
        let subscription = try await admin(
            "POST", "/v1/subscriptions", body: #"{"customer":"\#(customerID)","plan":"\#(plan)"\#(started)}"#)
        let json = try subscription.json()
        guard subscription.status == 201, let id = json["id"] as? String, let token = json["token"] as? String else {
            throw TestFailure("subscription not created: \(subscription.status) \(subscription.body)")
        }
        return (id, token)
    }

    /// The `endpoints` counts of a subscription's usage.
    public func billedCalls(_ subscription: String) async throws -> [String: Int] {
        let usage = try await admin("GET", "/v1/subscriptions/\(subscription)/usage")
        guard usage.status == 200, let endpoints = try usage.json()["endpoints"] as? [String: Int] else {
            throw TestFailure("usage not readable: \(usage.status) \(usage.body)")
        }
        return endpoints
    }
}

/// The catalog every end-to-end test starts with.
public enum TestCatalog {
    public static func yaml(upstreamPort: Int) -> String {
        """
        products:
          - id: shop
            name: Shop API
            upstream: http://127.0.0.1:\(upstreamPort)
            upstream_header: { name: X-Upstream-Secret, value: demo-secret }
            unlisted_endpoints: allow
            endpoints:
              - { identifier: hello, name: Hello, method: GET, path: /hello }
              - { identifier: get-item, name: Get item, method: GET, path: "/items/{id}" }
              - { identifier: upload, name: Upload, method: POST, path: /upload }
              - { identifier: bytes, name: Bytes, method: GET, path: "/bytes/{n}" }
              - { identifier: slow, name: Slow, method: GET, path: "/slow/{ms}" }
              - { identifier: drop, name: Drop, method: GET, path: /drop }
              - { identifier: status, name: Status, method: GET, path: "/status/{code}" }
          - id: strict
            name: Strict API
            upstream: http://127.0.0.1:\(upstreamPort)
            upstream_header: { name: X-Upstream-Secret, value: demo-secret }
            unlisted_endpoints: deny
            endpoints:
              - { identifier: hello, name: Hello, method: GET, path: /hello }
          - id: down
            name: Unreachable API
            upstream: http://127.0.0.1:1
            endpoints:
              - { identifier: hello, name: Hello, method: GET, path: /hello }
        meters:
          - { id: shop-calls, name: Shop calls, source: api_calls, filter: { status: "<500" }, aggregation: count }
          - { id: hello-calls, name: Hello calls, source: api_calls, filter: { endpoint: hello, method: GET }, aggregation: count }
          - { id: item-reads, name: Item reads, source: api_calls, filter: { endpoint: get-item, status: 2xx }, aggregation: count }
          - { id: report-pages, name: Report pages, source: "event:report-generated", aggregation: sum, property: metadata.pages }
          - { id: report-users, name: Report users, source: "event:report-generated", aggregation: unique_count, property: user_id }
          - { id: peak-seats, name: Peak seats, source: "event:seats.changed", aggregation: max, property: data.seats }
          - { id: seats, name: Seats, source: "event:seats.changed", aggregation: latest, property: data.seats }
        plans:
          - id: shop-basic
            product: shop
            name: Basic
            currency: EUR
            period: month
            prices: [ { kind: flat, amount: "10.00" } ]
          - id: shop-pro
            product: shop
            name: Pro
            currency: EUR
            period: month
            prices: [ { kind: flat, amount: "50.00" } ]
          - id: shop-quota
            product: shop
            name: Quota
            currency: EUR
            period: month
            prices:
              - { kind: prepaid, endpoint: hello, quota: 3, window: month }
              - { kind: prepaid, quota: 100, window: day }
          - id: shop-200
            product: shop
            name: Two hundred
            currency: EUR
            period: month
            prices: [ { kind: prepaid, endpoint: hello, quota: 200, window: month } ]
          - id: shop-metered
            product: shop
            name: Metered
            currency: EUR
            period: week
            prices:
              - { kind: flat, amount: "20.00" }
              - { kind: setup, amount: "5.00" }
              - { kind: prepaid, endpoint: hello, quota: 1000, window: month, amount: "3.00" }
              - { kind: usage, meter: item-reads, model: graduated, tiers: [ { up_to: 2, unit: "0" }, { up_to: null, unit: "0.015", flat: "1" } ] }
              - { kind: usage, meter: report-pages, model: package, package_size: 10, amount: "2.50", free_units: 5 }
              - { kind: usage, meter: report-users, model: volume, tiers: [ { up_to: 1, unit: "1.00" }, { up_to: null, unit: "0.50" } ] }
          - id: shop-metered-plus
            product: shop
            name: Metered Plus
            currency: EUR
            period: week
            prices:
              - { kind: flat, amount: "34.00" }
              - { kind: usage, meter: item-reads, model: per_unit, unit: "0.01" }
          - id: shop-yen
            product: shop
            name: Yen
            currency: JPY
            period: week
            prices:
              - { kind: usage, meter: item-reads, model: per_unit, unit: "0.5" }
          - { id: strict-basic, product: strict, name: Basic, currency: EUR, period: month, prices: [] }
          - { id: down-basic, product: down, name: Basic, currency: EUR, period: month, prices: [] }
        """
    }
}

/// Starts Tollgate in this process (ports chosen by the system), runs `body`, then shuts it
/// down gracefully, as SIGTERM would.
public func withTollgate(
    database: TestDatabase = .sqlite,
    configure: @Sendable (inout ServeOptions) -> Void = { _ in },
    _ body: @Sendable (RunningTollgate) async throws -> Void
) async throws {
    let upstream = try await DemoUpstream.start(secret: Demo.upstreamSecret)
    var options = ServeOptions()
    options.dataDirectory = TemporaryDirectory.make().path
    options.database = try database.makeURL()
    options.proxyPort = 0
    options.adminPort = 0
    options.adminKey = "test-admin-key"
    options.collectorKey = "test-collector-key"
    options.catalog = try Catalog.parse(yaml: TestCatalog.yaml(upstreamPort: upstream.port))
    configure(&options)
    let serveOptions = options
    let (events, continuation) = AsyncStream.makeStream(of: (ServerReady, ServiceGroupHandle).self)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { continuation.finish() }
            try await TollgateServer.run(options: serveOptions, logger: TestLogger.make(), signals: []) { ready, handle in
                continuation.yield((ready, handle))
            }
        }
        var iterator = events.makeAsyncIterator()
        guard let (ready, handle) = await iterator.next() else {
            try await group.waitForAll()
            throw TestFailure("the server stopped before it was ready")
        }
        let running = RunningTollgate(
            proxyURL: "http://127.0.0.1:\(ready.proxyPort ?? 0)", adminURL: "http://\(urlHost(serveOptions.adminHost ?? serveOptions.host)):\(ready.adminPort ?? 0)",
            adminKey: ready.adminKey, collectorKey: ready.collectorKey, upstream: upstream,
            dataDirectory: serveOptions.dataDirectory, database: serveOptions.resolvedDatabase)
        do {
            try await body(running)
        } catch {
            await handle.shutdown()
            try? await group.waitForAll()
            await upstream.stop()
            throw error
        }
        await handle.shutdown()
        try await group.waitForAll()
    }
    await upstream.stop()
}

/// A listening address as a URL's host (IPv6 in brackets).
func urlHost(_ address: String) -> String {
    address.contains(":") ? "[\(address)]" : address
}
