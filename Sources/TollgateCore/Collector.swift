import Crypto
import Foundation

/// Times as Moesif's SDKs and CloudEvents send them: `2026-11-21T21:26:39`, with 0 to 9
/// fraction digits, and `Z`, `±HH:MM`, `±HHMM` or no zone (UTC).
public enum CollectorTime {
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8(parse)
    }

    /// The time a JSON value says, read in place when it is a string without escapes.
    static func parse(_ value: ScannedJSON) -> Date? {
        parse(at: value.position, in: value)
    }

    /// The time the value at `position` in `document`'s text says (`ScannedJSON.position(of:)`).
    static func parse(at position: Int, in document: ScannedJSON) -> Date? {
        if let date = document.withUnescapedBytes(at: position, parse) { return date }
        return document.scalarText(at: position).flatMap(parse)
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        var index = 0
        func number(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += count
            return value
        }
        func expect(_ character: UInt8, or other: UInt8? = nil, or third: UInt8? = nil) -> Bool {
            guard index < bytes.count, bytes[index] == character || bytes[index] == other || bytes[index] == third else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect(UInt8(ascii: "-")), let month = number(2), expect(UInt8(ascii: "-")), let day = number(2),
              (1...12).contains(month), (1...CivilTime.daysIn(year: year, month: month)).contains(day), expect(UInt8(ascii: "T"), or: UInt8(ascii: "t"), or: UInt8(ascii: " ")),
              let hour = number(2), expect(UInt8(ascii: ":")), let minute = number(2), expect(UInt8(ascii: ":")), let second = number(2),
              hour < 24, minute < 60, second < 61
        else { return nil }
        var nanos = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, (48...57).contains(bytes[index]) {
                if digits < 9 { nanos = nanos * 10 + Int(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            if digits < 9 { for _ in digits..<9 { nanos *= 10 } }
        }
        var offset = 0
        if index < bytes.count {
            if expect(UInt8(ascii: "Z"), or: UInt8(ascii: "z")) {
            } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
                index += 1
                guard let hours = number(2) else { return nil }
                _ = expect(UInt8(ascii: ":"))
                guard let minutes = number(2), hours < 24, minutes < 60 else { return nil }
                offset = sign * (hours * 3600 + minutes * 60)
            } else {
                return nil
            }
        }
        guard index == bytes.count else { return nil }
        let seconds = CivilTime.days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanos / 1000) / 1_000_000)
    }
}

/// An event read from the collector, before it is attributed to a subscription.
public struct CollectedEvent: Sendable {
    public var event: UsageEvent
    /// Who the sender says the event belongs to.
    public var company: String?
    public var user: String?
    /// A subscription named by the sender (CloudEvents' `subject` may name one or a customer).
    public var subscription: String?
    /// Whether `company` may also be a subscription id (CloudEvents' `subject`).
    public var subjectMayBeSubscription = false
}

/// Reads Moesif API events and actions and CloudEvents into usage events (DESIGN §3.5); every
/// field is optional and nullable unless its kind cannot do without it.
public enum CollectorFormat {
    /// Events older than this are refused.
    public static let oldest: TimeInterval = 35 * 86_400
    /// Events further ahead than this are refused.
    public static let furthestAhead: TimeInterval = 5 * 60
    /// The largest single event, as stored.
    public static let largestEvent = 1 << 20

    /// A Moesif API event (`/v1/events`).
    public static func apiEvent(_ node: ScannedJSON, receivedAt: Date) -> Result<CollectedEvent, Refusal> {
        read(node, receivedAt: receivedAt) { (node) throws(Refusal) -> Shape in
            let method = node.scalarText(at: node.position(of: "request", "verb"))?.uppercased()
            let path = node.scalarText(at: node.position(of: "request", "uri")).map(pathOf)
            var status: Int?
            if let text = node.scalarText(at: node.position(of: "response", "status")) {
                guard let code = Int(text), (100...999).contains(code) else { throw Refusal("response.status must be an HTTP status code") }
                status = code
            }
            return (.apiLog, "api_calls", method, path, status, node.scalarText(at: node.position(of: "transaction_id")).map { "mo:" + $0 })
        }
    }

    /// A Moesif action (`/v1/actions`).
    public static func action(_ node: ScannedJSON, receivedAt: Date) -> Result<CollectedEvent, Refusal> {
        read(node, receivedAt: receivedAt) { (node) throws(Refusal) -> Shape in
            guard let name = node.scalarText(at: node.position(of: "action_name")), !name.isEmpty else {
                throw Refusal("action_name is required")
            }
            return (.action, name, node.scalarText(at: node.position(of: "request", "verb"))?.uppercased(),
                    node.scalarText(at: node.position(of: "request", "uri")).map(pathOf), nil,
                    node.scalarText(at: node.position(of: "transaction_id")).map { "mo:" + $0 })
        }
    }

