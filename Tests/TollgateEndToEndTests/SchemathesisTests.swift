import Foundation
import Testing
import TollgateTestSupport

/// schemathesis (https://schemathesis.io), a real OpenAPI client and fuzzer, run against the
/// admin port's `/openapi.json` with every check: the description and the admin API must agree.
///
/// `st` comes from `TOLLGATE_TEST_SCHEMATHESIS`, which `scripts/test` sets after installing
/// schemathesis 4.32.5 into `.build/python-tests`; a plain `swift test` after one run of
/// `scripts/test` finds it there too. Without it the test fails and says how to get it: a
/// silent skip would let CI lose the check unnoticed.
///
/// Credentials go through schemathesis' OpenAPI-aware authentication (`[auth.openapi.adminKey]`),
/// so each operation gets exactly what its `security` asks for, public ones nothing, and the
/// `ignored_auth` check can take the key away. No header is added to every request: the
/// collector (`X-Moesif-Application-Id`, DESIGN §3.5) is Moesif's API, not described in
/// `/openapi.json`, and its header would turn `POST /v1/subscriptions` into the collector's.
@Suite("schemathesis against /openapi.json")
struct SchemathesisTests {
    static let version = "4.32.5"

    /// The `st` command to run, or a failure that says how to get one.
    static func schemathesis() throws -> String {
        if let given = ProcessInfo.processInfo.environment["TOLLGATE_TEST_SCHEMATHESIS"], !given.isEmpty { return given }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let venv = root.appendingPathComponent(".build/python-tests/bin/st").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        throw TestFailure("""
            schemathesis is not installed: run the tests with scripts/test (it installs schemathesis==\(version) \
            into .build/python-tests), or set TOLLGATE_TEST_SCHEMATHESIS to an `st` \(version) executable
            """)
    }

    @Test func theAdminAPIAgreesWithItsOpenAPIDescription() async throws {
        let st = try Self.schemathesis()
        let probe = try await Subprocess.run(st, ["--version"], in: TemporaryDirectory.make(), timeout: .seconds(60))
        try #require(probe.output.contains("version \(Self.version)"), "\(st) is not schemathesis \(Self.version): \(probe.output)")
        try await withTollgate { server in
            // Something to find besides the test catalog: a subscription with an invoice.
            let start = RFC3339Text.string(Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400 - 9 * 86_400))
            let (subscription, _) = try await server.subscribe(plan: "shop-metered", startedAt: start)
            let closed = try await server.admin("POST", "/v1/billing/close", body: "{}")
            #expect(closed.status == 200, "\(closed.body)")
            #expect(try await server.admin("GET", "/v1/invoices?subscription=\(subscription)").status == 200)

            let directory = TemporaryDirectory.make()
            let config = directory.appendingPathComponent("schemathesis.toml")
            // Narrow exceptions, to `positive_data_acceptance` only (a 422 allowed): these operations
            // refuse some schema-valid requests for what a JSON schema cannot say. A subscription's
            // customer and plan, a price's meter and endpoint, a meter filter's endpoint must exist;
            // a new plan must be of the same product; tiers must ascend; `at` of a close must not
            // lie in the future; a patch is merged with the stored object (a meter's `property`
            // is required by the merged aggregation); a usage range must start before it ends and
            // have at most 2000 steps. Every other check, ST201 (schema-violating data accepted)
            // among them, still runs on them.
            try #"""
                [auth.openapi.adminKey]
                bearer = "\#(server.adminKey)"

                [[operations]]
                include-path-regex = "^/v1/(subscriptions|subscriptions/\\{id\\}/change-plan|billing/close|plans|meters)$"
                include-method = "POST"
                checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

                [[operations]]
                include-path-regex = "^/v1/(plans|meters)/\\{id\\}$"
                include-method = "PATCH"
                checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

                [[operations]]
                include-path = "/v1/subscriptions/{id}/usage"
                include-method = "GET"
                checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
                """#.write(to: config, atomically: true, encoding: .utf8)
            let arguments = [
                "--config-file", config.path, "--no-color", "run", server.adminURL + "/openapi.json",
                "--checks", "all", "--max-examples", "20", "--seed", "1", "--workers", "2",
                "--request-timeout", "30", "--wait-for-schema", "30",
            ]
            let started = ContinuousClock.now
            let result = try await Subprocess.run(st, arguments, in: directory, timeout: .seconds(420))
            let took = ContinuousClock.now - started
            print("schemathesis took \(took)")
            #expect(result.code == 0, "st \(arguments.joined(separator: " ")) exited \(result.code):\n\(result.output)")
            // The run really tested something, and every case it generated passed.
            let counts = result.output.split(separator: "\n").compactMap { line -> (Int, Int)? in
                let words = line.split(separator: " ")
                guard words.count >= 4, words[1] == "generated,", words[3].hasPrefix("passed"),
                      let generated = Int(words[0]), let passed = Int(words[2]) else { return nil }
                return (generated, passed)
            }.last
            #expect(counts.map { $0.0 > 500 && $0.0 == $0.1 } == true, "\(result.output)")
        }
    }
}

/// A child process with its output collected, stopped if it outlives `timeout`.
enum Subprocess {
    static func run(_ executable: String, _ arguments: [String], in directory: URL, timeout: Duration) async throws
        -> (code: Int32, output: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // Schemathesis keeps its example database (.hypothesis) in the working directory.
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        environment["COLUMNS"] = "160"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = Shared("")
        let ended = Shared(false)
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                ended.update { $0 = true }
            } else {
                output.update { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
        try process.run()
        do {
            try await waitUntil("\(executable) to finish", timeout: timeout, every: .milliseconds(100)) {
                !process.isRunning && ended.value
            }
        } catch {
            process.terminate()
            throw TestFailure("\(error)\n\(output.value)")
        }
        return (process.terminationStatus, output.value)
    }
}
