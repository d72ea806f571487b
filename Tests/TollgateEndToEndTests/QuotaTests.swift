import Foundation
import Testing
import TollgateApp
import TollgateStore
import TollgateTestSupport

/// Prepaid quotas through the real gateway: headers, 429, exactness under concurrency, restarts.
@Suite("Prepaid quotas")
struct QuotaGatewayTests {
    @Test func headersCountDownAndTheLimitAnswers429WithoutReachingTheUpstream() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-quota")
            for remaining in [2, 1, 0] {
                let response = try await server.proxy("/shop/hello", headers: [("apikey", token)])
                #expect(response.status == 200)
                #expect(response.header("X-RateLimit-Limit-Month") == "3")
                #expect(response.header("X-RateLimit-Remaining-Month") == String(remaining))
                #expect(response.header("X-RateLimit-Limit-Day") == "100")
                #expect(response.header("X-RateLimit-Remaining-Day") == String(97 + remaining))
                #expect(response.header("RateLimit-Limit") == "3")
                #expect(response.header("RateLimit-Remaining") == String(remaining))
                #expect(Int(response.header("RateLimit-Reset") ?? "") ?? 0 > 0)
            }
            let reached = server.upstream.requestCount
            let refused = try await server.proxy("/shop/hello", headers: [("apikey", token)])
            #expect(refused.status == 429)
            #expect(refused.body == #"{"message":"API rate limit exceeded"}"#)
            #expect(refused.header("Content-Type")?.hasPrefix("application/json") == true)
            let retryAfter = try #require(Int(refused.header("Retry-After") ?? ""))
            #expect(retryAfter > 0 && retryAfter <= 31 * 86_400)
            #expect(refused.header("X-RateLimit-Remaining-Month") == "0")
            #expect(server.upstream.requestCount == reached)
            #expect(try await server.billedCalls(id)["hello"] == 3)

            // Another endpoint is only under the product-wide daily quota, which refused calls did not use.
            let other = try await server.proxy("/shop/items/1", headers: [("apikey", token)])
            #expect(other.status == 200)
            #expect(other.header("X-RateLimit-Remaining-Day") == "96")
            #expect(other.header("X-RateLimit-Limit-Month") == nil)

            let quota = try await server.admin("GET", "/v1/subscriptions/\(id)/quota")
            #expect(quota.status == 200)
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(quota.body.utf8)) as? [[String: Any]])
            let monthly = try #require(rows.first { $0["window"] as? String == "month" })
            #expect(monthly["endpoint"] as? String == "hello")
            #expect(monthly["limit"] as? Int == 3)
            #expect(monthly["used"] as? Int == 3)
            #expect(monthly["remaining"] as? Int == 0)
            #expect((monthly["reset_at"] as? String)?.hasSuffix("-01T00:00:00Z") == true)
            let daily = try #require(rows.first { $0["window"] as? String == "day" })
            #expect(daily["used"] as? Int == 4)
        }
    }

    @Test func callsWithoutAPrepaidPriceCarryNoRateLimitHeaders() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "shop-basic")
            let response = try await server.proxy("/shop/hello", headers: [("apikey", token)])
            #expect(response.status == 200)
            #expect(response.header("RateLimit-Limit") == nil)
        }
    }

    @Test func aPlanChangeAppliesTheNewPlansLimitsFromTheNextCall() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-quota")
            for _ in 0..<3 { _ = try await server.proxy("/shop/hello", headers: [("apikey", token)]) }
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 429)
            #expect(try await server.admin("POST", "/v1/subscriptions/\(id)/change-plan", body: #"{"plan":"shop-200"}"#).status == 200)
            let next = try await server.proxy("/shop/hello", headers: [("apikey", token)])
            #expect(next.status == 200)
            #expect(next.header("X-RateLimit-Limit-Month") == "200")
            #expect(next.header("X-RateLimit-Remaining-Month") == "199")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func exactlyTheQuotaPassesUnderConcurrencyAndSurvivesKill9(database: TestDatabase) async throws {
        let upstream = try await DemoUpstream.start(secret: Demo.upstreamSecret)
        let dataDirectory = TemporaryDirectory.make().path
        let url = try database.makeURL()
        let server = try await ServedTollgate.start(dataDirectory: dataDirectory, upstreamPort: upstream.port, database: url.connectionString)
        let token = try await server.subscribe(plan: "shop-200").token

        let passed = Shared(0)
        let refused = Shared(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    for _ in 0..<10 {
                        let response = try await TestHTTP.request("GET", server.proxy + "/shop/hello", headers: [("apikey", token)])
                        if response.status == 200 { passed.update { $0 += 1 } } else if response.status == 429 { refused.update { $0 += 1 } }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(passed.value == 200)
        #expect(refused.value == 200)
        #expect(upstream.requestCount == 200)

        server.process.signal(SIGKILL)
        _ = try await server.process.waitForExit()
        let restarted = try await ServedTollgate.start(dataDirectory: dataDirectory, upstreamPort: upstream.port, database: url.connectionString)
        let after = try await TestHTTP.request("GET", restarted.proxy + "/shop/hello", headers: [("apikey", token)])
        #expect(after.status == 429)
        #expect(upstream.requestCount == 200)
        #expect(try await restarted.stop() == 0)
        await upstream.stop()
    }

    @Test func aGracefulRestartKeepsTheExactCount() async throws {
        let upstream = try await DemoUpstream.start(secret: Demo.upstreamSecret)
        let dataDirectory = TemporaryDirectory.make().path
        let server = try await ServedTollgate.start(dataDirectory: dataDirectory, upstreamPort: upstream.port)
        let token = try await server.subscribe(plan: "shop-200").token
        for _ in 0..<37 {
            #expect(try await TestHTTP.request("GET", server.proxy + "/shop/hello", headers: [("apikey", token)]).status == 200)
        }
        #expect(try await server.stop() == 0)
        let restarted = try await ServedTollgate.start(dataDirectory: dataDirectory, upstreamPort: upstream.port)
        let next = try await TestHTTP.request("GET", restarted.proxy + "/shop/hello", headers: [("apikey", token)])
        #expect(next.status == 200)
        #expect(next.header("X-RateLimit-Remaining-Month") == "162")
        #expect(try await restarted.stop() == 0)
        await upstream.stop()
    }
}
