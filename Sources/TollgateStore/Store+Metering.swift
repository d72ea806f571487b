import Foundation
import SQLKit
import SQLiteKit
import Synchronization
import TollgateCore

/// What `insertEvents` stored.
public struct EventInsertion: Sendable {
    /// The keys of the events stored now (not of those already stored), each once.
    public var inserted: [UsageEvent.Key] = []
    /// Stored events that fall in an already invoiced period, with that invoice's id.
    public var late: [UsageEvent.Key: String] = [:]
}

/// What the gateway's usage recorder writes in one commit (`TollgateStore.commitUsage`).
public struct UsageCommit: Sendable {
    public var events: [UsageEvent] = []
    /// Quota leases to raise (never lowered by this).
    public var raisedLeases: [QuotaLease] = []
    /// Quota leases to set to exactly these counts (at a graceful shutdown).
    public var settledLeases: [QuotaLease] = []
    public var webhooks: [WebhookDelivery] = []
    /// Calls answered from shared quota holdings among `events` (PostgreSQL).
    public var quotaUse: QuotaUse?

    public init(
        events: [UsageEvent] = [], raisedLeases: [QuotaLease] = [], settledLeases: [QuotaLease] = [],
        webhooks: [WebhookDelivery] = [], quotaUse: QuotaUse? = nil
    ) {
        self.events = events
        self.raisedLeases = raisedLeases
        self.settledLeases = settledLeases
        self.webhooks = webhooks
        self.quotaUse = quotaUse
    }

    public var isEmpty: Bool { events.isEmpty && raisedLeases.isEmpty && settledLeases.isEmpty && webhooks.isEmpty }
}

/// What ingestion keeps in memory between batches: the active meters, the products events are
/// attributed to, and where each subscription's billing periods fall.
struct MeteringCache: Sendable {
    var meters: [Meter]?
    var products: [String: Product] = [:]
    var clocks: [String: SubscriptionClock] = [:]
    var planPeriods: [String: BillingPeriodUnit] = [:]
}

/// Where one subscription's billing periods fall; remembers the last period it computed.
struct SubscriptionClock: Sendable {
    var anchor: Date
    var unit: BillingPeriodUnit
    var current: TimeSpan

    init(anchor: Date, unit: BillingPeriodUnit) {
        self.anchor = anchor
        self.unit = unit
        self.current = BillingPeriods.period(containing: anchor, unit: unit, anchor: anchor)
    }

    /// The bucket of an event at `date` (an hour, cut at the start of the period it falls in).
    mutating func bucket(of date: Date) -> Date {
        guard date >= anchor else { return Granularity.hour.floor(date) }
        if !current.contains(date) { current = BillingPeriods.period(containing: date, unit: unit, anchor: anchor) }
        return UsageBuckets.start(of: date, periodStart: current.start)
    }
}

extension TollgateStore {
    // MARK: Ingestion

    /// Stores events, ignoring any whose key is already stored (within the batch too), and adds
    /// the new ones to their meters' aggregates in the same transaction; returns the new keys.
    ///
    /// On SQLite each event is bound to one prepared insert (`SQLiteUsageLog`); on PostgreSQL
    /// one `COPY` takes a transaction's events (`writePostgres`). Batches that arrive while
    /// another is being written share the next transaction (`EventWriter`).
    @discardableResult
    public func insertEvents(_ events: consuming [UsageEvent]) async throws -> EventInsertion {
        guard let prepared = try await prepare(consume events) else { return EventInsertion() }
        return try await eventWriter.write(prepared)
    }

    /// Where `commitUsage` runs without a thread hop (SQLite: the writer's thread); nil for anywhere.
    public var usageExecutor: (any TaskExecutor)? { backend.writerExecutor }

    /// Writes what the gateway's usage recorder has gathered since its last commit, in one
    /// transaction: quota leases first, then webhook events and usage events, then the calls
    /// they answered from shared quota holdings.
    public func commitUsage(_ commit: UsageCommit) async throws {
        let prepared = try await prepare(commit.events)
        let written: Void? = try await backend.withUsageLog { log in try Self.write(commit, prepared: prepared, to: log) }
        guard written == nil else { return }
        try await Self.eventTransaction(backend) { database, mode in
            try await Self.writeLeases(commit.raisedLeases, onlyUpward: true, to: database)
            try await Self.writeLeases(commit.settledLeases, onlyUpward: false, to: database)
            for delivery in commit.webhooks { try await database.raw(Self.insertDelivery(delivery)).run() }
            if let prepared { _ = try await Self.writePostgres(prepared, mode: mode, to: database) }
            try await Self.writeQuotaUse(commit.quotaUse, to: database)
        }
    }

