import Foundation
import SQLKit
import SQLiteKit
import Synchronization
import TollgateCore

/// What `insertEvents` stored.
public struct EventInsertion: Sendable {
    /// The keys of the events stored now (not of those already stored).
    public var inserted: Set<UsageEvent.Key> = []
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

/// What ingestion keeps in memory between batches: the active meters, and where each
/// subscription's billing periods fall.
struct MeteringCache: Sendable {
    var meters: [Meter]?
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
    /// one statement takes up to 5,000 events as one JSON text bound to one parameter and
    /// unpacked by the database (`jsonb_array_elements`). Batches that arrive while another is
    /// being written share the next transaction (`EventWriter`).
    @discardableResult
    public func insertEvents(_ events: [UsageEvent]) async throws -> EventInsertion {
        guard let prepared = try await prepare(events) else { return EventInsertion() }
        return try await eventWriter.write(prepared)
    }

    /// Where `commitUsage` runs without a thread hop (SQLite: the writer's thread); nil for anywhere.
    public var usageExecutor: (any TaskExecutor)? { backend.writerExecutor }

    /// Writes what the gateway's usage recorder has gathered since its last commit, in one
    /// transaction: quota leases first, then webhook events and usage events, then the calls
    /// they answered from shared quota holdings.
    public func commitUsage(_ commit: UsageCommit) async throws {
        let prepared = try await prepare(commit.events)
        let written: Void? = try await backend.withUsageLog { log in
            try log.transaction {
                try log.write(leases: commit.raisedLeases, onlyUpward: true)
                try log.write(leases: commit.settledLeases, onlyUpward: false)
                try log.write(webhooks: commit.webhooks)
                if let prepared { _ = try log.write(prepared) }
            }
        }
        guard written == nil else { return }
        try await backend.transaction { database in
            try await Self.writeLeases(commit.raisedLeases, onlyUpward: true, to: database)
            try await Self.writeLeases(commit.settledLeases, onlyUpward: false, to: database)
            for delivery in commit.webhooks { try await database.raw(Self.insertDelivery(delivery)).run() }
            if let prepared { _ = try await Self.writePostgres(prepared, to: database) }
            try await Self.writeQuotaUse(commit.quotaUse, to: database)
        }
    }

    /// Everything about events that does not need the writer's turn: duplicates within the
    /// batch left out, buckets filled in, meter deltas computed. Nil for no events.
    private func prepare(_ events: [UsageEvent]) async throws -> PreparedEvents? {
        guard !events.isEmpty else { return nil }
        var unique = events
        let keys = Set(events.lazy.map(\.key))
        if keys.count < events.count {
            var seen = Set<UsageEvent.Key>(minimumCapacity: keys.count)
            unique = events.filter { seen.insert($0.key).inserted }
        }
        try await placeInBuckets(&unique)
        let meters = try await activeMeters()
        return PreparedEvents(
            events: unique, meters: meters, deltas: Metering.deltas(unique, meters: meters),
            postgresBatches: backend.kind == .sqlite ? [] : stride(from: 0, to: unique.count, by: 5000).map { start in
                EventBatch.json(unique[start..<min(start + 5000, unique.count)])
            })
    }

    /// Writes prepared events and their aggregates on PostgreSQL, inside a transaction that is
    /// already open (SQLite's are written by `SQLiteUsageLog`).
    static func writePostgres(_ prepared: PreparedEvents, to database: any SQLDatabase) async throws -> EventInsertion {
        var result = EventInsertion()
        for json in prepared.postgresBatches {
            let rows = try await database.raw("\(unsafeRaw: postgresInsert.prefix)\(bind: json)\(unsafeRaw: postgresInsert.suffix)").all()
            for row in rows {
                let key = UsageEvent.Key(
                    id: try row.decode(column: "id", as: String.self), time: try row.decode(column: "keyed_at", as: Int64.self))
                result.inserted.insert(key)
                if let invoice = try row.decode(column: "late_invoice", as: String?.self) { result.late[key] = invoice }
            }
        }
        // Duplicates add nothing: only when some were already stored are the deltas computed again.
        let inserted = result.inserted
        let deltas = inserted.count == prepared.events.count
            ? prepared.deltas
            : Metering.deltas(prepared.events.filter { inserted.contains($0.key) }, meters: prepared.meters)
        try await Self.write(PreparedDeltas(deltas), kind: .postgres, to: database)
        return result
    }