    /// A CloudEvent in structured JSON mode; deduplicated by `source` + `id` (and `time`, see `UsageEvent.Key`).
    public static func cloudEvent(_ node: ScannedJSON, receivedAt: Date) -> Result<CollectedEvent, Refusal> {
        guard node.isObject else { return .failure(Refusal("must be a JSON object")) }
        for attribute in ["specversion", "id", "source", "type"] where (node[attribute]?.scalarText ?? "").isEmpty {
            return .failure(Refusal("\(attribute) is required"))
        }
        let id = node["id"]!.scalarText!
        let source = node["source"]!.scalarText!
        var occurredAt = receivedAt
        let time = node["time"].flatMap { $0.isScalar ? $0 : nil }
        if let time {
            guard let date = CollectorTime.parse(time) else { return .failure(Refusal("time must be an RFC 3339 time")) }
            occurredAt = date
        }
        let weight: Int
        switch readWeight(node["weight"]) {
        case .success(let value): weight = value
        case .failure(let refusal): return .failure(refusal)
        }
        let digest = SHA256.hash(data: Data((source + "\n" + id).utf8))
        let event = UsageEvent(
            id: "ce:" + Hex.encode(digest.prefix(20)), source: .cloudEvent, name: node["type"]!.scalarText!, occurredAt: occurredAt,
            timeFromSender: time != nil,
            subscription: nil, customer: nil, product: nil, endpoint: nil, method: nil, path: nil, status: nil,
            latencyMicroseconds: nil, requestBytes: nil, responseBytes: nil, billable: true, weight: weight, properties: node)
        return check(CollectedEvent(event: event, company: node["subject"]?.scalarText, subjectMayBeSubscription: true), receivedAt: receivedAt)
    }

    /// Why an item was refused.
    public struct Refusal: Error, Sendable, Equatable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    private typealias Shape = (UsageEvent.Source, String, String?, String?, Int?, String?)

    private static func read(
        _ node: ScannedJSON, receivedAt: Date, _ shape: (ScannedJSON) throws(Refusal) -> Shape
    ) -> Result<CollectedEvent, Refusal> {
        guard node.isObject else { return .failure(Refusal("must be a JSON object")) }
        let source: UsageEvent.Source, name: String, method: String?, path: String?, status: Int?, given: String?
        do {
            (source, name, method, path, status, given) = try shape(node)
        } catch {
            return .failure(error)
        }
        var occurredAt = receivedAt
        let time = node.position(of: "request", "time").flatMap { node.value(at: $0).isScalar ? $0 : nil }
        if let time {
            guard let date = CollectorTime.parse(at: time, in: node) else {
                return .failure(Refusal("request.time must be an ISO 8601 time"))
            }
            occurredAt = date
        }
        var latency: Int?
        if let answeredAt = node.position(of: "response", "time"), let answered = CollectorTime.parse(at: answeredAt, in: node),
           answered >= occurredAt {
            latency = Int((answered.timeIntervalSince(occurredAt) * 1_000_000).rounded())
        }
        let weight: Int
        switch readWeight(node.position(of: "weight").map(node.value(at:))) {
        case .success(let value): weight = value
        case .failure(let refusal): return .failure(refusal)
        }
        let id = given.map { $0.utf8.count > 128 ? "mo:" + Hex.encode(SHA256.hash(data: Data($0.utf8))) : $0 } ?? RandomID.timeOrdered("evt")
        let event = UsageEvent(
            id: id, source: source, name: name, occurredAt: occurredAt, timeFromSender: time != nil, subscription: nil, customer: nil, product: nil,
            endpoint: nil, method: method, path: path, status: status, latencyMicroseconds: latency, requestBytes: nil,
            responseBytes: nil, billable: true, weight: weight, properties: node)
        let subscription = node.scalarText(at: node.position(of: "subscription_id"))
            ?? node.scalarText(at: node.position(of: "metadata", "subscription_id"))
        return check(
            CollectedEvent(event: event, company: node.scalarText(at: node.position(of: "company_id")),
                           user: node.scalarText(at: node.position(of: "user_id")), subscription: subscription),
            receivedAt: receivedAt)
    }

    private static func readWeight(_ node: ScannedJSON?) -> Result<Int, Refusal> {
        guard let node, let text = node.scalarText else { return .success(1) }
        guard node.kind == .number, let weight = Int(text), weight >= 0 else {
            return .failure(Refusal("weight must be a whole number of at least 0"))
        }
        return .success(weight)
    }

    /// Refuses events too old or too far ahead.
    private static func check(_ collected: consuming CollectedEvent, receivedAt: Date) -> Result<CollectedEvent, Refusal> {
        let occurredAt = collected.event.occurredAt
        if occurredAt < receivedAt.addingTimeInterval(-oldest) {
            return .failure(Refusal("occurred more than 35 days ago"))
        }
        if occurredAt > receivedAt.addingTimeInterval(furthestAhead) {
            return .failure(Refusal("occurred more than 5 minutes in the future"))
        }
        return .success(collected)
    }

    /// Where the authority of an absolute URL starts (after `://`), if `uri` has one.
    private static func schemeEnd(_ uri: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        var rest = uri
        while let colon = rest.firstIndex(of: UInt8(ascii: ":")) {
            rest = rest[(colon + 1)...]
            if rest.starts(with: "//".utf8) { return colon + 3 }
        }
        return nil
    }

    /// The path of a `request.uri`: an absolute URL's path, or the text itself, without query.
    static func pathOf(_ uri: String) -> String {
        var uri = uri
        return uri.withUTF8 { bytes in
            var path = bytes[...]
            if let authority = schemeEnd(path) {
                // The authority ends at the path, the query or the fragment.
                let end = path[authority...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
                guard let end, path[end] == UInt8(ascii: "/") else { return "/" }
                path = path[end...]
            }
            if let end = path.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) { path = path[..<end] }
            return path.isEmpty ? "/" : String(decoding: path, as: UTF8.self)
        }
    }
}
