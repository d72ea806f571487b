import Foundation
import Testing
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// How usage events reach the ledger in bulk: batches larger than one of PostgreSQL's insert
/// statements, and the gateway's group commit (`commitUsage`), on both databases.
@Suite("Event writes")
struct EventWriteTests {
    typealias Conformance = StoreConformanceTests

    @Test(arguments: TestDatabase.allCases)
    func aBatchLargerThanOneStatementIsStoredOnceAndCountedExactly(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Conformance.seedSubscription(store)
            // Spread over four hours, so that several buckets take the deltas.
            func call(_ number: Int) -> UsageEvent {
                Conformance.call("big-\(number)", Double(number), endpoint: "tile", weight: number % 3 + 1)
            }
            #expect(try await store.insertEvents([call(10_500)]).ids == ["big-10500"])
            var batch = (0..<12_000).map(call)
            // A duplicate within the batch, and a retry of the event stored above, both in the
            // batch's second PostgreSQL statement.
            batch.insert(call(7), at: 11_000)
            let result = try await store.insertEvents(batch)
            #expect(result.inserted.count == 11_999 && !result.ids.contains("big-10500") && result.late.isEmpty)
            #expect(try await store.eventCount() == 12_000)
            let weights = (0..<12_000).reduce(0) { $0 + $1 % 3 + 1 }
            let summary = try await Conformance.summary(store, from: -100, to: 86_400, meters: [Conformance.meter])
            #expect(summary.meters["tiles"] == Amount(weights) && summary.endpoints["tile"] == weights)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func theGatewaysCommitStoresEachEventOnceWithItsAggregates(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Conformance.seedSubscription(store)
            let text = Conformance.action("t1", 5, #"{"user_id":"tab\there \\ \"q\" \#u{1F600}","metadata":{"pages":2}}"#)
            try await store.commitUsage(UsageCommit(events: [
                Conformance.call("g1", 0, endpoint: "tile"), Conformance.call("g2", 1, endpoint: "tile", weight: 4),
                Conformance.call("g1", 0, endpoint: "tile"), text,
            ]))
            try await store.commitUsage(UsageCommit(events: [
                Conformance.call("g2", 1, endpoint: "tile", weight: 4), Conformance.call("g3", 4000, endpoint: "tile", status: 503),
                Conformance.call("g4", 4001, endpoint: nil, billable: false),
            ]))
            #expect(try await store.eventCount() == 5)
            let summary = try await Conformance.summary(store, from: -100, to: 86_400, meters: [Conformance.meter])
            #expect(summary.meters["tiles"] == Amount(5) && summary.endpoints["tile"] == 6)
            // The action's text went in as it arrived: a meter built later reads it back.
            let meter = Meter(
                id: "odd-pages", name: "Odd pages", source: .event("report"),
                filter: MeterFilter(properties: ["user_id": "tab\there \\ \"q\" \u{1F600}"]), aggregation: .sum,
                property: "metadata.pages")
            try await store.saveMeter(meter, mode: .create)
            #expect(try await Conformance.summary(store, from: -100, to: 86_400, meters: [meter]).meters["odd-pages"] == Amount(2))
        }
    }

