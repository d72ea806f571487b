import TollgateCore

/// Usage events in the column order of `usage_events`, as insert statements take them: SQLite
/// bound to its prepared insert of one row (`bind`), PostgreSQL as `COPY` rows (`copy`) or, when
/// some may be stored already, as one binary array per column (`postgres`). `write` is the one
/// place that lists an event's values in that order.
enum EventBatch {
    static let columns: [(name: String, isInteger: Bool)] = [
        ("id", false), ("keyed_at", true), ("source", false), ("name", false), ("occurred_at", true), ("subscription_id", false),
        ("customer_id", false), ("product_id", false), ("endpoint", false), ("method", false), ("path", false),
        ("status", true), ("latency_us", true), ("request_bytes", true), ("response_bytes", true), ("billable", true),
        ("weight", true), ("body", false), ("bucket_at", true), ("late_invoice", false),
    ]

    /// Writes an event's values to `row` in the order of `columns`.
    static func write<Row: EventRow>(_ event: UsageEvent, key: UsageEvent.Key, lateInvoice: String?, to row: inout Row) throws(Row.Failure) {
        try row.text(key.id)
        try row.integer(key.time)
        try row.text(event.source.rawValue)
        try row.text(event.name)
        try row.integer(Micros.of(event.occurredAt))
        try row.text(event.subscription)
        try row.text(event.customer)
        try row.text(event.product)
        try row.text(event.endpoint)
        try row.text(event.method)
        try row.text(event.path)
        try row.integer(event.status.map { Int64($0) })
        try row.integer(event.latencyMicroseconds.map { Int64($0) })
        try row.integer(event.requestBytes.map { Int64($0) })
        try row.integer(event.responseBytes.map { Int64($0) })
        try row.integer(event.billable ? 1 : 0)
        try row.integer(Int64(event.weight))
        try row.json(event.properties)
        try row.integer(event.bucket.map { Micros.of($0) })
        try row.text(lateInvoice)
        row.endRow()
    }

    /// Binds an event to SQLite's insert of one row (`SQLiteUsageLog`).
    static func bind(_ event: UsageEvent, key: UsageEvent.Key, lateInvoice: String?, to insert: SQLiteStatementHandle) throws {
        var row = SQLiteBoundRow(statement: insert)
        try write(event, key: key, lateInvoice: lateInvoice, to: &row)
    }

    /// Appends the events as `COPY` rows of `columns`; `late` gives an event's
    /// late invoice by its position.
    static func copy(_ events: [UsageEvent], late: [Int: String], into rows: inout CopyText) {
        for (position, event) in events.enumerated() {
            let key = event.key
            let invoice = late[position]
            var bound = CopyRowBound()
            write(event, key: key, lateInvoice: invoice, to: &bound)
            rows.appendRow(maximumBytes: bound.bytes) { row in write(event, key: key, lateInvoice: invoice, to: &row) }
        }
    }

    /// About how many bytes the events take as `COPY` rows.
    static func copyCapacity(_ events: [UsageEvent]) -> Int {
        events.reduce(0) { $0 + 200 + ($1.properties?.byteCount ?? 0) }
    }

    /// The events as one array per column of `columns`, for PostgreSQL's insert
    /// through `unnest`; `late` gives an event's late invoice by its position in `events`.
    static func postgres(_ events: ArraySlice<UsageEvent>, late: [Int: String]) -> ColumnArrays {
        var bodyBytes = 0
        for event in events { bodyBytes += 4 + (event.properties?.byteCount ?? 0) }
        var columns = ColumnArrays(
            columns.map { $0.isInteger ? .bigint : .text },
            reservingCapacity: columns.map { $0.name == "body" ? bodyBytes : events.count * ($0.isInteger ? 12 : 28) })
        for (position, event) in zip(events.indices, events) {
            write(event, key: event.key, lateInvoice: late[position], to: &columns)
        }
        return columns
    }
}

/// Where an event's values go, column by column (`EventBatch.write`).
protocol EventRow {
    /// What taking a value can throw: `Never` when it cannot fail.
    associatedtype Failure: Error
    mutating func text(_ value: String?) throws(Failure)
    mutating func integer(_ value: Int64?) throws(Failure)
    /// The event's own JSON, stored as its text.
    mutating func json(_ value: ScannedJSON?) throws(Failure)
    mutating func endRow()
}

/// SQLite: each value bound to the next parameter of a one-row insert.
private struct SQLiteBoundRow: EventRow {
    typealias Failure = any Error
    let statement: SQLiteStatementHandle
    var index: Int32 = 1

    mutating func text(_ value: String?) throws {
        try statement.bind(index, value)
        index += 1
    }

    mutating func integer(_ value: Int64?) throws {
        try statement.bind(index, value)
        index += 1
    }

    mutating func json(_ value: ScannedJSON?) throws {
        try text(value?.text)
    }

    mutating func endRow() {}
}

extension CopyRow: EventRow {
    typealias Failure = Never
    mutating func text(_ value: String?) { append(value) }
    mutating func integer(_ value: Int64?) { append(value) }

    mutating func json(_ value: ScannedJSON?) {
        guard let value else { return appendNull() }
        value.withText { append(json: $0) }
    }
}

extension CopyRowBound: EventRow {
    typealias Failure = Never
    mutating func text(_ value: String?) { text(utf8Count: value?.utf8.count) }
    mutating func integer(_ value: Int64?) { integer() }
    mutating func json(_ value: ScannedJSON?) { text(utf8Count: value?.byteCount) }
    mutating func endRow() {}
}

extension ColumnArrays: EventRow {
    typealias Failure = Never
    mutating func text(_ value: String?) { arrays[next].append(value); next += 1 }
    mutating func integer(_ value: Int64?) { arrays[next].append(value); next += 1 }

    mutating func json(_ value: ScannedJSON?) {
        if let value { value.withText { arrays[next].append(utf8: $0) } } else { arrays[next].appendNull() }
        next += 1
    }

    mutating func endRow() { next = 0 }
}
