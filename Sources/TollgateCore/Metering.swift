import Crypto
import Foundation

/// One meter's running aggregate over one bucket of one subscription. Every field merges
/// associatively, so buckets add up to periods and batches add up to buckets.
public struct MeterAggregate: Sendable, Equatable {
    /// The sum of the weights of the events counted.
    public var count: Int64 = 0
    public var sum: MeterNumber = .zero
    public var max: MeterNumber?
    /// When the latest value was seen (microseconds since 1970), and the value.
    public var latestAt: Int64?
    public var latest: MeterNumber?

    public init(count: Int64 = 0, sum: MeterNumber = .zero, max: MeterNumber? = nil, latestAt: Int64? = nil, latest: MeterNumber? = nil) {
        self.count = count
        self.sum = sum
        self.max = max
        self.latestAt = latestAt
        self.latest = latest
    }

    public mutating func merge(_ other: MeterAggregate) {
        count += other.count
        sum = sum + other.sum
        if let value = other.max, max.map({ value > $0 }) ?? true { max = value }
        if let at = other.latestAt, latestAt.map({ at >= $0 }) ?? true {
            latestAt = at
            latest = other.latest
        }
    }
}

/// Microseconds since 1970, the unit of every stored time.
public enum Micros {
    public static func of(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
    public static func date(_ micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }
}

/// Aggregates to add to the store for a batch of new events.
public struct MeterDeltas: Sendable, Equatable {
    /// What an aggregate row is keyed by: meter, subscription, bucket start (microseconds).
    public struct Key: Hashable, Sendable {
        public var meter: String
        public var subscription: String
        public var bucket: Int64

        public init(meter: String, subscription: String, bucket: Int64) {
            self.meter = meter
            self.subscription = subscription
            self.bucket = bucket
        }
    }

    /// A distinct value a `unique_count` meter saw in a bucket.
    public struct Unique: Hashable, Sendable {
        public var key: Key
        public var value: String
    }

    public var aggregates: [Key: MeterAggregate] = [:]
    public var uniques: Set<Unique> = []

    public init() {}

    public var isEmpty: Bool { aggregates.isEmpty && uniques.isEmpty }
}

/// How events become meter values; pure, shared by ingestion, rebuilds and reports.
public enum Metering {
    /// Billable calls per endpoint are kept as aggregates of this pseudo-meter (`@` cannot start a meter id).
    public static let endpointPrefix = "@endpoint:"

    /// Longer distinct values are kept as their SHA-256, so that a row stays small.
    static let longestUniqueValue = 128

    /// Whether the event counts towards the meter (its value aside).
    public static func matches(_ meter: Meter, _ event: UsageEvent) -> Bool {
        guard event.billable, event.subscription != nil else { return false }
        switch meter.source {
        case .apiCalls:
            guard event.name == "api_calls", event.source == .gateway || event.source == .apiLog else { return false }
        case .event(let name):
            guard event.name == name, event.source == .action || event.source == .cloudEvent else { return false }
        }
        let filter = meter.filter
        if let wanted = filter.endpoint, wanted != event.endpoint { return false }
        if let wanted = filter.method, wanted != event.method { return false }
        if let wanted = filter.status {
            guard let status = event.status, wanted.matches(status) else { return false }
        }
        for (path, wanted) in filter.properties where event.propertyText(path) != wanted { return false }
        return true
    }

    /// The aggregates a batch of new events adds, per meter, subscription and bucket (with
    /// `endpoints`, also the billable calls per endpoint).
    public static func deltas(_ events: [UsageEvent], meters: [Meter], endpoints: Bool = true) -> MeterDeltas {
        var deltas = MeterDeltas()
        var run = AggregateRun(meters: meters)
        // Through a buffer pointer: an array's element passed on (or iterated) is a copy with
        // all its strings.
        events.withUnsafeBufferPointer { events in
            for position in events.indices {
                add(events[position], meters: meters, endpoints: endpoints, to: &run, flushingInto: &deltas)
            }
        }
        run.flush(into: &deltas)
        return deltas
    }