    /// PostgreSQL's insert around the bound JSON array. An event that falls in a period already
    /// invoiced is stored with that invoice's id in `late_invoice` (DESIGN §3.5: kept and
    /// reported, never re-rated).
    private static let postgresInsert: (prefix: String, suffix: String) = {
        let names = EventBatch.columns.map(\.name)
        let late = """
            (SELECT i.id FROM invoices i WHERE i.subscription_id = batch.subscription_id
            AND i.period_start <= batch.occurred_at AND i.period_end > batch.occurred_at ORDER BY i.period_end LIMIT 1)
            """
        let prefix = """
            INSERT INTO usage_events (\(names.joined(separator: ", ")), late_invoice)
            SELECT \(names.map { "batch.\($0)" }.joined(separator: ", ")), \(late)
            FROM (SELECT \(unpackedColumns(EventBatch.columns, kind: .postgres, named: true)) \(unpackSource(.postgres))
            """
        return (prefix, unpackClose(.postgres) + ") AS batch ON CONFLICT (keyed_at, id) DO NOTHING RETURNING id, keyed_at, late_invoice")
    }()

    /// `SELECT` expressions for the columns of one JSON array of arrays (`AS` their names when `named`).
    private static func unpackedColumns(_ columns: [(name: String, isInteger: Bool)], kind: DatabaseKind, named: Bool = false) -> String {
        columns.enumerated().map { index, column in
            let expression = switch kind {
            // jsonb_each hands each row over as JSONB, so the lookups do not parse text again.
            case .sqlite: "json_extract(value, '$[\(index)]')"
            case .postgres: column.isInteger ? "(e->>\(index))::bigint" : "e->>\(index)"
            }
            return named ? "\(expression) AS \(column.name)" : expression
        }.joined(separator: ", ")
    }

    private static func unpackSource(_ kind: DatabaseKind) -> String {
        kind == .sqlite ? "FROM jsonb_each(" : "FROM jsonb_array_elements(CAST("
    }

    private static func unpackClose(_ kind: DatabaseKind) -> String {
        kind == .sqlite ? ") WHERE true" : " AS jsonb)) AS e"
    }

    /// Fills in each owned event's bucket from its subscription's billing periods.
    private func placeInBuckets(_ events: inout [UsageEvent]) async throws {
        let wanted = Set(events.compactMap { $0.bucket == nil ? $0.subscription : nil })
        guard !wanted.isEmpty else { return }
        let missing = metering.withLock { cache in wanted.filter { cache.clocks[$0] == nil } }
        if !missing.isEmpty { try await loadClocks(Array(missing)) }
        metering.withLock { cache in
            for index in events.indices where events[index].bucket == nil {
                guard let id = events[index].subscription else { continue }
                guard var clock = cache.clocks[id] else {
                    // Not a stored subscription: plain hours keep its usage visible.
                    events[index].bucket = Granularity.hour.floor(events[index].occurredAt)
                    continue
                }
                events[index].bucket = clock.bucket(of: events[index].occurredAt)
                cache.clocks[id] = clock
            }
        }
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

    /// Forgets cached meters and periods (after catalog or subscription changes, here or on
    /// another node).
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
        /// PostgreSQL: each insert statement's events as one JSON array (SQLite binds each event).
        var postgresBatches: [String]
    }

    /// Deltas as the JSON texts their statements bind.
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
    /// several nodes never lose an update).
    static func write(_ deltas: PreparedDeltas, kind: DatabaseKind, to database: any SQLDatabase) async throws {
        if let json = deltas.aggregates {
            let columns = aggregateColumns.map(\.name).joined(separator: ", ")
            let sql = """
                INSERT INTO meter_aggregates (\(columns)) SELECT \(unpackedColumns(aggregateColumns, kind: kind)) \(unpackSource(kind))
                """
            let suffix = unpackClose(kind) + " " + aggregateConflict
            try await database.raw("\(unsafeRaw: sql)\(bind: json)\(unsafeRaw: suffix)").run()
        }
        if let json = deltas.uniques {
            let columns = uniqueColumns.map(\.name).joined(separator: ", ")
            let sql = "INSERT INTO meter_uniques (\(columns)) SELECT \(unpackedColumns(uniqueColumns, kind: kind)) \(unpackSource(kind))"
            try await database.raw("\(unsafeRaw: sql)\(bind: json)\(unsafeRaw: unpackClose(kind) + " ON CONFLICT DO NOTHING")").run()
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
                try await Self.write(
                    PreparedDeltas(Metering.deltas(events, meters: [meter], endpoints: false)), kind: kind, to: database)
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
