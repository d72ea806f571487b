import TollgateCore

/// Usage events as one JSON array of arrays, in the column order of `usage_events`.
enum EventBatch {
    static let columns: [(name: String, isInteger: Bool)] = [
        ("id", false), ("source", false), ("name", false), ("occurred_at", true), ("subscription_id", false),
        ("customer_id", false), ("product_id", false), ("endpoint", false), ("method", false), ("path", false),
        ("status", true), ("latency_us", true), ("request_bytes", true), ("response_bytes", true), ("billable", true),
        ("weight", true), ("body", false), ("bucket_at", true),
    ]

    static func json(_ events: ArraySlice<UsageEvent>) -> String {
        var out = "["
        out.reserveCapacity(events.count * 220)
        var first = true
        for event in events {
            if !first { out += "," }
            first = false
            out += "["
            string(event.id, &out); out += ","
            string(event.source.rawValue, &out); out += ","
            string(event.name, &out); out += ","
            out += String(Timestamp.micros(event.occurredAt)); out += ","
            string(event.subscription, &out); out += ","
            string(event.customer, &out); out += ","
            string(event.product, &out); out += ","
            string(event.endpoint, &out); out += ","
            string(event.method, &out); out += ","
            string(event.path, &out); out += ","
            integer(event.status, &out); out += ","
            integer(event.latencyMicroseconds, &out); out += ","
            integer(event.requestBytes, &out); out += ","
            integer(event.responseBytes, &out); out += ","
            out += event.billable ? "1," : "0,"
            out += String(event.weight); out += ","
            // The event's own JSON goes in as JSON, not as an escaped string: both databases hand
            // an object back as its text (`json_extract`, `->>`), which is what the column keeps.
            out += event.properties?.jsonText() ?? "null"; out += ","
            integer(event.bucket.map { Int(Micros.of($0)) }, &out)
            out += "]"
        }
        out += "]"
        return out
    }

    private static func integer(_ value: Int?, _ out: inout String) {
        if let value { out += String(value) } else { out += "null" }
    }

    private static func string(_ value: String?, _ out: inout String) {
        if let value { JSONText.appendString(value, to: &out) } else { out += "null" }
    }
}
