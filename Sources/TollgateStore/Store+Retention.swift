import Foundation
import SQLKit
import TollgateCore

extension TollgateStore {
    /// Deletes the analytics events (`billable = 0`: the gateway's own refusals and calls of
    /// unlisted endpoints) that occurred before `cutoff`, and returns how many went.
    ///
    /// Why this changes no invoice and no meter (checked against the code that reads the ledger):
    /// - Ingestion (`insertEvents`) adds only billable events with a subscription to the meter
    ///   aggregates (`Metering.deltas` skips the others), and rating, the period close
    ///   (`PeriodClose`, `meterRows`) and the usage API read those aggregates, never raw events.
    /// - `rebuildAggregates`, the one reader that recomputes aggregates from the ledger, reads
    ///   `billable = 1` events only.
    /// - Billable events are never deleted here, so deduplication of a billable event's retry
    ///   keeps its key; a retried analytics event older than the retention could be stored
    ///   again, and still counts in no meter.
    /// What it does change: `lateEvents` lists an analytics event that fell in an invoiced
    /// period only while it is kept.
    ///
    /// The ledger is walked in its key's order, `batchSize` keys at a time (the key's time is
    /// the event's time, or 0 when its sender gave none, so every event older than `cutoff`
    /// has a key time below it); each batch is deleted in a transaction of its own, so writers
    /// wait for one batch at most.
    @discardableResult
    public func deleteAnalyticsEvents(before cutoff: Date, batchSize: Int = 5000) async throws -> Int {
        precondition(batchSize > 0)
        let end = Micros.of(cutoff)
        var cursor = UsageEvent.Key(id: "", time: Int64.min)
        var deleted = 0
        while true {
            let after = cursor
            let last = try await backend.read { database -> UsageEvent.Key? in
                let rows = try await database.raw("""
                    SELECT keyed_at, id FROM usage_events WHERE (keyed_at, id) > (\(bind: after.time), \(bind: after.id))
                    AND keyed_at < \(bind: end) ORDER BY keyed_at, id LIMIT \(bind: batchSize)
                    """).all()
                guard let row = rows.last else { return nil }
                return UsageEvent.Key(
                    id: try row.decode(column: "id", as: String.self), time: try row.decode(column: "keyed_at", as: Int64.self))
            }
            guard let last else { return deleted }
            deleted += try await backend.transaction { database in
                try await database.raw("""
                    DELETE FROM usage_events WHERE (keyed_at, id) > (\(bind: after.time), \(bind: after.id))
                    AND (keyed_at, id) <= (\(bind: last.time), \(bind: last.id))
                    AND billable = 0 AND occurred_at < \(bind: end) RETURNING id
                    """).all().count
            }
            cursor = last
        }
    }
}
