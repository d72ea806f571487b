import Foundation
import NIOConcurrencyHelpers

/// localstripe (PyPI), a stateful fake Stripe, running on 127.0.0.1 for the Stripe tests.
///
/// Its Python comes from `TOLLGATE_TEST_LOCALSTRIPE` (a Python with `localstripe` installed;
/// `scripts/test` installs it into `.build/python-tests`), else `.build/python-tests/bin/python`
/// when that has it. Without one the tests fail and say how to get it: a silent skip would
/// let CI lose the checks unnoticed.
public final class Localstripe: Sendable {
    private let process: Process
    public let port: Int
    /// The API base to give Tollgate (`TOLLGATE_STRIPE_API_BASE`).
    public var url: String { "http://127.0.0.1:\(port)" }
    /// A secret key localstripe accepts (`sk_` and more than five characters).
    public static let secretKey = "sk_test_tollgate"

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The Python that has localstripe, or a failure that says how to get one.
    static func python() throws -> String {
        if let given = ProcessInfo.processInfo.environment["TOLLGATE_TEST_LOCALSTRIPE"], !given.isEmpty { return given }
        let venv = root.appendingPathComponent(".build/python-tests/bin/python").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        throw TestFailure("""
            localstripe is not installed: run the tests with scripts/test (it installs localstripe into \
            .build/python-tests), or set TOLLGATE_TEST_LOCALSTRIPE to a Python that has it
            """)
    }

    /// Starts localstripe on a free loopback port and waits until it answers.
    public static func start() async throws -> Localstripe {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try python())
        process.arguments = [root.appendingPathComponent("Tests/TollgateEndToEndTests/Resources/localstripe_server.py").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let printed = NIOLockedValueBox("")
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil } else { printed.withLockedValue { $0 += String(decoding: data, as: UTF8.self) } }
        }
        try process.run()
        let port: Int
        do {
            port = try await waitForValue("localstripe to print its port", timeout: .seconds(60)) {
                if let line = printed.withLockedValue({ $0 }).split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }) {
                    return Int(line.dropFirst(5))
                }
                guard process.isRunning else { throw TestFailure("localstripe exited early (is the localstripe package installed?)") }
                return nil
            }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            throw error
        }
        let server = Localstripe(process: process, port: port)
        try await waitUntil("localstripe to answer") { (try? await server.request("GET", "/v1/customers"))?.status == 200 }
        return server
    }

    /// Empties localstripe's store (`DELETE /_config/data`).
    public func reset() async throws {
        let response = try await TestHTTP.request("DELETE", url + "/_config/data")
        guard response.status == 200 else { throw TestFailure("localstripe reset failed: \(response.status)") }
    }

    /// Stops the server (SIGKILL: aiohttp's server does not always end on SIGTERM, and a fake has nothing to save).
    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// A Stripe API call with the secret key; `form` is sent form-encoded.
    public func request(_ method: String, _ path: String, form: [(String, String)] = []) async throws -> TestResponse {
        let body = form.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        var headers = [("Authorization", "Bearer \(Self.secretKey)")]
        if method != "GET" { headers.append(("Content-Type", "application/x-www-form-urlencoded")) }
        return try await TestHTTP.request(method, url + path, headers: headers, body: method == "GET" ? nil : body)
    }

    /// A Stripe API call that must succeed; its JSON object.
    public func object(_ method: String, _ path: String, form: [(String, String)] = []) async throws -> [String: Any] {
        let response = try await request(method, path, form: form)
        guard response.status == 200 else { throw TestFailure("localstripe \(method) \(path): \(response.status) \(response.body)") }
        return try response.json()
    }

    /// Every object of a list (`data`, up to 100).
    public func list(_ path: String) async throws -> [[String: Any]] {
        let separator = path.contains("?") ? "&" : "?"
        return try await object("GET", path + separator + "limit=100")["data"] as? [[String: Any]] ?? []
    }

    /// A customer with a card as its default payment method: `4242424242424242` pays,
    /// `4000000000000341` attaches but every charge is declined.
    public func attachCard(_ number: String, to customer: String) async throws {
        let method = try await object("POST", "/v1/payment_methods", form: [
            ("type", "card"), ("card[number]", number), ("card[exp_month]", "12"), ("card[exp_year]", "2030"), ("card[cvc]", "123"),
        ])
        let id = try requireValue(method["id"] as? String, "payment method id")
        _ = try await object("POST", "/v1/payment_methods/\(id)/attach", form: [("customer", customer)])
        _ = try await object("POST", "/v1/customers/\(customer)", form: [("invoice_settings[default_payment_method]", id)])
    }

    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~[]")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// `value`, or a `TestFailure` naming `what`.
func requireValue<T>(_ value: T?, _ what: String) throws -> T {
    guard let value else { throw TestFailure("missing \(what)") }
    return value
}