    private static func add(
        _ event: UsageEvent, meters: [Meter], endpoints: Bool, to run: inout AggregateRun, flushingInto deltas: inout MeterDeltas
    ) {
        guard let subscription = event.subscription, let bucket = event.bucket, event.billable else { return }
        let bucketMicros = Micros.of(bucket)
        if run.subscription != subscription || run.bucket != bucketMicros {
            run.flush(into: &deltas)
            run.subscription = subscription
            run.bucket = bucketMicros
        }
        if endpoints, event.name == "api_calls", let endpoint = event.endpoint {
            run.count(Int64(event.weight), for: endpoint)
        }
        for (index, meter) in meters.enumerated() where matches(meter, event) {
            switch meter.aggregation {
            case .count:
                run.add(MeterAggregate(count: Int64(event.weight)), to: index)
            case .uniqueCount:
                guard let property = meter.property, let text = event.propertyText(property) else { continue }
                let key = MeterDeltas.Key(meter: meter.id, subscription: subscription, bucket: bucketMicros)
                deltas.uniques.insert(MeterDeltas.Unique(key: key, value: uniqueValue(text)))
            case .sum, .max, .latest:
                guard let property = meter.property, let text = event.propertyText(property),
                      let number = MeterNumber(text) else { continue }
                var delta = MeterAggregate(count: Int64(event.weight))
                switch meter.aggregation {
                case .sum: delta.sum = number
                case .max: delta.max = number
                default:
                    delta.latestAt = Micros.of(event.occurredAt)
                    delta.latest = number
                }
                run.add(delta, to: index)
            }
        }
    }

    /// The aggregates of consecutive events of one subscription and bucket (a batch usually is
    /// one run), added up by meter position before they go into the keyed deltas once per run.
    /// Merging is associative, so the result is the same as adding event by event.
    private struct AggregateRun {
        let meters: [Meter]
        var subscription = ""
        var bucket: Int64 = 0
        var aggregates: [MeterAggregate?]
        /// Billable calls per endpoint: a few endpoints a run, found by comparing, not hashing.
        var endpoints: [(endpoint: String, calls: Int64)] = []

        init(meters: [Meter]) {
            self.meters = meters
            aggregates = Array(repeating: nil, count: meters.count)
        }

        mutating func count(_ calls: Int64, for endpoint: String) {
            if let index = endpoints.firstIndex(where: { $0.endpoint == endpoint }) {
                endpoints[index].calls += calls
            } else {
                endpoints.append((endpoint, calls))
            }
        }

        mutating func add(_ delta: MeterAggregate, to index: Int) {
            if aggregates[index] == nil { aggregates[index] = delta } else { aggregates[index]!.merge(delta) }
        }

        mutating func flush(into deltas: inout MeterDeltas) {
            for (endpoint, count) in endpoints {
                let key = MeterDeltas.Key(meter: endpointPrefix + endpoint, subscription: subscription, bucket: bucket)
                deltas.aggregates[key, default: MeterAggregate()].count += count
            }
            endpoints.removeAll(keepingCapacity: true)
            for index in aggregates.indices {
                guard let aggregate = aggregates[index] else { continue }
                let key = MeterDeltas.Key(meter: meters[index].id, subscription: subscription, bucket: bucket)
                deltas.aggregates[key, default: MeterAggregate()].merge(aggregate)
                aggregates[index] = nil
            }
        }
    }

    /// The text a distinct value is stored as.
    public static func uniqueValue(_ text: String) -> String {
        guard text.utf8.count > longestUniqueValue else { return text }
        return "sha256:" + Hex.encode(SHA256.hash(data: Data(text.utf8)))
    }

    /// A meter's value over a span from its bucket aggregates and its distinct values there.
    public static func value(of meter: Meter, aggregates: some Sequence<MeterAggregate>, distinctValues: Int) -> Amount {
        if meter.aggregation == .uniqueCount { return Amount(distinctValues) }
        var total = MeterAggregate()
        for aggregate in aggregates { total.merge(aggregate) }
        switch meter.aggregation {
        case .count: return Amount(Decimal(total.count))
        case .sum: return total.sum.amount
        case .max: return (total.max ?? .zero).amount
        case .latest: return (total.latest ?? .zero).amount
        case .uniqueCount: return Amount(distinctValues)
        }
    }
}