    /// `commitUsage` here and now, on the calling thread, when it needs no waiting: on SQLite,
    /// while no other write holds the writer's turn and the meters and the clocks of the
    /// events' subscriptions are in memory. True when written; false when it would have had to
    /// wait, `commit` then left for `commitUsage` (its events may have lost repeats of a key
    /// within it, which would not be stored either way). Throws if its transaction failed:
    /// nothing of it is written then.
    ///
    /// The gateway's event loops commit their calls' usage this way (`UsageRecorder`), without
    /// waking a writer's thread and being woken by it for every commit. The commit is borrowed
    /// in place (`inout`): its events are not copied to fill in their buckets.
    public func commitUsageNow(_ commit: inout UsageCommit) throws -> Bool {
        guard let sqlite = backend as? SQLiteBackend else { return false }
        let written = try sqlite.inWritersTurnIfFree { log -> Bool in
            var prepared: PreparedEvents?
            if !commit.events.isEmpty {
                guard let ready = prepareFromMemory(&commit.events) else { return false }
                prepared = ready
            }
            try Self.write(commit, prepared: prepared, to: log)
            return true
        }
        return written == true
    }

    /// SQLite: a commit's transaction.
    private static func write(_ commit: UsageCommit, prepared: PreparedEvents?, to log: SQLiteUsageLog) throws {
        try log.transaction {
            try log.write(leases: commit.raisedLeases, onlyUpward: true)
            try log.write(leases: commit.settledLeases, onlyUpward: false)
            try log.write(webhooks: commit.webhooks)
            if let prepared { _ = try log.write(prepared) }
        }
    }

    /// `prepare` from what is in memory alone: nil, the events' buckets left unset, when the
    /// meters or a subscription's clock must be read from the database first.
    private func prepareFromMemory(_ events: inout [UsageEvent]) -> PreparedEvents? {
        Self.leaveOutRepeated(&events)
        let meters: [Meter]? = metering.withLock { cache in
            guard let meters = cache.meters, Self.placeInBuckets(&events, cache: &cache) else { return nil }
            return meters
        }
        guard let meters else { return nil }
        return PreparedEvents(events: events, meters: meters, deltas: Metering.deltas(events, meters: meters))
    }

    /// Leaves out an event whose key came earlier in the batch.
    private static func leaveOutRepeated(_ events: inout [UsageEvent]) {
        var seen = Set<UsageEvent.Key>(minimumCapacity: events.count)
        // Through a buffer pointer, by index: an array's element (or a sequence's) is a copy with all its strings.
        let repeated = events.withUnsafeBufferPointer { events in
            events.indices.contains { !seen.insert(events[$0].key).inserted }
        }
        if repeated {
            seen.removeAll(keepingCapacity: true)
            events = events.filter { seen.insert($0.key).inserted }
        }
    }

    /// Everything about events that does not need the writer's turn: duplicates within the
    /// batch left out, buckets filled in, meter deltas computed. Nil for no events.
    /// Taking the events (`consuming`) lets buckets be filled in without copying every event.
    private func prepare(_ events: consuming [UsageEvent]) async throws -> PreparedEvents? {
        var unique = consume events
        guard !unique.isEmpty else { return nil }
        Self.leaveOutRepeated(&unique)
        try await placeInBuckets(&unique)
        let meters = try await activeMeters()
        var prepared = PreparedEvents(events: unique, meters: meters, deltas: Metering.deltas(unique, meters: meters))
        if backend.kind == .postgres {
            // Late events and the COPY rows are found and built here, beside other batches'
            // transactions, rather than in one's turn. An invoice issued between this look-up
            // and the commit is not seen, as one issued during an insert statement was not:
            // the billing grace (DESIGN §3.5) lets events in flight arrive first.
            let events = unique
            let invoiced = try await backend.read { database in try await Self.invoicedPeriods(of: events, in: database) }
            prepared.late = invoiced.lateInvoices(unique)
            var rows = CopyText(reservingCapacity: EventBatch.copyCapacity(unique))
            EventBatch.copy(unique, late: prepared.late, into: &rows)
            prepared.copyRows = rows
        }
        return prepared
    }

