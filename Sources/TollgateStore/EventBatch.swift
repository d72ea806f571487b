import TollgateCore

/// Usage events in the column order of `usage_events`, as insert statements take them: SQLite
/// bound to its prepared insert of one row (`bind`), PostgreSQL as one binary array per column
/// (`postgres`).
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

    /// The columns' element types on PostgreSQL, in order.
    static let postgresColumns: [(name: String, element: PostgresArray.Element)] = columns.map {
        ($0.name, $0.isInteger ? PostgresArray.Element.bigint : .text)
    }

    /// The events as one array per column (`postgresColumns`), for PostgreSQL's insert through
    /// `unnest`. The event's own JSON goes in as the text the scanner kept, as on SQLite.
    static func postgres(_ events: ArraySlice<UsageEvent>) -> ColumnArrays {
        var bodyBytes = 0
        for event in events { bodyBytes += 4 + (event.properties?.byteCount ?? 0) }
        var reserved: [Int] = []
        for column in postgresColumns {
            reserved.append(column.name == "body" ? bodyBytes : events.count * (column.element == .bigint ? 12 : 28))
        }
        var columns = ColumnArrays(postgresColumns.map(\.element), reservingCapacity: reserved)
        var body: [UInt8] = []
        for event in events {
            let key = event.key
            columns.arrays[0].append(key.id)
            columns.arrays[1].append(key.time)
            columns.arrays[2].append(event.source.rawValue)
            columns.arrays[3].append(event.name)
            columns.arrays[4].append(Micros.of(event.occurredAt))
            columns.arrays[5].append(event.subscription)
            columns.arrays[6].append(event.customer)
            columns.arrays[7].append(event.product)
            columns.arrays[8].append(event.endpoint)
            columns.arrays[9].append(event.method)
            columns.arrays[10].append(event.path)
            columns.arrays[11].append(event.status)
            columns.arrays[12].append(event.latencyMicroseconds)
            columns.arrays[13].append(event.requestBytes)
            columns.arrays[14].append(event.responseBytes)
            columns.arrays[15].append(Int64(event.billable ? 1 : 0))
            columns.arrays[16].append(Int64(event.weight))
            if let properties = event.properties {
                body.removeAll(keepingCapacity: true)
                properties.appendText(to: &body)
                columns.arrays[17].append(utf8: body)
            } else {
                columns.arrays[17].appendNull()
            }
            columns.arrays[18].append(event.bucket.map { Micros.of($0) })
        }
        return columns
    }
}
