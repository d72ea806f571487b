import Foundation

/// One unit of usage as stored in the ledger: a proxied call, an API log, an action or a CloudEvent.
public struct UsageEvent: Sendable {
    /// Where the event came from.
    public enum Source: String, Sendable {
        case gateway
        case apiLog = "api_log"
        case action
        case cloudEvent = "cloudevent"
    }

    /// What identifies an event in the ledger: its id and, when its sender stamped a time on it,
    /// that time (microseconds; 0 when the sender gave none). A second event with the same key
    /// is a duplicate. A retry carries both unchanged, and keying by time keeps the ledger's
    /// index growing at one end, whatever the ids (docs/metering.md, "Duplicates").
    public struct Key: Hashable, Sendable {
        public var id: String
        public var time: Int64

        public init(id: String, time: Int64) {
            self.id = id
            self.time = time
        }
    }

    /// The sender's id of the event (or one Tollgate made); with the sender's time, its `key`.
    public var id: String
    public var source: Source
    /// `api_calls` for calls, the action name or CloudEvent type otherwise.
    public var name: String
    public var occurredAt: Date
    /// Whether `occurredAt` is the time the sender stamped on the event (part of the key; for
    /// the gateway's calls, the gateway's own) rather than when the event arrived.
    public var timeFromSender: Bool
    public var subscription: String?
    public var customer: String?
    public var product: String?
    /// The endpoint identifier the call matched, if any.
    public var endpoint: String?
    public var method: String?
    public var path: String?
    public var status: Int?
    public var latencyMicroseconds: Int?
    public var requestBytes: Int?
    public var responseBytes: Int?
    /// Whether the event may be billed (Tollgate's own refusals are not).
    public var billable: Bool
    /// How much the event counts: a `count` meter sums weights (Moesif's `weight`).
    public var weight: Int
    /// The event as it arrived (collector and CloudEvents), for meters on its properties; the
    /// ledger stores its text (without insignificant whitespace).
    public var properties: ScannedJSON?
    /// The start of the aggregate bucket the event falls in (see `UsageBuckets`); nil for events
    /// that no subscription owns.
    public var bucket: Date?

    // Inlinable: built where it is called, the event is not copied from the initializer's frame.
    @inlinable
    public init(
        id: String, source: Source, name: String = "api_calls", occurredAt: Date, timeFromSender: Bool,
        subscription: String?, customer: String?,
        product: String?, endpoint: String?, method: String?, path: String?, status: Int?, latencyMicroseconds: Int?,
        requestBytes: Int?, responseBytes: Int?, billable: Bool, weight: Int = 1, properties: ScannedJSON? = nil,
        bucket: Date? = nil
    ) {
        self.id = id
        self.source = source
        self.name = name
        self.occurredAt = occurredAt
        self.timeFromSender = timeFromSender
        self.subscription = subscription
        self.customer = customer
        self.product = product
        self.endpoint = endpoint
        self.method = method
        self.path = path
        self.status = status
        self.latencyMicroseconds = latencyMicroseconds
        self.requestBytes = requestBytes
        self.responseBytes = responseBytes
        self.billable = billable
        self.weight = weight
        self.properties = properties
        self.bucket = bucket
    }

    public var key: Key { Key(id: id, time: timeFromSender ? Micros.of(occurredAt) : 0) }

    /// The scalar text at a meter's dotted property path: the event as it arrived, or for the
    /// gateway's own calls `response.status`, `request.bytes`, `response.bytes`, `latency_ms`.
    public func propertyText(_ path: String) -> String? {
        if let properties { return properties.position(atPath: path).flatMap(properties.scalarText(at:)) }
        switch path {
        case "response.status": return status.map(String.init)
        case "request.bytes": return requestBytes.map(String.init)
        case "response.bytes": return responseBytes.map(String.init)
        case "latency_ms": return latencyMicroseconds.map { MeterNumber(units: 0, nanos: Int64($0) * 1_000_000).description }
        case "method", "request.verb": return method
        case "path": return self.path
        default: return nil
        }
    }
}

/// Where aggregates are cut: at each UTC hour and at each of the subscription's period
/// boundaries, so that every billing period is an exact union of buckets.
public enum UsageBuckets {
    /// The bucket of an event at `date` whose billing period started at `periodStart` (≤ `date`).
    public static func start(of date: Date, periodStart: Date) -> Date {
        max(Granularity.hour.floor(date), periodStart)
    }
}

extension UsageEvent {
    /// The most bytes of a path an event keeps: enough for any endpoint, and a bound on what
    /// one request can make the ledger store.
    public static let maxStoredPath = 512

    /// A normalized path as events store it: without `;` parameters (they never change the
    /// endpoint, see `RequestPath.withoutParameters`) and cut to `maxStoredPath` bytes at a
    /// character boundary.
    public static func meteredPath(_ path: String) -> String {
        let bare = path.utf8.contains(UInt8(ascii: ";")) ? String(RequestPath.withoutParameters(path[...])) : path
        guard bare.utf8.count > maxStoredPath else { return bare }
        var kept = ""
        var bytes = 0
        for scalar in bare.unicodeScalars {
            bytes += UTF8.width(scalar)
            if bytes > maxStoredPath { break }
            kept.unicodeScalars.append(scalar)
        }
        return kept
    }
}