    /// The most events one PostgreSQL insert through `unnest` takes.
    static let postgresRowsPerStatement = 10_000

    /// How PostgreSQL's writers put events in: `copy` (PostgreSQL's bulk path, about half the
    /// work per row, but it fails if an event is stored already) or `skipStored` (inserts that
    /// leave out what is stored).
    enum EventInsertMode: Sendable {
        case copy, skipStored
    }

    /// Runs `body` in a PostgreSQL transaction whose events are copied; should one be stored
    /// already (a sender's retry: rare), the transaction is rolled back and run once more with
    /// inserts that skip stored events.
    static func eventTransaction<T: Sendable>(
        _ backend: any SQLBackend, _ body: @escaping @Sendable (any SQLDatabase, EventInsertMode) async throws -> T
    ) async throws -> T {
        do {
            return try await backend.usageTransaction { database in try await body(database, .copy) }
        } catch where isUniqueViolation(error) {
            return try await backend.usageTransaction { database in try await body(database, .skipStored) }
        }
    }

    /// Writes prepared events and their aggregates on PostgreSQL, inside a transaction that is
    /// already open (SQLite's are written by `SQLiteUsageLog`).
    static func writePostgres(_ prepared: PreparedEvents, mode: EventInsertMode, to database: any SQLDatabase) async throws -> EventInsertion {
        try await writePostgres([prepared], mode: mode, to: database)[0]
    }

    /// Writes the events of several batches on PostgreSQL, inside a transaction that is already
    /// open (`eventTransaction`), then the aggregates of all of them with one upsert (a row that
    /// several batches add to is written once per transaction). The events go in with one
    /// `COPY` of the rows `prepare` built, or, with `skipStored`, through `unnest` with
    /// `ON CONFLICT DO NOTHING`.
    static func writePostgres(_ batches: [PreparedEvents], mode: EventInsertMode, to database: any SQLDatabase) async throws -> [EventInsertion] {
        var results: [EventInsertion] = []
        var deltas = MeterDeltas()
        if mode == .copy, let session = database as? PostgresSession {
            try await session.copy(batches.compactMap(\.copyRows), into: "usage_events", columns: EventBatch.columns.map(\.name))
            for prepared in batches {
                var result = EventInsertion()
                result.inserted = prepared.events.map(\.key)
                for (position, invoice) in prepared.late { result.late[prepared.events[position].key] = invoice }
                deltas.add(prepared.deltas)
                results.append(result)
            }
        } else {
            for prepared in batches {
                let result = try await insertNew(prepared.events, late: prepared.late, to: database)
                // Duplicates add nothing: only when some were already stored are the deltas computed again.
                deltas.add(result.inserted.count == prepared.events.count
                    ? prepared.deltas
                    : Metering.deltas(prepared.events, storedNow: result.inserted, meters: prepared.meters))
                results.append(result)
            }
        }
        try await Self.write(deltas, kind: .postgres, to: database)
        return results
    }

    /// Inserts the events whose keys are not stored yet, `postgresRowsPerStatement` at a time.
    private static func insertNew(_ events: [UsageEvent], late: [Int: String], to database: any SQLDatabase) async throws -> EventInsertion {
        var result = EventInsertion()
        for start in stride(from: 0, to: events.count, by: postgresRowsPerStatement) {
            let slice = events[start..<min(start + postgresRowsPerStatement, events.count)]
            let columns = EventBatch.postgres(slice, late: late)
            let insert = SQLQueryString(postgresInsert.prefix)
                + columns.unnest(as: "batch", columns: EventBatch.columns.map(\.name))
                + "\(unsafeRaw: postgresInsert.suffix)\(bind: Int64(slice.count))"
            var stored: Int64?
            var returned: [UsageEvent.Key] = []
            for row in try await database.raw(insert).all() {
                guard let id = try row.decode(column: "id", as: String?.self) else {
                    stored = try row.decode(column: "keyed_at", as: Int64.self)
                    continue
                }
                let key = UsageEvent.Key(id: id, time: try row.decode(column: "keyed_at", as: Int64.self))
                returned.append(key)
                if let invoice = try row.decode(column: "late_invoice", as: String?.self) { result.late[key] = invoice }
            }
            // Every event stored: only those that fell in invoiced periods came back.
            if stored == Int64(slice.count) {
                result.inserted.append(contentsOf: slice.lazy.map(\.key))
            } else {
                result.inserted.append(contentsOf: returned)
            }
        }
        return result
    }

