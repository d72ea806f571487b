import Foundation
import Testing
import TollgateTestSupport

/// Several gateway nodes on one PostgreSQL share each quota exactly (docs/quotas.md): real
/// processes, a real upstream, a real nginx as load balancer.
@Suite("Quotas shared by several nodes", .serialized)
struct MultiNodeQuotaTests {
    static func catalog(upstream: Int, hooks: String) -> String {
        """
        products:
          - id: shared
            name: Shared
            upstream: http://127.0.0.1:\(upstream)
            webhook: { url: "\(hooks)", secret: whsec_nodes }
            endpoints:
              - { identifier: hello, name: Hello, method: GET, path: /hello }
        plans:
          - id: q300
            product: shared
            name: Three hundred
            currency: EUR
            period: month
            prices:
              - { kind: prepaid, quota: 300, window: month }
          - id: q100
            product: shared
            name: One hundred
            currency: EUR
            period: month
            prices:
              - { kind: prepaid, endpoint: hello, quota: 100, window: month }
        """
    }

    /// Runs `body` with a control node and one gateway node per entry of `gateways` (its extra
    /// `serve` arguments) on a new PostgreSQL schema, in front of a recording upstream, with the
    /// product's webhooks going to a receiver.
    static func withCluster(
        gateways arguments: [[String]],
        _ body: (NodeCluster, [NodeCluster.Gateway], RecordingUpstream, WebhookReceiver) async throws -> Void
    ) async throws {
        let upstream = try await RecordingUpstream.start()
        defer { Task { await upstream.stop() } }
        let hooks = try await WebhookReceiver.start()
        defer { Task { await hooks.stop() } }
        let cluster = try await NodeCluster.start(catalog: catalog(upstream: upstream.port, hooks: hooks.url))
        defer { cluster.stop() }
        var gateways: [NodeCluster.Gateway] = []
        defer { for gateway in gateways { gateway.process.signal(SIGKILL) } }
        for extra in arguments { gateways.append(try await cluster.startGateway(extra)) }
        try await body(cluster, gateways, upstream, hooks)
    }

    /// Calls `/shared/hello` on `base` with `token`: its status.
    static func call(_ base: String, _ token: String) async throws -> Int {
        try await TestHTTP.request("GET", base + "/shared/hello", headers: [("apikey", token)]).status
    }

    /// Calls until the first refusal: how many passed. Anything but 200 or 429 is a failure.
    static func callUntilRefused(_ base: String, _ token: String) async throws -> Int {
        var passed = 0
        while true {
            switch try await call(base, token) {
            case 200: passed += 1
            case 429: return passed
            case let status: throw TestFailure("unexpected status \(status) from \(base)")
            }
        }
    }

