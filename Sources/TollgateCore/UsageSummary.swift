import Foundation

/// The stored aggregates of one subscription over a range, as the store hands them to reports
/// and rating (which never scan raw events).
public struct MeterRows: Sendable, Equatable {
    /// One bucket's aggregate of one meter (or of the `Metering.endpointPrefix` pseudo-meters).
    public struct Aggregate: Sendable, Equatable {
        public var meter: String
        /// The bucket start, in microseconds.
        public var bucket: Int64
        public var aggregate: MeterAggregate

        public init(meter: String, bucket: Int64, aggregate: MeterAggregate) {
            self.meter = meter
            self.bucket = bucket
            self.aggregate = aggregate
        }
    }

    /// A distinct value of a `unique_count` meter in one bucket.
    public struct Unique: Sendable, Equatable {
        public var meter: String
        public var bucket: Int64
        public var value: String

        public init(meter: String, bucket: Int64, value: String) {
            self.meter = meter
            self.bucket = bucket
            self.value = value
        }
    }

    public var aggregates: [Aggregate]
    public var uniques: [Unique]

    public init(aggregates: [Aggregate] = [], uniques: [Unique] = []) {
        self.aggregates = aggregates
        self.uniques = uniques
    }
}

/// The step of a usage series.
public enum Granularity: String, Sendable, CaseIterable {
    case hour, day, month

    /// The start of the step that contains `date` (UTC).
    public func floor(_ date: Date) -> Date {
        let civil = CivilTime(date)
        switch self {
        case .hour:
            return Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
        case .day:
            return CivilTime(year: civil.year, month: civil.month, day: civil.day).date
        case .month:
            return CivilTime(year: civil.year, month: civil.month, day: 1).date
        }
    }

    /// The start of the next step after the one starting at `start`.
    public func next(_ start: Date) -> Date {
        switch self {
        case .hour: return start.addingTimeInterval(3600)
        case .day: return start.addingTimeInterval(86_400)
        case .month: return CivilTime(start).addingMonths(1, anchorDay: 1).date
        }
    }
}

/// Billable calls per endpoint and every meter's value over a span.
public struct UsageSummary: Sendable, Equatable {
    public var span: TimeSpan
    /// Billable calls per endpoint identifier.
    public var endpoints: [String: Int]
    /// Meter values.
    public var meters: [String: Amount]

    /// Combines the buckets that start inside `span` (buckets are cut at hours and period
    /// boundaries, so a billing period is exact). Every listed endpoint and meter appears, with
    /// zero when unused.
    public static func summarize(_ rows: MeterRows, span: TimeSpan, endpoints: [String], meters: [Meter]) -> UsageSummary {
        let start = Micros.of(span.start)
        let end = Micros.of(span.end)
        var perEndpoint = Dictionary(endpoints.map { ($0, 0) }, uniquingKeysWith: { a, _ in a })
        var perMeter: [String: [MeterAggregate]] = [:]
        for row in rows.aggregates where row.bucket >= start && row.bucket < end {
            if row.meter.hasPrefix(Metering.endpointPrefix) {
                perEndpoint[String(row.meter.dropFirst(Metering.endpointPrefix.count)), default: 0] += Int(row.aggregate.count)
            } else {
                perMeter[row.meter, default: []].append(row.aggregate)
            }
        }
        var distinct: [String: Set<String>] = [:]
        for row in rows.uniques where row.bucket >= start && row.bucket < end {
            distinct[row.meter, default: []].insert(row.value)
        }
        var values: [String: Amount] = [:]
        for meter in meters {
            values[meter.id] = Metering.value(
                of: meter, aggregates: perMeter[meter.id] ?? [], distinctValues: distinct[meter.id]?.count ?? 0)
        }
        return UsageSummary(span: span, endpoints: perEndpoint, meters: values)
    }

    /// One summary per step of `granularity` covering `span`.
    public static func series(
        _ rows: MeterRows, span: TimeSpan, granularity: Granularity, endpoints: [String], meters: [Meter]
    ) -> [UsageSummary] {
        var result: [UsageSummary] = []
        var start = span.start
        while start < span.end {
            let end = min(granularity.next(granularity.floor(start)), span.end)
            result.append(summarize(rows, span: TimeSpan(start: start, end: end), endpoints: endpoints, meters: meters))
            start = end
        }
        return result
    }
}