    /// PostgreSQL's insert around the arrays' `unnest`, then the number of events it stored.
    /// The keys stored come back only when some events were not (duplicates); late events
    /// always come back: with all of them stored, a batch's answer needs nothing else, and
    /// nothing is sent per event.
    private static let postgresInsert: (prefix: String, suffix: String) = {
        let names = EventBatch.columns.map(\.name)
        let prefix = """
            WITH inserted AS (INSERT INTO usage_events (\(names.joined(separator: ", ")))
            SELECT \(names.map { "batch.\($0)" }.joined(separator: ", ")) FROM\u{20}
            """
        let suffix = """
             ON CONFLICT (keyed_at, id) DO NOTHING RETURNING id, keyed_at, late_invoice)
            SELECT NULL AS id, count(*) AS keyed_at, NULL AS late_invoice FROM inserted
            UNION ALL SELECT id, keyed_at, late_invoice FROM inserted
            WHERE late_invoice IS NOT NULL OR (SELECT count(*) FROM inserted) <\u{20}
            """
        return (prefix, suffix)
    }()

    /// The invoices of the batches' subscriptions whose periods end after the earliest event:
    /// all that a late event can fall in.
    private static func invoicedPeriods(of events: [UsageEvent], in database: any SQLDatabase) async throws -> InvoicedPeriods {
        var invoiced = InvoicedPeriods()
        let subscriptions = events.distinctValues(\.subscription)
        var earliest = Int64.max
        for event in events where event.subscription != nil { earliest = min(earliest, Micros.of(event.occurredAt)) }
        guard !subscriptions.isEmpty else { return invoiced }
        var ids = PostgresArray(.text)
        for subscription in subscriptions { ids.append(subscription) }
        let rows = try await database.raw("""
            SELECT subscription_id, id, period_start, period_end FROM invoices
            WHERE subscription_id = ANY(\(bind: ids)::text[]) AND period_end > \(bind: earliest) ORDER BY period_end
            """).all()
        for row in rows {
            invoiced.add(
                invoice: try row.decode(column: "id", as: String.self), subscription: try row.decode(column: "subscription_id", as: String.self),
                start: try row.decode(column: "period_start", as: Int64.self), end: try row.decode(column: "period_end", as: Int64.self))
        }
        return invoiced
    }

    /// `SELECT` expressions for the columns of one JSON array of arrays (SQLite's `jsonb_each`,
    /// which hands each row over as JSONB, so the lookups do not parse text again).
    private static func unpackedColumns(_ columns: [(name: String, isInteger: Bool)]) -> String {
        columns.indices.map { "json_extract(value, '$[\($0)]')" }.joined(separator: ", ")
    }

    /// Fills in each owned event's bucket from its subscription's billing periods.
    private func placeInBuckets(_ events: inout [UsageEvent]) async throws {
        let wanted = events.distinctValues { $0.bucket == nil ? $0.subscription : nil }
        guard !wanted.isEmpty else { return }
        let missing = metering.withLock { cache in wanted.filter { cache.clocks[$0] == nil } }
        if !missing.isEmpty { try await loadClocks(Array(missing)) }
        metering.withLock { cache in _ = Self.placeInBuckets(&events, cache: &cache, unknownAsStored: false) }
    }

