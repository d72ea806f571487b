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