    /// The `used` figure of the subscription's quotas, read on the control node.
    static func used(_ cluster: NodeCluster, _ subscription: String) async throws -> [Int] {
        let body = try await cluster.admin("GET", "/v1/subscriptions/\(subscription)/quota").body
        let quotas = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]], "quota: \(body)")
        return quotas.compactMap { $0["used"] as? Int }
    }

    @Test func sixHundredConcurrentCallsOverThreeNodesPassExactlyThreeHundred() async throws {
        try await Self.withCluster(gateways: Array(repeating: [], count: 3)) { cluster, gateways, upstream, hooks in
            let (subscription, token) = try await cluster.subscribe(customer: "c", plan: "q300")
            for gateway in gateways {
                try await waitUntil("every node to know the token") { try await Self.call(gateway.proxy, token) != 401 }
            }
            let warmUp = upstream.requests.count

            let passed = Shared(0)
            let refused = Shared(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<30 {
                    let base = gateways[caller % 3].proxy
                    group.addTask {
                        for _ in 0..<20 {
                            switch try await Self.call(base, token) {
                            case 200: passed.update { $0 += 1 }
                            case 429: refused.update { $0 += 1 }
                            case let status: throw TestFailure("unexpected status \(status)")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(passed.value + warmUp == 300)
            #expect(refused.value == 600 - passed.value)
            #expect(upstream.requests.count == 300)
            // Once every node has been refused, nothing more passes anywhere.
            for gateway in gateways { #expect(try await Self.call(gateway.proxy, token) == 429) }
            #expect(try await Self.used(cluster, subscription) == [300])
            // Each node's own /metrics counts the calls it answered: 300 in all.
            let labels = ["product": "shared", "endpoint": "hello", "status": "200"]
            try await waitUntil("the nodes' metrics to count 300 calls") {
                var answered = 0.0
                for gateway in gateways { answered += try await gateway.metrics().value("tollgate_proxy_calls_total", labels) }
                return answered == 300
            }
            for gateway in gateways { #expect(try await gateway.metrics().value("tollgate_proxy_calls_total", labels) > 0) }
        }
    }

    @Test func aNodeThatNeedsMoreGetsWhatTheOthersHoldUnused() async throws {
        try await Self.withCluster(gateways: Array(repeating: [], count: 3)) { cluster, gateways, upstream, hooks in
            let (a, b, c) = (gateways[0].proxy, gateways[1].proxy, gateways[2].proxy)
            let (subscription, token) = try await cluster.subscribe(customer: "c", plan: "q300")
            try await waitUntil("every node to know the token") {
                for base in [a, b, c] where try await Self.call(base, token) == 401 { return false }
                return true
            }
            // The three probes above passed (on a node each); 100 calls on A and B in all.
            var passed = 3
            for _ in 0..<99 { if try await Self.call(a, token) == 200 { passed += 1 } }
            for _ in 0..<98 { if try await Self.call(b, token) == 200 { passed += 1 } }
            #expect(passed == 200)
            // A and B hold leases beyond their calls; C gets what is left and what they hand back.
            passed += try await Self.callUntilRefused(c, token)
            #expect(passed == 300)
            #expect(upstream.requests.count == 300)
            for base in [a, b, c] { #expect(try await Self.call(base, token) == 429) }
            #expect(try await Self.used(cluster, subscription) == [300])
            // C asked; A and B handed back what they held beyond their 100 calls.
            #expect(try await gateways[2].metrics().value("tollgate_quota_reclaims_total") >= 1)
            let handedBack = try await gateways[0].metrics().value("tollgate_quota_handed_back_total")
                + gateways[1].metrics().value("tollgate_quota_handed_back_total")
            #expect(handedBack > 0)
            // The vendor hears once that the quota is used up, though three nodes refused.
            #expect(try await cluster.admin("POST", "/v1/subscriptions/\(subscription)/terminate").status == 200)
            let events = try await hooks.waitFor("type subscription.terminated") {
                try $0.json()["type"] as? String == "subscription.terminated"
            }.map { try $0.json() }
            let exhausted = events.filter { $0["type"] as? String == "quota.exhausted" }
            #expect(exhausted.count == 1)
            #expect((exhausted.first?["data"] as? [String: Any])?["limit"] as? Int == 300)
        }
    }

    @Test func whatAKilledNodeHeldComesBackAfterItsLeaseTimeOut() async throws {
        // A's own time-out decides when what it held goes back: long enough for B and C to use
        // up all else first, short enough for a test.
        let timeouts = [["--quota-lease-timeout", "10"], ["--quota-lease-timeout", "3"], ["--quota-lease-timeout", "3"]]
        try await Self.withCluster(gateways: timeouts) { cluster, gateways, upstream, hooks in
            let (a, b, c) = (gateways[0], gateways[1].proxy, gateways[2].proxy)
            let (_, token) = try await cluster.subscribe(customer: "c", plan: "q300")
            try await waitUntil("node A to know the token") { try await Self.call(a.proxy, token) == 200 }
            var passed = 1
            for _ in 0..<49 { if try await Self.call(a.proxy, token) == 200 { passed += 1 } }
            #expect(passed == 50)
            // A holds a lease beyond its 50 calls when it dies.
            a.process.signal(SIGKILL)
            _ = try await a.process.waitForExit()
            try await waitUntil("nodes B and C to know the token") {
                let (onB, onC) = (try await Self.call(b, token), try await Self.call(c, token))
                return onB != 401 && onC != 401
            }
            // The probes on B and C may have passed too: the upstream saw every call that passed.
            passed = upstream.requests.count
            passed += try await Self.callUntilRefused(b, token)
            passed += try await Self.callUntilRefused(c, token)
            // Fewer than the quota, while what A held unused is still A's (A took leases of 15:
            // 60 calls for its 50).
            #expect(passed < 300)
            #expect(upstream.requests.count == passed)
            // Once A's lease time-out has passed, B takes back what A held unused.
            try await waitUntil("the dead node's lease to come back", timeout: .seconds(60), every: .milliseconds(200)) {
                try await Self.call(b, token) == 200
            }
            passed += 1
            passed += try await Self.callUntilRefused(b, token)
            passed += try await Self.callUntilRefused(c, token)
            #expect(passed == 300)
            #expect(upstream.requests.count == 300)
        }
    }

    @Test func aNodeStoppedGracefullyHandsBackWhatItHeldAtOnce() async throws {
        // A lease time-out of an hour: only A's own hand-back can give its unused calls to B.
        try await Self.withCluster(gateways: [["--quota-lease-timeout", "3600"], []]) { cluster, gateways, upstream, hooks in
            let (a, b) = (gateways[0], gateways[1].proxy)
            let (subscription, token) = try await cluster.subscribe(customer: "c", plan: "q300")
            try await waitUntil("node A to know the token") { try await Self.call(a.proxy, token) == 200 }
            for _ in 0..<9 { #expect(try await Self.call(a.proxy, token) == 200) }
            a.process.signal(SIGTERM)
            #expect(try await a.process.waitForExit() == 0)
            try await waitUntil("node B to know the token") { try await Self.call(b, token) != 401 }
            _ = try await Self.callUntilRefused(b, token)
            #expect(upstream.requests.count == 300)
            #expect(try await Self.used(cluster, subscription) == [300])
        }
    }

    @Test func rotatePlanChangeAndTerminateOnTheControlNodeReachEveryGatewayByNotification() async throws {
        // Polls an hour apart: only a notification explains a change arriving.
        try await Self.withCluster(gateways: Array(repeating: ["--sync-interval", "3600"], count: 3)) { cluster, gateways, upstream, hooks in
            let (id, token) = try await cluster.subscribe(customer: "c", plan: "q300")
            for gateway in gateways {
                try await waitUntil("every node to accept the token") { try await Self.call(gateway.proxy, token) == 200 }
            }
            let rotated = try await cluster.admin("POST", "/v1/subscriptions/\(id)/tokens").json()
            let newToken = try #require(rotated["token"] as? String)
            var started = ContinuousClock.now
            for gateway in gateways {
                try await waitUntil("every node to refuse the rotated token") { try await Self.call(gateway.proxy, token) == 401 }
                #expect(try await Self.call(gateway.proxy, newToken) == 200)
            }
            print("rotation reached all three gateways after \(ContinuousClock.now - started)")
            // A plan change applies the new plan's limits on every node.
            #expect(try await cluster.admin("POST", "/v1/subscriptions/\(id)/change-plan", body: #"{"plan":"q100"}"#).status == 200)
            started = ContinuousClock.now
            for gateway in gateways {
                try await waitUntil("every node to apply the new plan's limit") {
                    try await TestHTTP.request("GET", gateway.proxy + "/shared/hello", headers: [("apikey", newToken)])
                        .header("X-RateLimit-Limit-Month") == "100"
                }
            }
            print("the plan change reached all three gateways after \(ContinuousClock.now - started)")
            #expect(try await cluster.admin("POST", "/v1/subscriptions/\(id)/terminate").status == 200)
            started = ContinuousClock.now
            for gateway in gateways {
                try await waitUntil("every node to refuse the terminated subscription") {
                    try await Self.call(gateway.proxy, newToken) == 401
                }
            }
            print("termination reached all three gateways after \(ContinuousClock.now - started)")
        }
    }

    @Test func callsThroughAnNginxLoadBalancerAreCountedOnceEachAndTheQuotaHolds() async throws {
        try await Self.withCluster(gateways: [[], []]) { cluster, gateways, upstream, hooks in
            let balancer = try await LoadBalancer.start(backends: gateways.map(\.port))
            defer { balancer.stop() }
            let (subscription, token) = try await cluster.subscribe(customer: "c", plan: "q100")
            for gateway in gateways {
                try await waitUntil("every node to know the token") { try await Self.call(gateway.proxy, token) != 401 }
            }
            let direct = upstream.requests.count

            let passed = Shared(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        for _ in 0..<20 {
                            switch try await Self.call(balancer.url, token) {
                            case 200: passed.update { $0 += 1 }
                            case 429: break
                            case let status: throw TestFailure("unexpected status \(status) through nginx")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(passed.value + direct == 100)
            #expect(upstream.requests.count == 100)
            // Each call that passed was billed once.
            let usage = try await cluster.admin("GET", "/v1/subscriptions/\(subscription)/usage").json()
            let endpoints = try #require(usage["endpoints"] as? [String: Any], "usage: \(usage)")
            #expect(endpoints["hello"] as? Int == 100)
            #expect(try await Self.used(cluster, subscription) == [100])
        }
    }
}