    /// Fills in the buckets of events that have none from the subscriptions' clocks in `cache`.
    /// With `unknownAsStored`, a subscription without a clock in `cache` may be a stored one
    /// whose clock is not loaded yet: nothing is filled in then, and the answer is false.
    /// Otherwise it is taken for one that is not stored, whose usage goes in plain hours.
    private static func placeInBuckets(
        _ events: inout [UsageEvent], cache: inout MeteringCache, unknownAsStored: Bool = true
    ) -> Bool {
        if unknownAsStored {
            var known: String?
            for index in events.indices where events[index].bucket == nil {
                guard let id = events[index].subscription, id != known else { continue }
                if cache.clocks[id] == nil { return false }
                known = id
            }
        }
        // Events come in runs of one subscription: its clock is looked up and put back once a run.
        var runID: String?
        var runClock: SubscriptionClock?
        for index in events.indices where events[index].bucket == nil {
            guard let id = events[index].subscription else { continue }
            if id != runID {
                if let runID, let runClock { cache.clocks[runID] = runClock }
                runID = id
                runClock = cache.clocks[id]
            }
            if var clock = runClock {
                events[index].bucket = clock.bucket(of: events[index].occurredAt)
                runClock = clock
            } else {
                // Not a stored subscription: plain hours keep its usage visible.
                events[index].bucket = Granularity.hour.floor(events[index].occurredAt)
            }
        }
        if let runID, let runClock { cache.clocks[runID] = runClock }
        return true
    }

    private func loadClocks(_ ids: [String]) async throws {
        var found: [(id: String, plan: String, startedAt: Date)] = []
        for start in stride(from: 0, to: ids.count, by: 500) {
            let slice = Array(ids[start..<min(start + 500, ids.count)])
            let rows = try await backend.read { database in
                try await database.raw("SELECT id, plan_id, started_at FROM subscriptions WHERE id IN (\(binds: slice))").all()
            }
            for row in rows {
                found.append((try row.decode(column: "id", as: String.self), try row.decode(column: "plan_id", as: String.self),
                              Timestamp.date(try row.decode(column: "started_at", as: Int.self))))
            }
        }
        var units: [String: BillingPeriodUnit] = metering.withLock { $0.planPeriods }
        for plan in Set(found.map(\.plan)) where units[plan] == nil {
            units[plan] = try await self.plan(plan)?.value.period
        }
        metering.withLock { cache in
            cache.planPeriods = units
            for entry in found {
                guard let unit = units[entry.plan] else { continue }
                cache.clocks[entry.id] = SubscriptionClock(anchor: entry.startedAt, unit: unit)
            }
        }
    }

    /// The meters that aggregate new events (archived meters keep their history but stop).
    func activeMeters() async throws -> [Meter] {
        if let meters = metering.withLock({ $0.meters }) { return meters }
        let meters = try await allMeters().filter { !$0.archived }.map(\.value)
        metering.withLock { $0.meters = meters }
        return meters
    }

    /// A product as ingestion attributes events to it (its endpoints), kept until the catalog
    /// changes (`invalidateMeteringCache`); nil if there is none.
    public func productForIngestion(_ id: String) async throws -> Product? {
        if let product = metering.withLock({ $0.products[id] }) { return product }
        guard let product = try await product(id)?.value else { return nil }
        metering.withLock { $0.products[id] = product }
        return product
    }

    /// Forgets cached meters, products and periods (after catalog or subscription changes, here
    /// or on another node).
    public func invalidateMeteringCache() {
        metering.withLock { $0 = MeteringCache() }
    }

    // MARK: Aggregates

    static let aggregateColumns: [(name: String, isInteger: Bool)] = [
        ("subscription_id", false), ("meter_id", false), ("bucket_at", true), ("event_count", true), ("sum_units", true),
        ("sum_nanos", true), ("max_units", true), ("max_nanos", true), ("latest_at", true), ("latest_units", true),
        ("latest_nanos", true),
    ]

    private static let uniqueColumns: [(name: String, isInteger: Bool)] = [
        ("subscription_id", false), ("meter_id", false), ("bucket_at", true), ("value", false),
    ]

    /// Events ready to be written: placed in their buckets, with the aggregates they add when
    /// none is a duplicate.
    struct PreparedEvents: Sendable {
        var events: [UsageEvent]
        var meters: [Meter]
        var deltas: MeterDeltas
        /// PostgreSQL: the late events' invoices by position (SQLite finds them in its writer).
        var late: [Int: String] = [:]
        /// PostgreSQL: the events as `COPY` rows, late invoices included.
        var copyRows: CopyText?
    }

