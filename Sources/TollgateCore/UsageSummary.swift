import Foundation

/// Calls of one subscription summed per hour, endpoint, method and status (how the store
/// hands usage to rating and reports, so they never scan raw events).
public struct CallCount: Sendable, Equatable {
    /// The start of the hour.
    public var hour: Date
    public var endpoint: String?
    public var method: String
    public var status: Int
    public var billable: Bool
    /// The sum of the events' weights.
    public var count: Int

    public init(hour: Date, endpoint: String?, method: String, status: Int, billable: Bool, count: Int) {
        self.hour = hour
        self.endpoint = endpoint
        self.method = method
        self.status = status
        self.billable = billable
        self.count = count
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

/// Billable calls per endpoint and the values of call-counting meters over a span.
public struct UsageSummary: Sendable, Equatable {
    public var span: TimeSpan
    /// Billable calls per endpoint identifier.
    public var endpoints: [String: Int]
    /// Meter values.
    public var meters: [String: Amount]

    /// Whether a meter can be computed from call counts: `count` over `api_calls`, filtered by
    /// endpoint, method and status only.
    public static func isCallCounter(_ meter: Meter) -> Bool {
        meter.source == .apiCalls && meter.aggregation == .count && meter.filter.properties.isEmpty
    }

    /// Sums the counts whose hour overlaps `span` (the store has already cut the counts to the
    /// exact range asked for, so only the hour is left to place). Every listed endpoint and
    /// call-counting meter appears, with zero when unused. Only billable calls count.
    public static func summarize(
        _ counts: [CallCount], span: TimeSpan, endpoints: [String], meters: [Meter]
    ) -> UsageSummary {
        var perEndpoint = Dictionary(endpoints.map { ($0, 0) }, uniquingKeysWith: { a, _ in a })
        let counters = meters.filter(isCallCounter)
        var perMeter = Dictionary(counters.map { ($0.id, 0) }, uniquingKeysWith: { a, _ in a })
        for count in counts where count.billable && count.hour < span.end && count.hour.addingTimeInterval(3600) > span.start {
            if let endpoint = count.endpoint { perEndpoint[endpoint, default: 0] += count.count }
            for meter in counters where meter.filter.matches(endpoint: count.endpoint, method: count.method, status: count.status) {
                perMeter[meter.id, default: 0] += count.count
            }
        }
        return UsageSummary(span: span, endpoints: perEndpoint, meters: perMeter.mapValues { Amount($0) })
    }

    /// One summary per step of `granularity` covering `span`.
    public static func series(
        _ counts: [CallCount], span: TimeSpan, granularity: Granularity, endpoints: [String], meters: [Meter]
    ) -> [UsageSummary] {
        var result: [UsageSummary] = []
        var start = span.start
        while start < span.end {
            let end = min(granularity.next(granularity.floor(start)), span.end)
            result.append(summarize(counts, span: TimeSpan(start: start, end: end), endpoints: endpoints, meters: meters))
            start = end
        }
        return result
    }
}
