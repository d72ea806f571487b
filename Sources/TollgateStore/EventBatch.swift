import TollgateCore

/// Usage events in the column order of `usage_events`, as insert statements take them: SQLite
/// bound to its prepared insert of one row (`bind`), PostgreSQL as one JSON array of arrays
/// (`json`).
enum EventBatch {
    static let columns: [(name: String, isInteger: Bool)] = [
        ("id", false), ("keyed_at", true), ("source", false), ("name", false), ("occurred_at", true), ("subscription_id", false),
        ("customer_id", false), ("product_id", false), ("endpoint", false), ("method", false), ("path", false),
        ("status", true), ("latency_us", true), ("request_bytes", true), ("response_bytes", true), ("billable", true),
        ("weight", true), ("body", false), ("bucket_at", true),
    ]

    /// Binds an event to SQLite's insert of one row (`SQLiteUsageLog`): the columns in order,
    /// then `late_invoice`.
    static func bind(_ event: UsageEvent, key: UsageEvent.Key, lateInvoice: String?, to insert: SQLiteStatementHandle) throws {
        try insert.bind(1, key.id)
        try insert.bind(2, key.time)
        try insert.bind(3, event.source.rawValue)
        try insert.bind(4, event.name)
        try insert.bind(5, Micros.of(event.occurredAt))
        try insert.bind(6, event.subscription)
        try insert.bind(7, event.customer)
        try insert.bind(8, event.product)
        try insert.bind(9, event.endpoint)
        try insert.bind(10, event.method)
        try insert.bind(11, event.path)
        try insert.bind(12, event.status)
        try insert.bind(13, event.latencyMicroseconds)
        try insert.bind(14, event.requestBytes)
        try insert.bind(15, event.responseBytes)
        try insert.bind(16, event.billable ? 1 : 0)
        try insert.bind(17, event.weight)
        try insert.bind(18, event.properties?.text)
        try insert.bind(19, event.bucket.map { Micros.of($0) })
        try insert.bind(20, lateInvoice)
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