    /// Deltas as the JSON texts SQLite's statements bind.
    struct PreparedDeltas: Sendable {
        var aggregates: String?
        var uniques: String?

        init(_ deltas: MeterDeltas) {
            aggregates = deltas.aggregates.isEmpty ? nil : TollgateStore.aggregatesJSON(deltas)
            uniques = deltas.uniques.isEmpty ? nil : TollgateStore.uniquesJSON(deltas)
        }
    }

    private static func aggregatesJSON(_ deltas: MeterDeltas) -> String {
        var json = "["
        for (index, (key, aggregate)) in deltas.aggregates.enumerated() {
            if index > 0 { json += "," }
            json += "["
            JSONText.appendString(key.subscription, to: &json); json += ","
            JSONText.appendString(key.meter, to: &json)
            let numbers: [Int64?] = [
                key.bucket, aggregate.count, aggregate.sum.units, aggregate.sum.nanos, aggregate.max?.units,
                aggregate.max?.nanos, aggregate.latestAt, aggregate.latest?.units, aggregate.latest?.nanos,
            ]
            for number in numbers { json += number.map { ",\($0)" } ?? ",null" }
            json += "]"
        }
        json += "]"
        return json
    }

    private static func uniquesJSON(_ deltas: MeterDeltas) -> String {
        var json = "["
        for (index, unique) in deltas.uniques.enumerated() {
            if index > 0 { json += "," }
            json += "["
            JSONText.appendString(unique.key.subscription, to: &json); json += ","
            JSONText.appendString(unique.key.meter, to: &json); json += ",\(unique.key.bucket),"
            JSONText.appendString(unique.value, to: &json)
            json += "]"
        }
        json += "]"
        return json
    }

