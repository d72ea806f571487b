import TollgateCore

/// SQLite's writer of usage: events with their meter aggregates, quota leases and webhook
/// events, on a connection of its own whose statements are prepared once and reused by every
/// commit (no statement is parsed per commit or per event, none is built per batch size).
///
/// It is used only in the SQLite writer's turn (`SQLiteBackend.withUsageLog`, or
/// `inWritersTurnIfFree` on the thread of the caller holding the turn), so the writer's two
/// connections never wait for each other and no two threads use it at once.
final class SQLiteUsageLog: @unchecked Sendable {
    private let connection: SQLiteHandle

    init(path: String) throws {
        // Its commits' log frames go to the file in one write each (`CoalescingWALVFS`).
        connection = try SQLiteHandle(path: path, vfs: CoalescingWALVFS.name, pragmas: [
            "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=10000", "PRAGMA foreign_keys=ON",
            "PRAGMA cache_size=-65536", "PRAGMA wal_autocheckpoint=\(WALCheckpointer.logBound)",
        ])
    }

    /// Runs `body` in one write transaction, rolled back if it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try connection.statement("BEGIN IMMEDIATE").run()
        do {
            let result = try body()
            try connection.statement("COMMIT").run()
            return result
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    // MARK: Events

    private static let insertEvent = """
        INSERT OR IGNORE INTO usage_events (\(EventBatch.columns.map(\.name).joined(separator: ", ")))
        VALUES (\(Array(repeating: "?", count: EventBatch.columns.count).joined(separator: ", ")))
        """

    /// Stores prepared events (those whose key is stored already are left out) and adds the new
    /// ones to their meters. Inside a transaction.
    func write(_ prepared: TollgateStore.PreparedEvents) throws -> EventInsertion {
        var result = EventInsertion()
        let late = try lateInvoices(prepared.events)
        let insert = try connection.statement(Self.insertEvent)
        // Through a buffer pointer: an array's element passed on is a copy with all its strings.
        try prepared.events.withUnsafeBufferPointer { events in
            for position in events.indices {
                let key = events[position].key
                try EventBatch.bind(events[position], key: key, lateInvoice: late[position], to: insert)
                try insert.run()
                guard connection.changes == 1 else { continue }
                result.inserted.append(key)
                if let invoice = late[position] { result.late[key] = invoice }
            }
        }
        let deltas = result.inserted.count == prepared.events.count
            ? prepared.deltas
            : Metering.deltas(prepared.events, storedNow: result.inserted, meters: prepared.meters)
        try write(deltas)
        return result
    }

    private static let invoicesOfSubscription = """
        SELECT id, period_start, period_end FROM invoices WHERE subscription_id = ? ORDER BY period_end
        """

    private static let lastInvoicedEnd = "SELECT MAX(period_end) FROM invoices WHERE subscription_id = ?"

    /// The end of each subscription's last invoiced period (0 for none), as far as it was read:
    /// an event at or after it is not late, so most commits read no invoice at all. Forgotten
    /// whenever another connection (the store's writer, another process) has committed since it
    /// was read, and when it holds more than `invoicedEndsBound` subscriptions.
    private var invoicedEnds: [String: Int64] = [:]
    /// SQLite's `data_version` when `invoicedEnds` was last found current.
    private var invoicedEndsVersion: Int64?
    static let invoicedEndsBound = 65_536

    /// The invoice each event falls in, by position, for events whose period was already
    /// invoiced (`InvoicedPeriods`). Usually there are none: only an event before its
    /// subscription's last invoiced end has its subscription's invoices read.
    private func lateInvoices(_ events: [UsageEvent]) throws -> [Int: String] {
        var invoiced = InvoicedPeriods()
        // In the write transaction: no other connection commits until it ends.
        let version = try dataVersion()
        if version != invoicedEndsVersion || invoicedEnds.count > Self.invoicedEndsBound {
            invoicedEnds.removeAll(keepingCapacity: true)
            invoicedEndsVersion = version
        }
        // Indexed rather than iterated, which would copy each event: only its subscription and time are read.
        for position in events.indices {
            guard let subscription = events[position].subscription else { continue }
            let lastEnd = try invoicedEnds[subscription] ?? lastInvoicedEnd(of: subscription)
            guard Micros.of(events[position].occurredAt) < lastEnd, !invoiced.knows(subscription) else { continue }
            let query = try connection.statement(Self.invoicesOfSubscription)
            try query.bind(1, subscription)
            try query.rows { row in
                guard let id = row.text(0), let start = row.integer(1), let end = row.integer(2) else { return }
                invoiced.add(invoice: id, subscription: subscription, start: start, end: end)
            }
            invoiced.loaded(subscription)
        }
        return invoiced.lateInvoices(events)
    }

    /// Changes whenever another connection commits (SQLite's `PRAGMA data_version`).
    private func dataVersion() throws -> Int64 {
        var version: Int64 = 0
        try connection.statement("PRAGMA data_version").rows { row in version = row.integer(0) ?? 0 }
        return version
    }

    /// Reads (and keeps) the end of a subscription's last invoiced period; 0 for none.
    private func lastInvoicedEnd(of subscription: String) throws -> Int64 {
        let query = try connection.statement(Self.lastInvoicedEnd)
        try query.bind(1, subscription)
        var end: Int64 = 0
        try query.rows { row in end = row.integer(0) ?? 0 }
        invoicedEnds[subscription] = end
        return end
    }

    // MARK: Aggregates

    private static let upsertAggregate = """
        INSERT INTO meter_aggregates (\(TollgateStore.aggregateColumns.map(\.name).joined(separator: ", ")))
        VALUES (\(Array(repeating: "?", count: TollgateStore.aggregateColumns.count).joined(separator: ", ")))
        \(TollgateStore.aggregateConflict)
        """

    private static let insertUnique = """
        INSERT INTO meter_uniques (subscription_id, meter_id, bucket_at, value) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING
        """

    /// Adds deltas to the stored aggregates (the same arithmetic as `TollgateStore.write(_:kind:to:)`).
    private func write(_ deltas: MeterDeltas) throws {
        if !deltas.aggregates.isEmpty {
            let upsert = try connection.statement(Self.upsertAggregate)
            for (key, aggregate) in deltas.aggregates {
                try upsert.bind(1, key.subscription)
                try upsert.bind(2, key.meter)
                try upsert.bind(3, key.bucket)
                try upsert.bind(4, aggregate.count)
                try upsert.bind(5, aggregate.sum.units)
                try upsert.bind(6, aggregate.sum.nanos)
                try upsert.bind(7, aggregate.max?.units)
                try upsert.bind(8, aggregate.max?.nanos)
                try upsert.bind(9, aggregate.latestAt)
                try upsert.bind(10, aggregate.latest?.units)
                try upsert.bind(11, aggregate.latest?.nanos)
                try upsert.run()
            }
        }
        if !deltas.uniques.isEmpty {
            let insert = try connection.statement(Self.insertUnique)
            for unique in deltas.uniques {
                try insert.bind(1, unique.key.subscription)
                try insert.bind(2, unique.key.meter)
                try insert.bind(3, unique.key.bucket)
                try insert.bind(4, unique.value)
                try insert.run()
            }
        }
    }

    // MARK: Leases and webhooks

    /// Raises (`onlyUpward`) or sets quota leases.
    func write(leases: [QuotaLease], onlyUpward: Bool) throws {
        guard !leases.isEmpty else { return }
        let statement = try connection.statement(TollgateStore.leaseUpsert(onlyUpward: onlyUpward))
        for lease in leases {
            try statement.bind(1, lease.subscription)
            try statement.bind(2, lease.plan)
            try statement.bind(3, lease.endpoint ?? "")
            try statement.bind(4, lease.window.rawValue)
            try statement.bind(5, Timestamp.micros(lease.windowStart))
            try statement.bind(6, lease.leased)
            try statement.run()
        }
    }

    /// Adds webhook events to the outbox; an id already there is left alone.
    func write(webhooks: [WebhookDelivery]) throws {
        guard !webhooks.isEmpty else { return }
        let statement = try connection.statement(TollgateStore.outboxInsert)
        for delivery in webhooks {
            try statement.bind(1, delivery.id)
            try statement.bind(2, delivery.type)
            try statement.bind(3, delivery.product)
            try statement.bind(4, delivery.subscription)
            try statement.bind(5, delivery.url)
            try statement.bind(6, delivery.payload)
            try statement.bind(7, Timestamp.micros(delivery.nextAttemptAt))
            try statement.bind(8, Timestamp.micros(delivery.createdAt))
            try statement.run()
        }
    }
}
