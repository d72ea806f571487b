import Foundation
import Testing
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// Analytics events past their retention leave the ledger; billable events, meters and what
/// rating reads stay exactly as they were.
@Suite("Analytics retention")
struct RetentionTests {
    typealias Fixture = StoreConformanceTests
    static let day: TimeInterval = 86_400

    static func refusal(_ id: String, _ offset: TimeInterval, timeFromSender: Bool = true) -> UsageEvent {
        var event = Fixture.call(id, offset, endpoint: nil, status: 429, billable: false)
        event.timeFromSender = timeFromSender
        return event
    }

    static func rated(_ store: TollgateStore) async throws -> [String: Decimal] {
        let span = TimeSpan(start: Fixture.base.addingTimeInterval(-100), end: Fixture.base.addingTimeInterval(40 * Self.day))
        return try await store.meterValues(subscription: "sub_1", span: span, meters: [Fixture.meter])
    }

    /// Aggregate rows in a fixed order (the database returns them in any).
    static func sorted(_ rows: MeterRows) -> [MeterRows.Aggregate] {
        rows.aggregates.sorted { ($0.meter, $0.bucket) < ($1.meter, $1.bucket) }
    }

    @Test(arguments: TestDatabase.allCases)
    func onlyAnalyticsEventsOlderThanTheRetentionAreDeleted(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Fixture.seedSubscription(store)
            try await store.insertEvents([
                // Old (before the cutoff at base + 10 days): billable calls and an action stay.
                Fixture.call("bill-1", 0, endpoint: "tile"), Fixture.call("bill-2", 60, endpoint: "tile"),
                Fixture.call("bill-3", 2 * Self.day, endpoint: "tile", status: 500),
                Fixture.action("act-1", 120, #"{"metadata":{"pages":2}}"#),
                // Old analytics events go, whether their key holds their time or 0.
                Self.refusal("old-1", 10), Self.refusal("old-2", 3 * Self.day), Self.refusal("old-3", 9 * Self.day),
                Self.refusal("old-untimed", 5 * Self.day, timeFromSender: false),
                Fixture.call("old-unlisted", 4 * Self.day, endpoint: nil, billable: false),
                // Recent ones stay, billable or not, timed or not.
                Fixture.call("bill-recent", 20 * Self.day, endpoint: "tile"),
                Self.refusal("new-1", 11 * Self.day), Self.refusal("new-untimed", 12 * Self.day, timeFromSender: false),
            ])
            #expect(try await store.eventCount() == 12)
            let ratedBefore = try await Self.rated(store)
            let rowsBefore = try await store.meterRows(
                subscription: "sub_1", from: Fixture.base.addingTimeInterval(-Self.day), to: Fixture.base.addingTimeInterval(40 * Self.day))
            #expect(ratedBefore == ["tiles": 3])

            var configuration = AnalyticsRetention.Configuration()
            configuration.days = 90
            configuration.batchSize = 2  // several batches, some with nothing to delete
            let now = Fixture.base.addingTimeInterval(100 * Self.day)
            let retention = AnalyticsRetention(store: store, configuration: configuration, logger: TestLogger.make(), now: { now })
            #expect(try await retention.sweep() == 5)
            #expect(try await store.eventCount() == 7)
            #expect(try await retention.sweep() == 0)

            // Rating reads the same values and the same aggregate rows.
            #expect(try await Self.rated(store) == ratedBefore)
            let rowsAfter = try await store.meterRows(
                subscription: "sub_1", from: Fixture.base.addingTimeInterval(-Self.day), to: Fixture.base.addingTimeInterval(40 * Self.day))
            #expect(Self.sorted(rowsAfter) == Self.sorted(rowsBefore))
            // The billable events are still keys of the ledger: their retries stay duplicates.
            let retried = try await store.insertEvents([
                Fixture.call("bill-1", 0, endpoint: "tile"), Fixture.action("act-1", 120, #"{"metadata":{"pages":2}}"#),
            ])
            #expect(retried.inserted.isEmpty)

            // Keeping forever deletes nothing.
            configuration.days = nil
            let forever = AnalyticsRetention(
                store: store, configuration: configuration, logger: TestLogger.make(), now: { now.addingTimeInterval(1000 * Self.day) })
            #expect(try await forever.sweep() == 0)
            #expect(try await store.eventCount() == 7)
        }
    }
}