    /// Adds deltas to the stored aggregates: counts and sums add, a maximum or a later value
    /// replaces the stored one (the database does the arithmetic, so concurrent writers of
    /// several nodes never lose an update). SQLite takes them as JSON (`jsonb_each`), PostgreSQL
    /// as one array per column, in key order (concurrent writers lock rows in the same order).
    static func write(_ deltas: MeterDeltas, kind: DatabaseKind, to database: any SQLDatabase) async throws {
        guard !deltas.isEmpty else { return }
        if kind == .postgres { return try await writePostgresDeltas(deltas, to: database) }
        let prepared = PreparedDeltas(deltas)
        if let json = prepared.aggregates {
            let columns = aggregateColumns.map(\.name).joined(separator: ", ")
            let sql = "INSERT INTO meter_aggregates (\(columns)) SELECT \(unpackedColumns(aggregateColumns)) FROM jsonb_each("
            try await database.raw("\(unsafeRaw: sql)\(bind: json)\(unsafeRaw: ") WHERE true " + aggregateConflict)").run()
        }
        if let json = prepared.uniques {
            let columns = uniqueColumns.map(\.name).joined(separator: ", ")
            let sql = "INSERT INTO meter_uniques (\(columns)) SELECT \(unpackedColumns(uniqueColumns)) FROM jsonb_each("
            try await database.raw("\(unsafeRaw: sql)\(bind: json)\(unsafeRaw: ") WHERE true ON CONFLICT DO NOTHING")").run()
        }
    }

    private static func writePostgresDeltas(_ deltas: MeterDeltas, to database: any SQLDatabase) async throws {
        if !deltas.aggregates.isEmpty {
            var columns = ColumnArrays(aggregateColumns.map { $0.isInteger ? PostgresArray.Element.bigint : .text })
            let sorted = deltas.aggregates.sorted { a, b in
                (a.key.subscription, a.key.meter, a.key.bucket) < (b.key.subscription, b.key.meter, b.key.bucket)
            }
            for (key, aggregate) in sorted {
                columns.arrays[0].append(key.subscription)
                columns.arrays[1].append(key.meter)
                columns.arrays[2].append(key.bucket)
                columns.arrays[3].append(aggregate.count)
                columns.arrays[4].append(aggregate.sum.units)
                columns.arrays[5].append(aggregate.sum.nanos)
                columns.arrays[6].append(aggregate.max?.units)
                columns.arrays[7].append(aggregate.max?.nanos)
                columns.arrays[8].append(aggregate.latestAt)
                columns.arrays[9].append(aggregate.latest?.units)
                columns.arrays[10].append(aggregate.latest?.nanos)
            }
            let names = aggregateColumns.map(\.name)
            try await database.raw("""
                INSERT INTO meter_aggregates (\(unsafeRaw: names.joined(separator: ", "))) SELECT * FROM \(columns.unnest(as: "delta", columns: names))
                \(unsafeRaw: aggregateConflict)
                """).run()
        }
        if !deltas.uniques.isEmpty {
            var columns = ColumnArrays(uniqueColumns.map { $0.isInteger ? PostgresArray.Element.bigint : .text })
            let sorted = deltas.uniques.sorted { a, b in
                (a.key.subscription, a.key.meter, a.key.bucket, a.value) < (b.key.subscription, b.key.meter, b.key.bucket, b.value)
            }
            for unique in sorted {
                columns.arrays[0].append(unique.key.subscription)
                columns.arrays[1].append(unique.key.meter)
                columns.arrays[2].append(unique.key.bucket)
                columns.arrays[3].append(unique.value)
            }
            let names = uniqueColumns.map(\.name)
            try await database.raw("""
                INSERT INTO meter_uniques (\(unsafeRaw: names.joined(separator: ", "))) SELECT * FROM \(columns.unnest(as: "delta", columns: names))
                ON CONFLICT DO NOTHING
                """).run()
        }
    }

    /// What adding a row to a stored aggregate does: counts and sums add, a maximum or a later
    /// value replaces the stored one.
    static let aggregateConflict: String = {
        let table = "meter_aggregates"
        let newMax = "excluded.max_units IS NOT NULL AND (\(table).max_units IS NULL OR excluded.max_units > \(table).max_units OR (excluded.max_units = \(table).max_units AND excluded.max_nanos > \(table).max_nanos))"
        let newLatest = "excluded.latest_at IS NOT NULL AND (\(table).latest_at IS NULL OR excluded.latest_at >= \(table).latest_at)"
        func pick(_ column: String, _ condition: String) -> String {
            "\(column) = CASE WHEN \(condition) THEN excluded.\(column) ELSE \(table).\(column) END"
        }
        return """
            ON CONFLICT (subscription_id, meter_id, bucket_at) DO UPDATE SET
            event_count = \(table).event_count + excluded.event_count, sum_units = \(table).sum_units + excluded.sum_units,
            sum_nanos = \(table).sum_nanos + excluded.sum_nanos, \(pick("max_units", newMax)), \(pick("max_nanos", newMax)),
            \(pick("latest_at", newLatest)), \(pick("latest_units", newLatest)), \(pick("latest_nanos", newLatest))
            """
    }()

    /// Recomputes a meter's aggregates from the ledger (after it was created or changed), in one
    /// transaction that new events wait for, so none is counted twice or missed.
    public func rebuildAggregates(of meter: Meter) async throws {
        let kind = backend.kind
        let name = switch meter.source {
        case .apiCalls: "api_calls"
        case .event(let name): name
        }
        try await backend.transaction { database in
            if kind == .postgres {
                try await database.raw("LOCK TABLE meter_aggregates, meter_uniques IN EXCLUSIVE MODE").run()
            }
            try await database.raw("DELETE FROM meter_aggregates WHERE meter_id = \(bind: meter.id)").run()
            try await database.raw("DELETE FROM meter_uniques WHERE meter_id = \(bind: meter.id)").run()
            // Pages follow the ledger's key.
            var cursor = UsageEvent.Key(id: "", time: Int64.min)
            while true {
                let rows = try await database.raw("""
                    SELECT id, keyed_at, source, occurred_at, subscription_id, endpoint, method, path, status, latency_us,
                    request_bytes, response_bytes, weight, body, bucket_at FROM usage_events
                    WHERE name = \(bind: name) AND billable = 1 AND subscription_id IS NOT NULL AND bucket_at IS NOT NULL
                    AND (keyed_at, id) > (\(bind: cursor.time), \(bind: cursor.id)) ORDER BY keyed_at, id LIMIT 5000
                    """).all()
                guard !rows.isEmpty else { break }
                var events: [UsageEvent] = []
                events.reserveCapacity(rows.count)
                for row in rows {
                    let body = try row.decode(column: "body", as: String?.self)
                    events.append(UsageEvent(
                        id: try row.decode(column: "id", as: String.self),
                        source: UsageEvent.Source(rawValue: try row.decode(column: "source", as: String.self)) ?? .gateway,
                        name: name,
                        occurredAt: Timestamp.date(try row.decode(column: "occurred_at", as: Int.self)),
                        timeFromSender: try row.decode(column: "keyed_at", as: Int64.self) != 0,
                        subscription: try row.decode(column: "subscription_id", as: String?.self), customer: nil, product: nil,
                        endpoint: try row.decode(column: "endpoint", as: String?.self),
                        method: try row.decode(column: "method", as: String?.self),
                        path: try row.decode(column: "path", as: String?.self),
                        status: try row.decode(column: "status", as: Int?.self),
                        latencyMicroseconds: try row.decode(column: "latency_us", as: Int?.self),
                        requestBytes: try row.decode(column: "request_bytes", as: Int?.self),
                        responseBytes: try row.decode(column: "response_bytes", as: Int?.self),
                        billable: true, weight: try row.decode(column: "weight", as: Int.self),
                        properties: try body.map { try ScannedJSON.scan($0.utf8) },
                        bucket: try row.decode(column: "bucket_at", as: Int?.self).map { Micros.date(Int64($0)) }))
                }
                if let last = rows.last {
                    cursor = UsageEvent.Key(
                        id: try last.decode(column: "id", as: String.self), time: try last.decode(column: "keyed_at", as: Int64.self))
                }
                try await Self.write(Metering.deltas(events, meters: [meter], endpoints: false), kind: kind, to: database)
            }
        }
    }

    /// A subscription's aggregate rows whose bucket starts in `[from, to)`.
    public func meterRows(subscription: String, from: Date, to: Date) async throws -> MeterRows {
        let start = Micros.of(from)
        let end = Micros.of(to)
        return try await backend.read { database in
            let aggregates = try await database.raw("""
                SELECT * FROM meter_aggregates WHERE subscription_id = \(bind: subscription)
                AND bucket_at >= \(bind: start) AND bucket_at < \(bind: end)
                """).all()
            let uniques = try await database.raw("""
                SELECT meter_id, bucket_at, value FROM meter_uniques WHERE subscription_id = \(bind: subscription)
                AND bucket_at >= \(bind: start) AND bucket_at < \(bind: end)
                """).all()
            func number(_ row: any SQLRow, _ prefix: String) throws -> MeterNumber? {
                guard let units = try row.decode(column: prefix + "_units", as: Int64?.self) else { return nil }
                return MeterNumber(units: units, nanos: try row.decode(column: prefix + "_nanos", as: Int64?.self) ?? 0)
            }
            return MeterRows(
                aggregates: try aggregates.map { row in
                    MeterRows.Aggregate(
                        meter: try row.decode(column: "meter_id", as: String.self),
                        bucket: try row.decode(column: "bucket_at", as: Int64.self),
                        aggregate: MeterAggregate(
                            count: try row.decode(column: "event_count", as: Int64.self),
                            sum: try number(row, "sum") ?? .zero, max: try number(row, "max"),
                            latestAt: try row.decode(column: "latest_at", as: Int64?.self), latest: try number(row, "latest")))
                },
                uniques: try uniques.map { row in
                    MeterRows.Unique(
                        meter: try row.decode(column: "meter_id", as: String.self),
                        bucket: try row.decode(column: "bucket_at", as: Int64.self),
                        value: try row.decode(column: "value", as: String.self))
                })
        }
    }
}

extension MeterDeltas {
    /// Adds another batch's deltas (aggregates merge, distinct values unite).
    mutating func add(_ other: MeterDeltas) {
        if isEmpty {
            self = other
            return
        }
        for (key, aggregate) in other.aggregates { aggregates[key, default: MeterAggregate()].merge(aggregate) }
        uniques.formUnion(other.uniques)
    }
}

extension Metering {
    /// The aggregates of those of `events` stored now, when some of them were stored already.
    static func deltas(_ events: [UsageEvent], storedNow: [UsageEvent.Key], meters: [Meter]) -> MeterDeltas {
        let stored = Set(storedNow)
        return deltas(events.filter { stored.contains($0.key) }, meters: meters)
    }
}
