import Foundation
import SQLKit
import Testing
import TollgateCore
@testable import TollgateStore
import TollgateTestSupport

/// Schema step 8 keys stored events by id and sender's time: what an earlier ledger held stays
/// deduplicated against retries.
@Suite("Ledger migration")
struct LedgerMigrationTests {
    static let base = Date(timeIntervalSince1970: 1_790_000_000)

    static func micros(_ offset: TimeInterval) -> Int64 { Micros.of(base.addingTimeInterval(offset)) }

    @Test(arguments: TestDatabase.allCases)
    func storedEventsGetTheirKeysAndRetriesOfThemStayDuplicates(database: TestDatabase) async throws {
        let url = try database.makeURL()
        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            try await Migrations.run(on: store.backend, through: 7)
            // The migration reads only whether a body holds the sender's time, not the time itself.
            let rows: [(id: String, source: String, at: TimeInterval, body: String?)] = [
                ("gw-1", "gateway", 10, nil),
                ("mo:timed", "api_log", 20, #"{"request":{"time":"2026-09-21T13:20:20Z"},"transaction_id":"timed"}"#),
                ("mo:untimed", "action", 30, #"{"action_name":"a","request":{"time":null},"transaction_id":"untimed"}"#),
                ("mo:object-time", "api_log", 35, #"{"request":{"time":{"at":1}},"transaction_id":"object-time"}"#),
                ("ce:timed", "cloudevent", 40, #"{"id":"1","source":"/s","type":"t","time":"2026-09-21T13:20:40Z"}"#),
                ("ce:untimed", "cloudevent", 50, #"{"id":"2","source":"/s","type":"t"}"#),
            ]
            try await store.backend.withSQL { database in
                for row in rows {
                    try await database.raw("""
                        INSERT INTO usage_events (id, source, name, occurred_at, billable, weight, body)
                        VALUES (\(bind: row.id), \(bind: row.source), 'api_calls', \(bind: Self.micros(row.at)), 1, 1, \(bind: row.body))
                        """).run()
                }
            }
            try await store.migrate()
            let keys = try await store.backend.read { database in
                try await database.raw("SELECT id, keyed_at FROM usage_events ORDER BY id").all().map { row in
                    UsageEvent.Key(id: try row.decode(column: "id", as: String.self), time: try row.decode(column: "keyed_at", as: Int64.self))
                }
            }
            #expect(keys == [
                UsageEvent.Key(id: "ce:timed", time: Self.micros(40)), UsageEvent.Key(id: "ce:untimed", time: 0),
                UsageEvent.Key(id: "gw-1", time: Self.micros(10)), UsageEvent.Key(id: "mo:object-time", time: 0),
                UsageEvent.Key(id: "mo:timed", time: Self.micros(20)), UsageEvent.Key(id: "mo:untimed", time: 0),
            ])

            func retry(_ id: String, at offset: TimeInterval, timed: Bool) -> UsageEvent {
                UsageEvent(
                    id: id, source: .apiLog, occurredAt: Self.base.addingTimeInterval(offset), timeFromSender: timed, subscription: nil,
                    customer: nil, product: nil, endpoint: nil, method: nil, path: nil, status: nil, latencyMicroseconds: nil,
                    requestBytes: nil, responseBytes: nil, billable: true)
            }
            let stored = try await store.insertEvents([
                retry("mo:timed", at: 20, timed: true), retry("mo:untimed", at: 99, timed: false),
                retry("ce:untimed", at: 98, timed: false), retry("new", at: 60, timed: true),
            ])
            #expect(stored.inserted == [UsageEvent.Key(id: "new", time: Self.micros(60))])
            #expect(try await store.eventCount() == rows.count + 1)
        }
    }
}
