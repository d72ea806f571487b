import Foundation
import SQLKit
import Testing
import TollgateCore
@testable import TollgateStore
import TollgateTestSupport

/// SQLite's ledger indexes a hash of each event id instead of the id (migration 8).
@Suite("SQLite ledger")
struct SQLiteLedgerTests {
    @Test
    func eventsStoredBeforeMigrationEightKeepTheirIdsAndStayDeduplicated() async throws {
        let url = try TestDatabase.sqlite.makeURL()
        guard case .sqlite(let path) = url else { throw TestFailure("not a SQLite URL: \(url)") }
        // A ledger as version 7 left it, with two events in it.
        let backend = try await SQLiteBackend.open(path: path, logger: TestLogger.make())
        try await Migrations.run(on: backend, through: 7)
        try await backend.withSQL { database in
            for id in ["old-1", "old-2"] {
                try await database.raw("""
                    INSERT INTO usage_events (id, source, name, occurred_at, billable, weight, body)
                    VALUES (\(bind: id), 'gateway', 'api_calls', 0, 1, 1, '{"kept":true}')
                    """).run()
            }
        }
        try await backend.close()

        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            try await store.migrate()
            #expect(try await store.eventCount() == 2)
            let rows = try await store.backend.read { try await $0.raw("SELECT id, id_hash, body FROM usage_events ORDER BY rowid").all() }
            #expect(try rows.map { try $0.decode(column: "id", as: String.self) } == ["old-1", "old-2"])
            #expect(try rows.map { try $0.decode(column: "id_hash", as: Int.self) } == [EventBatch.idHash("old-1"), EventBatch.idHash("old-2")])
            #expect(try rows.map { try $0.decode(column: "body", as: String.self) } == [#"{"kept":true}"#, #"{"kept":true}"#])
            // The migrated hashes are the ones new batches look for.
            let result = try await store.insertEvents([
                StoreConformanceTests.call("old-1", 0, endpoint: "tile"), StoreConformanceTests.call("new-1", 0, endpoint: "tile"),
            ])
            #expect(result.inserted == ["new-1"])
            #expect(try await store.eventCount() == 3)
        }
    }

    @Test
    func differentIdsWithEqualHashesAreBothStored() async throws {
        try await TestDatabase.sqlite.withStore { store in
            // A stored event whose id hash is that of "e1", under another id.
            try await store.backend.withSQL { database in
                try await database.raw("""
                    INSERT INTO usage_events (id, source, name, occurred_at, billable, weight, id_hash)
                    VALUES ('not-e1', 'gateway', 'api_calls', 0, 1, 1, \(bind: EventBatch.idHash("e1")))
                    """).run()
            }
            let first = try await store.insertEvents([StoreConformanceTests.call("e1", 0, endpoint: "tile")])
            #expect(first.inserted == ["e1"])
            let again = try await store.insertEvents([StoreConformanceTests.call("e1", 0, endpoint: "tile")])
            #expect(again.inserted.isEmpty)
            #expect(try await store.eventCount() == 2)
        }
    }

    @Test
    func theIdHashIsFNV1aOfTheUTF8Bytes() {
        // Published FNV-1a 64 test vectors, as signed integers.
        #expect(EventBatch.idHash("") == Int(bitPattern: 0xcbf2_9ce4_8422_2325))
        #expect(EventBatch.idHash("a") == Int(bitPattern: 0xaf63_dc4c_8601_ec8c))
        #expect(EventBatch.idHash("foobar") == Int(bitPattern: 0x8594_4171_f739_67e8))
    }
}
