import NIOCore
import TollgateCore

/// Usage events as one JSON array of arrays, in the column order of `usage_events`. With
/// separate bodies (SQLite), each event's own JSON is copied, without its insignificant
/// whitespace, into one byte buffer bound beside the array, and the array holds where it is:
/// the database cuts the slices out instead of parsing every body and writing it back as text.
enum EventBatch {
    /// The index in each event's array of the body's length in the separate buffer (its start
    /// takes the body's own place, 1-based as SQL's `substr` counts).
    static let bodyLengthIndex = columns.count

    /// The index of the body column.
    static let bodyIndex = columns.firstIndex { $0.name == "body" }!

    static let columns: [(name: String, isInteger: Bool)] = [
        ("id", false), ("source", false), ("name", false), ("occurred_at", true), ("subscription_id", false),
        ("customer_id", false), ("product_id", false), ("endpoint", false), ("method", false), ("path", false),
        ("status", true), ("latency_us", true), ("request_bytes", true), ("response_bytes", true), ("billable", true),
        ("weight", true), ("body", false), ("bucket_at", true),
    ]

    /// The array, and with `bodies` non-nil, the bodies in it instead of in the array.
    static func json(_ events: ArraySlice<UsageEvent>, bodies: inout ByteBuffer?) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(events.reduce(2) { $0 + 160 + ($1.propertiesText?.utf8.count ?? 400) })
        out.append(UInt8(ascii: "["))
        for event in events {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "["))
            string(event.id, &out)
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
            // The event's own JSON goes in as JSON, not as an escaped string: both databases hand
            // an object back as its text (`json_extract`, `->>`), which is what the column keeps.
            let text = event.propertiesText ?? event.properties?.jsonText()
            if bodies != nil {
                let start = bodies!.writerIndex
                if let text { appendMinified(text, to: &bodies!) }
                integer(text == nil ? nil : start + 1, &out)
                integer(event.bucket.map { Int(Micros.of($0)) }, &out)
                integer(bodies!.writerIndex - start, &out)
            } else {
                out.append(contentsOf: (text ?? "null").utf8)
                out.append(UInt8(ascii: ","))
                integer(event.bucket.map { Int(Micros.of($0)) }, &out)
            }
            out[out.count - 1] = UInt8(ascii: "]")
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends valid JSON text without the whitespace between its tokens.
    static func appendMinified(_ text: String, to out: inout ByteBuffer) {
        var inString = false, escaped = false
        var utf8 = text
        utf8.withUTF8 { bytes in
            var runStart = 0
            for (index, byte) in bytes.enumerated() {
                if inString {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case 0x20, 0x09, 0x0A, 0x0D:
                    out.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[runStart..<index])))
                    runStart = index + 1
                default: break
                }
            }
            out.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[runStart...])))
        }
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
