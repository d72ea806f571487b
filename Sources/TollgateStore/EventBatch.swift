import SQLiteKit
import TollgateCore

/// Usage events in the column order of `usage_events`, as one insert statement takes them:
/// SQLite as bound values, one per column and event (`sqliteRows`), PostgreSQL as one JSON array of
/// arrays (`json`).
enum EventBatch {
    static let columns: [(name: String, isInteger: Bool)] = [
        ("id", false), ("keyed_at", true), ("source", false), ("name", false), ("occurred_at", true), ("subscription_id", false),
        ("customer_id", false), ("product_id", false), ("endpoint", false), ("method", false), ("path", false),
        ("status", true), ("latency_us", true), ("request_bytes", true), ("response_bytes", true), ("billable", true),
        ("weight", true), ("body", false), ("bucket_at", true),
    ]

    /// The rows of one SQLite insert: `values` (the columns, then `late_invoice`,
    /// row after row), and per event what tells the events that fall in an invoiced period.
    static func sqliteRows(_ events: ArraySlice<UsageEvent>) -> SQLiteEventRows {
        func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
        func integer(_ value: Int?) -> SQLiteData { value.map { .integer($0) } ?? .null }
        var rows = SQLiteEventRows()
        rows.keys.reserveCapacity(events.count)
        rows.values.reserveCapacity(events.count * SQLiteEventRows.valuesPerRow)
        rows.subscriptions.reserveCapacity(events.count)
        rows.times.reserveCapacity(events.count)
        for event in events {
            let occurredAt = Int(Timestamp.micros(event.occurredAt))
            let key = event.key
            rows.keys.append(key)
            rows.subscriptions.append(event.subscription)
            rows.times.append(occurredAt)
            rows.values.append(.text(key.id))
            rows.values.append(.integer(Int(key.time)))
            rows.values.append(.text(event.source.rawValue))
            rows.values.append(.text(event.name))
            rows.values.append(.integer(occurredAt))
            rows.values.append(text(event.subscription))
            rows.values.append(text(event.customer))
            rows.values.append(text(event.product))
            rows.values.append(text(event.endpoint))
            rows.values.append(text(event.method))
            rows.values.append(text(event.path))
            rows.values.append(integer(event.status))
            rows.values.append(integer(event.latencyMicroseconds))
            rows.values.append(integer(event.requestBytes))
            rows.values.append(integer(event.responseBytes))
            rows.values.append(.integer(event.billable ? 1 : 0))
            rows.values.append(.integer(event.weight))
            rows.values.append(text(event.properties?.text))
            rows.values.append(integer(event.bucket.map { Int(Micros.of($0)) }))
            rows.values.append(.null)
        }
        return rows
    }

    /// The array of arrays.
    static func json(_ events: ArraySlice<UsageEvent>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(events.reduce(2) { $0 + 160 + ($1.properties?.byteCount ?? 0) })
        out.append(UInt8(ascii: "["))
        for event in events {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "["))
            let key = event.key
            string(key.id, &out)
            integer(Int(key.time), &out)
            string(event.source.rawValue, &out)
            string(event.name, &out)
            integer(Int(Timestamp.micros(event.occurredAt)), &out)
            string(event.subscription, &out)
            string(event.customer, &out)
            string(event.product, &out)
            string(event.endpoint, &out)
            string(event.method, &out)
            string(event.path, &out)
            integer(event.status, &out)
            integer(event.latencyMicroseconds, &out)
            integer(event.requestBytes, &out)
            integer(event.responseBytes, &out)
            integer(event.billable ? 1 : 0, &out)
            integer(event.weight, &out)
            // The event's own JSON goes in as JSON, not as an escaped string: PostgreSQL hands an
            // object back as its text (`->>`), which is what the column keeps.
            if let properties = event.properties { properties.appendText(to: &out) } else { out.append(contentsOf: "null".utf8) }
            out.append(UInt8(ascii: ","))
            integer(event.bucket.map { Int(Micros.of($0)) }, &out)
            out[out.count - 1] = UInt8(ascii: "]")
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends an integer (or null) and a comma.
    private static func integer(_ value: Int?, _ out: inout [UInt8]) {
        if let value { out.append(contentsOf: String(value).utf8) } else { out.append(contentsOf: "null".utf8) }
        out.append(UInt8(ascii: ","))
    }

    /// Appends a string (or null) and a comma.
    private static func string(_ value: String?, _ out: inout [UInt8]) {
        if let value { JSONText.appendString(value, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(UInt8(ascii: ","))
    }
}

/// One SQLite insert's events, as `EventBatch.sqliteRows` binds them.
struct SQLiteEventRows: Sendable {
    /// Values per row of `values`: the ledger's columns and `late_invoice`.
    static let valuesPerRow = EventBatch.columns.count + 1

    var keys: [UsageEvent.Key] = []
    var values: [SQLiteData] = []
    /// Per event: its subscription and time (microseconds).
    var subscriptions: [String?] = []
    var times: [Int] = []

    /// The rows with `late` invoices filled in.
    func values(late: [Int: String]) -> [SQLiteData] {
        var values = values
        for (row, invoice) in late { values[row * Self.valuesPerRow + Self.valuesPerRow - 1] = .text(invoice) }
        return values
    }
}
