import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// What only the real `tollgate` process shows: exit codes, SIGTERM, `kill -9`.
@Suite("The tollgate process", .serialized)
struct ProcessTests {
    static let environment = ["TOLLGATE_ADMIN_KEY": "process-admin-key"]

    @Test func configValidateListsEveryProblemWithItsLineAndExits2() throws {
        let file = TemporaryDirectory.make().appendingPathComponent("catalog.yaml")
        try """
            products:
              - id: shop
                name: Shop
                upstream: http://127.0.0.1:9
                endpoints:
                  - { identifier: a, name: A, method: FETCH, path: /a }
              - id: other
                name: Other
                upstream: ftp://nowhere
            plans:
              - id: p
                product: shop
                name: P
                currency: EUR
                period: month
                prices:
                  - { kind: flat, amount: "12,50" }
                  - { kind: prepaid, endpoint: missing, quota: 10, window: month }
                  - { kind: usage, meter: nope, model: per_unit, unit: "1" }
                colour: red
            """.write(to: file, atomically: true, encoding: .utf8)
        let (code, output) = try TollgateProcess.run(["config", "validate", file.path])
        #expect(code == 2)
        for expected in ["catalog.yaml:6: products[0].endpoints[0].method", "catalog.yaml:9: products[1].upstream",
                         "catalog.yaml:17: plans[0].prices[0].amount", "catalog.yaml:18: plans[0].prices[1].endpoint",
                         "catalog.yaml:19: plans[0].prices[2].meter", "catalog.yaml:20: plans[0].colour"] {
            #expect(output.contains(expected), "missing \(expected) in:\n\(output)")
        }
        // serve refuses it the same way, before opening anything.
        let serve = try TollgateProcess.run(
            ["serve", "--config", file.path, "--data-dir", TemporaryDirectory.make().path], environment: Self.environment)
        #expect(serve.code == 2)
        #expect(serve.output.contains("catalog.yaml:9:"))
    }

    @Test func aValidCatalogValidatesAndBadUsageExits2() throws {
        let file = TemporaryDirectory.make().appendingPathComponent("catalog.yaml")
        try TestCatalog.yaml(upstreamPort: 9).write(to: file, atomically: true, encoding: .utf8)
        let valid = try TollgateProcess.run(["config", "validate", file.path])
        #expect(valid.code == 0)
        #expect(valid.output.contains("valid"))
        #expect(try TollgateProcess.run(["serve", "--role", "sideways"]).code == 2)
        #expect(try TollgateProcess.run(["serve", "--database", "mysql://x"]).code == 2)
        let loops = try TollgateProcess.run(["serve", "--event-loops", "0"])
        #expect(loops.code == 2 && loops.output.contains("--event-loops must be 1 to 1024"))
    }

    /// With the default event loops (one per core: each writes its own calls' commits) and with
    /// one loop, which then writes every commit.
    @Test(arguments: [[], ["--event-loops", "1"]])
    func everyAnsweredCallSurvivesKill9UnderLoad(arguments: [String]) async throws {
        let upstream = try await DemoUpstream.start(secret: Demo.upstreamSecret)
        let dataDirectory = TemporaryDirectory.make().path
        let server = try await ServedTollgate.start(dataDirectory: dataDirectory, upstreamPort: upstream.port, arguments: arguments)
        let (process, proxy) = (server.process, server.proxy)
        let (id, token) = try await server.subscribe(plan: "shop-basic")

        // 8 clients call as fast as they can; the server is killed while they do.
        let answered = Shared(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<400 {
                        // A call cut off by the kill may hang until its timeout; it never counts as answered.
                        guard let response = try? await TestHTTP.request(
                            "GET", proxy + "/shop/hello", headers: [("apikey", token)], timeout: 5) else {
                            return
                        }
                        if response.status == 200 { answered.update { $0 += 1 } }
                    }
                }
            }
            group.addTask {
                try await waitUntil("300 answered calls", timeout: .seconds(120), every: .milliseconds(5)) { answered.value >= 300 }
                process.signal(SIGKILL)
            }
            try await group.waitForAll()
        }
        _ = try await process.waitForExit()
        #expect(answered.value >= 300)

        let restarted = try await ServedTollgate.start(dataDirectory: dataDirectory, upstreamPort: upstream.port)
        let billed = try await restarted.billedCalls(id)
        // Every call that got its 200 was durable before the answer left; calls cut off by the
        // kill may have been stored too, never fewer.
        #expect(billed >= answered.value)
        #expect(billed <= answered.value + 8)
        #expect(try await restarted.stop() == 0)
        await upstream.stop()
    }

    @Test func sigtermDrainsInFlightCallsFlushesUsageAndExits0() async throws {
        let upstream = try await DemoUpstream.start(secret: Demo.upstreamSecret)
        let dataDirectory = TemporaryDirectory.make().path
        let server = try await ServedTollgate.start(dataDirectory: dataDirectory, upstreamPort: upstream.port)
        let (process, proxy) = (server.process, server.proxy)
        let (id, token) = try await server.subscribe(plan: "shop-basic")
        for _ in 0..<5 {
            #expect(try await TestHTTP.request("GET", proxy + "/shop/hello", headers: [("apikey", token)]).status == 200)
        }
        let finished = Shared(false)
        let slow = Task {
            defer { finished.update { $0 = true } }
            return try await TestHTTP.request("GET", proxy + "/shop/slow/3000", headers: [("apikey", token)])
        }
        // The slow call is in flight once the upstream has it (5 calls before it).
        try await waitUntil("the slow call to reach the upstream") { upstream.requestCount >= 6 }
        process.signal(SIGTERM)
        // Only a machine too slow to send a signal within 3 s could make this fail; then the
        // test would not have shown draining at all.
        #expect(!finished.value, "the slow call ended before SIGTERM was sent")
        let response = try await slow.value
        #expect(response.status == 200)
        #expect(try await process.waitForExit() == 0)

        let restarted = try await ServedTollgate.start(dataDirectory: dataDirectory, upstreamPort: upstream.port)
        #expect(try await restarted.billedCalls(id) == 6)
        #expect(try await restarted.stop() == 0)
        await upstream.stop()
    }
}
