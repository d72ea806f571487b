import Foundation
import NIOHTTP1
import Synchronization
import Testing
import TollgateApp
import TollgateCore
import TollgateTestSupport

/// Subscription lifecycle events reach the vendor: signed, retried, ordered, durable.
@Suite("Webhooks")
struct WebhookTests {
    static let secret = "whsec_test"

    /// A product `hooked` whose webhook is `receiver`, with a plan `hooked-plan`.
    static func addHookedProduct(_ server: RunningTollgate, receiver: WebhookReceiver) async throws {
        let product = try await server.admin("POST", "/v1/products", body: """
            {"id":"hooked","name":"Hooked","upstream":"http://127.0.0.1:\(server.upstream.port)",
             "upstream_header":{"name":"X-Upstream-Secret","value":"demo-secret"},
             "webhook":{"url":"\(receiver.url)","secret":"\(secret)"},
             "endpoints":[{"identifier":"hello","name":"Hello","method":"GET","path":"/hello"}]}
            """)
        #expect(product.status == 201)
        #expect(!product.body.contains(secret))
        #expect(try await server.admin("POST", "/v1/plans", body: """
            {"id":"hooked-plan","product":"hooked","name":"H","currency":"EUR","period":"month","prices":[]}
            """).status == 201)
        #expect(try await server.admin("POST", "/v1/plans", body: """
            {"id":"hooked-pro","product":"hooked","name":"P","currency":"EUR","period":"month","prices":[]}
            """).status == 201)
    }

    static func fastRetries(_ options: inout ServeOptions) {
        options.webhookSchedule = WebhookRetrySchedule(baseDelay: 0.1, maxDelay: 2, giveUpAfter: 3 * 86_400)
    }

    static func verify(_ request: WebhookReceiver.Received) -> Bool {
        guard let header = request.headers.first(name: "Tollgate-Signature") else { return false }
        return WebhookSignature.verify(header: header, body: Array(request.body.utf8), secret: secret, now: Date())
    }

    @Test func aFailingReceiverGetsTheSameSignedEventUntilItAccepts() async throws {
        let receiver = try await WebhookReceiver.start { index, _ in (index < 2 ? 500 : 204, []) }
        try await withTollgate(configure: Self.fastRetries) { server in
            try await Self.addHookedProduct(server, receiver: receiver)
            let (id, token) = try await server.subscribe(plan: "hooked-plan")
            let requests = try await receiver.waitFor(3)
            let events = try requests.map { try $0.json() }
            #expect(Set(events.compactMap { $0["id"] as? String }).count == 1)
            #expect(events.allSatisfy { $0["type"] as? String == "subscription.created" })
            let data = try #require(events.last?["data"] as? [String: Any])
            #expect(data["id"] as? String == id)
            #expect(data["status"] as? String == "active")
            #expect(data["token"] == nil)
            #expect(!requests.contains { $0.body.contains(token) })
            #expect(requests.allSatisfy(Self.verify))
            #expect(requests.allSatisfy { $0.headers.first(name: "Content-Type") == "application/json" })

            let rows = try await deliveredRows(server)
            #expect(rows.count == 1)
            #expect(rows.first?["attempts"] as? Int == 3)
            #expect(rows.first?["last_status"] as? Int == 204)
        }
        await receiver.stop()
    }

    @Test func retryAfterOf429IsHonoured() async throws {
        let receiver = try await WebhookReceiver.start { index, _ in index == 0 ? (429, [("Retry-After", "2")]) : (200, []) }
        try await withTollgate(configure: Self.fastRetries) { server in
            try await Self.addHookedProduct(server, receiver: receiver)
            _ = try await server.subscribe(plan: "hooked-plan")
            let requests = try await receiver.waitFor(2)
            let gap = requests[1].at.timeIntervalSince(requests[0].at)
            #expect(gap >= 1.9, "the second attempt came \(gap) s after the first")
            #expect(gap < 6)
        }
        await receiver.stop()
    }

    @Test func eventsOfOneSubscriptionArriveInOrderWhileOthersAreNotHeldUp() async throws {
        let firstEvent = Mutex<(id: String?, refusals: Int)>((nil, 0))
        let receiver = try await WebhookReceiver.start { _, request in
            // The very first event is refused three times; everything else is accepted.
            guard let id = try? request.json()["id"] as? String else { return (400, []) }
            let refuse = firstEvent.withLock { first -> Bool in
                if first.id == nil { first.id = id }
                guard first.id == id, first.refusals < 3 else { return false }
                first.refusals += 1
                return true
            }
            return (refuse ? 503 : 200, [])
        }
        try await withTollgate(configure: Self.fastRetries) { server in
            try await Self.addHookedProduct(server, receiver: receiver)
            let (first, _) = try await server.subscribe(plan: "hooked-plan")
            #expect(try await server.admin("POST", "/v1/subscriptions/\(first)/change-plan", body: #"{"plan":"hooked-pro"}"#).status == 200)
            #expect(try await server.admin("POST", "/v1/subscriptions/\(first)/tokens").status == 200)
            #expect(try await server.admin("POST", "/v1/subscriptions/\(first)/terminate").status == 200)
            let (second, _) = try await server.subscribe(plan: "hooked-plan")

            // Until the first event goes through: all three failures, then 4 events of `first`, 1 of `second`.
            let requests = try await receiver.waitFor(8, timeout: .seconds(30))
            var delivered: [(event: String, subscription: String, type: String)] = []
            for request in requests {
                let json = try request.json()
                let data = try #require(json["data"] as? [String: Any])
                delivered.append((try #require(json["id"] as? String), try #require(data["id"] as? String), try #require(json["type"] as? String)))
            }
            // Each event in the order it first arrived (retries repeat an event, never overtake it).
            var seen: Set<String> = []
            let ofFirst = delivered.filter { $0.subscription == first && seen.insert($0.event).inserted }.map(\.type)
            #expect(ofFirst == ["subscription.created", "subscription.updated", "subscription.updated", "subscription.terminated"])
            let updates = delivered.filter { $0.subscription == first && $0.type == "subscription.updated" }
            #expect(Set(updates.map(\.event)).count == 2)
            // The other subscription's event was delivered while the first one was still being retried.
            let secondIndex = try #require(delivered.firstIndex { $0.subscription == second })
            let lastCreatedOfFirst = try #require(delivered.lastIndex { $0.subscription == first && $0.type == "subscription.created" })
            #expect(secondIndex < lastCreatedOfFirst)
        }
        await receiver.stop()
    }

    @Test func theDeliveriesAPIShowsFailuresAndRetriesOnRequest() async throws {
        // Nothing listens on this receiver's port once it is stopped.
        let gone = try await WebhookReceiver.start()
        let url = gone.url
        await gone.stop()
        try await withTollgate(configure: { options in
            options.webhookSchedule = WebhookRetrySchedule(baseDelay: 0.05, maxDelay: 0.1, giveUpAfter: 0.3)
        }) { server in
            let product = try await server.admin("POST", "/v1/products", body: """
                {"id":"lost","name":"Lost","upstream":"http://127.0.0.1:9","webhook":{"url":"\(url)","secret":"s"}}
                """)
            #expect(product.status == 201)
            #expect(try await server.admin("POST", "/v1/plans", body: """
                {"id":"lost-plan","product":"lost","name":"L","currency":"EUR","period":"month","prices":[]}
                """).status == 201)
            _ = try await server.subscribe(plan: "lost-plan")
            let failed = try await waitForValue("a failed delivery") {
                let rows = try await server.admin("GET", "/v1/webhooks/deliveries?status=failed").json()["data"] as? [[String: Any]] ?? []
                return rows.isEmpty ? nil : rows
            }
            let delivery = try #require(failed.first)
            #expect(delivery["type"] as? String == "subscription.created")
            #expect((delivery["attempts"] as? Int ?? 0) >= 2)
            #expect((delivery["last_error"] as? String)?.isEmpty == false)
            #expect(delivery["next_attempt_at"] is NSNull)

            let id = try #require(delivery["id"] as? String)
            let retried = try await server.admin("POST", "/v1/webhooks/deliveries/\(id)/retry")
            #expect(retried.status == 200)
            #expect(try retried.json()["status"] as? String == "pending")
            #expect(try await server.admin("POST", "/v1/webhooks/deliveries/nope/retry").status == 404)
            #expect(try await server.admin("GET", "/v1/webhooks/deliveries?status=lost").status == 422)
        }
    }

    @Test func webhookURLsAreValidated() async throws {
        try await withTollgate { server in
            let response = try await server.admin("POST", "/v1/products", body: """
                {"id":"bad-hook","name":"B","upstream":"http://127.0.0.1:9","webhook":{"url":"ftp://x/hooks","secret":"s"}}
                """)
            #expect(response.status == 422)
            #expect(response.body.contains("webhook.url"))
        }
    }
}

@Suite("Quota webhooks")
struct QuotaWebhookTests {
    @Test func quotaExhaustedIsSentOncePerWindow() async throws {
        let receiver = try await WebhookReceiver.start()
        try await withTollgate(configure: WebhookTests.fastRetries) { server in
            try await WebhookTests.addHookedProduct(server, receiver: receiver)
            #expect(try await server.admin("POST", "/v1/plans", body: """
                {"id":"hooked-three","product":"hooked","name":"T","currency":"EUR","period":"month",
                 "prices":[{"kind":"prepaid","endpoint":"hello","quota":3,"window":"month"}]}
                """).status == 201)
            let (id, token) = try await server.subscribe(plan: "hooked-three")
            var statuses: [Int] = []
            for _ in 0..<5 { statuses.append(try await server.proxy("/hooked/hello", headers: [("apikey", token)]).status) }
            #expect(statuses == [200, 200, 200, 429, 429])
            // Proof that everything the five calls queued reached the outbox and was sent: a billed
            // call after them (answered once its batch, and every earlier one, is durable), then an
            // event that this subscription's deliveries, kept in order, send after all of those.
            #expect(try await server.admin("POST", "/v1/products/hooked/endpoints", body: """
                {"identifier":"item","name":"Item","method":"GET","path":"/items/{id}"}
                """).status == 201)
            #expect(try await server.proxy("/hooked/items/1", headers: [("apikey", token)]).status == 200)
            #expect(try await server.billedCalls(id)["item"] == 1)
            #expect(try await server.admin("POST", "/v1/subscriptions/\(id)/terminate").status == 200)
            let requests = try await receiver.waitFor("type subscription.terminated") {
                try $0.json()["type"] as? String == "subscription.terminated"
            }
            let events = try requests.map { try $0.json() }
            let exhausted = events.filter { $0["type"] as? String == "quota.exhausted" }
            #expect(exhausted.count == 1)
            let data = try #require(exhausted.first?["data"] as? [String: Any])
            #expect(data["subscription"] as? String == id)
            #expect(data["endpoint"] as? String == "hello")
            #expect(data["window"] as? String == "month")
            #expect(data["limit"] as? Int == 3)
            #expect(requests.allSatisfy(WebhookTests.verify))
        }
        await receiver.stop()
    }

    @Test func redirectsAreNotFollowed() async throws {
        let receiver = try await WebhookReceiver.start { index, _ in index == 0 ? (302, [("Location", "http://127.0.0.1:9/elsewhere")]) : (200, []) }
        try await withTollgate(configure: WebhookTests.fastRetries) { server in
            try await WebhookTests.addHookedProduct(server, receiver: receiver)
            _ = try await server.subscribe(plan: "hooked-plan")
            let requests = try await receiver.waitFor(2)
            let ids = try requests.map { try #require(try $0.json()["id"] as? String) }
            #expect(ids[0] == ids[1])
            let row = try #require(try await deliveredRows(server).first)
            #expect(row["attempts"] as? Int == 2)
        }
        await receiver.stop()
    }
}

/// The delivered rows, once there are any: the receiver has answered when a test sees the
/// request, and the dispatcher records the delivery just after.
private func deliveredRows(_ server: RunningTollgate) async throws -> [[String: Any]] {
    try await waitForValue("a delivered webhook") {
        let rows = try await server.admin("GET", "/v1/webhooks/deliveries?status=delivered").json()["data"] as? [[String: Any]] ?? []
        return rows.isEmpty ? nil : rows
    }
}