    /// The gateway's commit written at once (`commitUsageNow`, an event loop's) stores what the
    /// commit in turn does, and comes back unwritten whenever it would have to wait: for a
    /// subscription's clock or the meters to be read, or on PostgreSQL.
    @Test(arguments: TestDatabase.allCases)
    func theGatewaysCommitWrittenAtOnceNeverWaits(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Conformance.seedSubscription(store)
            var first = UsageCommit(
                events: [Conformance.call("n1", 0, endpoint: "tile"), Conformance.call("n2", 1, endpoint: "tile", weight: 3)],
                webhooks: [Self.delivery("whd_now")])
            // No clock of sub_1 is in memory yet: the commit is left as it was.
            guard try !store.commitUsageNow(&first) else {
                Issue.record("a commit that needs a clock read was written at once")
                return
            }
            #expect(first.events.map(\.id) == ["n1", "n2"] && first.events.allSatisfy { $0.bucket == nil })
            #expect(first.webhooks.map(\.id) == ["whd_now"])
            #expect(try await store.eventCount() == 0)
            try await store.commitUsage(first)
            // The clock is in memory now. Beside it: a repeat within the commit, one already
            // stored, one in the next hour and billing period, and a call not billed.
            var second = UsageCommit(events: [
                Conformance.call("n3", 2, endpoint: "tile"), Conformance.call("n3", 2, endpoint: "tile"),
                Conformance.call("n1", 0, endpoint: "tile"), Conformance.call("n4", 4000, endpoint: "tile", weight: 2),
                Conformance.call("n5", 4001, endpoint: nil, billable: false),
            ], raisedLeases: [Self.lease(7)])
            switch (database, try store.commitUsageNow(&second)) {
            case (.sqlite, true):
                break
            case (.postgres, false):
                #expect(second.events.count == 5 && second.raisedLeases.map(\.leased) == [7])
                try await store.commitUsage(second)
            default:
                Issue.record("SQLite writes a commit at once when nothing must be read; PostgreSQL never does")
            }
            #expect(try await store.eventCount() == 5)
            let summary = try await Conformance.summary(store, from: -100, to: 86_400, meters: [Conformance.meter])
            #expect(summary.meters["tiles"] == Amount(1 + 3 + 1 + 2) && summary.endpoints["tile"] == 1 + 3 + 1 + 2)
            #expect(try await store.webhookDelivery("whd_now") != nil)
            #expect(try await store.quotaLeases(since: Self.lease(0).windowStart).map(\.leased) == [7])
            // Once the meters are forgotten (a catalog change), the next commit waits for them.
            store.invalidateMeteringCache()
            var third = UsageCommit(events: [Conformance.call("n6", 5, endpoint: "tile")])
            guard try !store.commitUsageNow(&third) else {
                Issue.record("a commit that needs the meters read was written at once")
                return
            }
            #expect(try await store.eventCount() == 5)
        }
    }

    static func delivery(_ id: String) -> WebhookDelivery {
        WebhookDelivery(
            id: id, type: "subscription.created", product: "maps", subscription: "sub_1", url: "http://127.0.0.1:1/hook",
            payload: "{}", createdAt: Conformance.base)
    }

    static func lease(_ leased: Int) -> QuotaLease {
        QuotaLease(
            subscription: "sub_1", plan: "maps-basic", endpoint: "tile", window: .day,
            windowStart: Date(timeIntervalSince1970: 1_789_948_800), leased: leased)
    }

    @Test(arguments: TestDatabase.allCases)
    func newAndLateEventsWithAnyTextAreStoredExactlyAndFoundAgain(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Conformance.seedSubscription(store)
            _ = try await store.insertInvoices([(Conformance.invoice("inv_a", from: 0, to: 60), nil)])
            // Text that PostgreSQL's COPY must escape, and a literal that means NULL to it.
            let odd = "tab\there\nnew\r\\N back\\slash \\t"
            var late = Conformance.call(odd, 30, endpoint: "tile")
            late.path = "/maps/\t\\N"
            let fresh = [late, Conformance.call("n1", 500, endpoint: "tile"), Conformance.call("l\\2", 59, endpoint: "tile")]
            let result = try await store.insertEvents(fresh)
            #expect(result.ids == [odd, "n1", "l\\2"])
            #expect(Dictionary(uniqueKeysWithValues: result.late.map { ($0.key.id, $0.value) }) == [odd: "inv_a", "l\\2": "inv_a"])
            let stored = try await store.lateEvents(subscription: "sub_1", limit: 10).items
            #expect(Set(stored.map(\.id)) == [odd, "l\\2"] && stored.allSatisfy { $0.invoice == "inv_a" })
            // Sent again beside a new one: the stored ones are found, only the new one is added.
            let again = try await store.insertEvents([late, Conformance.call("n2", 700, endpoint: "tile")])
            #expect(again.ids == ["n2"] && again.late.isEmpty)
            #expect(try await store.eventCount() == 4)
            let summary = try await Conformance.summary(store, from: -100, to: 86_400, meters: [Conformance.meter])
            #expect(summary.endpoints["tile"] == 4)
        }
    }
}
