import Foundation

/// The calendar arithmetic of quota windows: UTC calendar units, or the billing period.
public enum QuotaWindows {
    /// The window of kind `window` that contains `date`. `billingPeriod` is the subscription's
    /// current period, used by `.billingPeriod`.
    public static func span(_ window: QuotaWindow, containing date: Date, billingPeriod: TimeSpan) -> TimeSpan {
        let civil = CivilTime(date)
        switch window {
        case .second:
            let start = (date.timeIntervalSince1970).rounded(.down)
            return TimeSpan(start: Date(timeIntervalSince1970: start), end: Date(timeIntervalSince1970: start + 1))
        case .minute:
            let start = (date.timeIntervalSince1970 / 60).rounded(.down) * 60
            return TimeSpan(start: Date(timeIntervalSince1970: start), end: Date(timeIntervalSince1970: start + 60))
        case .hour:
            let start = Granularity.hour.floor(date)
            return TimeSpan(start: start, end: Granularity.hour.next(start))
        case .day:
            let start = Granularity.day.floor(date)
            return TimeSpan(start: start, end: Granularity.day.next(start))
        case .month:
            let start = Granularity.month.floor(date)
            return TimeSpan(start: start, end: Granularity.month.next(start))
        case .year:
            let start = CivilTime(year: civil.year, month: 1, day: 1).date
            return TimeSpan(start: start, end: CivilTime(year: civil.year + 1, month: 1, day: 1).date)
        case .billingPeriod:
            return billingPeriod
        }
    }

    /// The header suffix of a window: `Second` … `Year`, `BillingPeriod`.
    public static func headerName(_ window: QuotaWindow) -> String {
        switch window {
        case .second: "Second"
        case .minute: "Minute"
        case .hour: "Hour"
        case .day: "Day"
        case .month: "Month"
        case .year: "Year"
        case .billingPeriod: "BillingPeriod"
        }
    }

    /// Windows from the shortest to the longest (ties in the headers go to the shorter one).
    static func order(_ window: QuotaWindow) -> Int {
        switch window {
        case .second: 0
        case .minute: 1
        case .hour: 2
        case .day: 3
        case .billingPeriod: 4
        case .month: 5
        case .year: 6
        }
    }
}

/// One limit as it applies to one call: which counter, how many calls, until when.
public struct AppliedLimit: Sendable, Equatable {
    public var endpoint: String?
    public var window: QuotaWindow
    public var quota: Int
    public var span: TimeSpan

    public init(endpoint: String?, window: QuotaWindow, quota: Int, span: TimeSpan) {
        self.endpoint = endpoint
        self.window = window
        self.quota = quota
        self.span = span
    }

    /// The prepaid quotas of a plan that cover a call to `endpoint` (nil: an unlisted endpoint,
    /// covered only by product-wide quotas), in their windows around `date`.
    public static func covering(
        endpoint: String?, plan: Plan, at date: Date, billingPeriod: TimeSpan
    ) -> [AppliedLimit] {
        all(plan: plan, at: date, billingPeriod: billingPeriod).filter { limit in
            limit.endpoint == nil || limit.endpoint == endpoint
        }
    }

    /// Every prepaid quota of a plan, in its window around `date`.
    public static func all(plan: Plan, at date: Date, billingPeriod: TimeSpan) -> [AppliedLimit] {
        plan.prepaidQuotas.map { quota in
            AppliedLimit(
                endpoint: quota.endpoint, window: quota.window, quota: quota.quota,
                span: QuotaWindows.span(quota.window, containing: date, billingPeriod: billingPeriod))
        }
    }
}

/// The limits of the last call's plan and endpoint, kept while every window around them
/// lasts: a connection's calls (most often one consumer's) find their limits without working
/// out each window again. A plan whose prices or period changed, another subscription start
/// or endpoint, or a time outside the windows works them out anew.
public struct RecentQuotaLimits: Sendable {
    private var prices: [Price] = []
    private var period: BillingPeriodUnit?
    private var anchor: Date?
    private var endpoint: String?
    private var valid: Range<Date>?
    private var limits: [AppliedLimit] = []

    public init() {}

    /// The prepaid quotas of `plan` that cover a call to `endpoint` at `date`, for a
    /// subscription started at `anchor` (as `AppliedLimit.covering` in its billing period).
    public mutating func limits(plan: Plan, anchor: Date, endpoint: String?, at date: Date) -> [AppliedLimit] {
        if let valid, valid.contains(date), self.anchor == anchor, self.endpoint == endpoint, period == plan.period,
            prices == plan.prices
        {
            return limits
        }
        let billingPeriod = BillingPeriods.period(containing: date, unit: plan.period, anchor: anchor)
        limits = AppliedLimit.covering(endpoint: endpoint, plan: plan, at: date, billingPeriod: billingPeriod)
        // Valid while the billing period and every window found last (the others do not count).
        var start = billingPeriod.start
        var end = billingPeriod.end
        for limit in limits {
            start = max(start, limit.span.start)
            end = min(end, limit.span.end)
        }
        prices = plan.prices
        period = plan.period
        self.anchor = anchor
        self.endpoint = endpoint
        valid = start < end ? start..<end : nil
        return limits
    }
}

/// Where a limit stands after a call was decided.
public struct LimitState: Sendable, Equatable {
    public var limit: AppliedLimit
    public var used: Int

    public init(limit: AppliedLimit, used: Int) {
        self.limit = limit
        self.used = used
    }

    public var remaining: Int { max(0, limit.quota - used) }
    /// Whole seconds until the window ends (at least 1 while it lasts).
    public func reset(at date: Date) -> Int {
        max(1, Int(limit.span.end.timeIntervalSince(date).rounded(.up)))
    }
}

/// The outcome of checking a call against its limits.
public enum QuotaDecision: Sendable, Equatable {
    /// The call passes and has been counted in every limit.
    case admitted([LimitState])
    /// The call is refused and counted nowhere; `retryAfter` seconds until the blocking window ends.
    case refused(retryAfter: Int, [LimitState])
}

/// Exact quota counters of one subscription, as a value: `admit` checks every limit and
/// increments all of them in one step, or none. The gateway keeps one per subscription behind a
/// lock, so that concurrent calls never overshoot; a window's counter starts at zero when the
/// window starts.
public struct QuotaBook: Sendable, Equatable {
    /// A counter: the limit's endpoint (nil for product-wide), its window and the window's start.
    public struct Key: Hashable, Sendable {
        public var endpoint: String?
        public var window: QuotaWindow
        public var windowStart: Date

        public init(endpoint: String?, window: QuotaWindow, windowStart: Date) {
            self.endpoint = endpoint
            self.window = window
            self.windowStart = windowStart
        }
    }

    public private(set) var used: [Key: Int] = [:]

    public init(used: [Key: Int] = [:]) {
        self.used = used
    }

    /// The counter a limit counts in.
    public static func key(_ limit: AppliedLimit) -> Key {
        Key(endpoint: limit.endpoint, window: limit.window, windowStart: limit.span.start)
    }

    /// Where the limits stand, without counting a call.
    public func states(_ limits: [AppliedLimit]) -> [LimitState] {
        limits.map { LimitState(limit: $0, used: used[Self.key($0), default: 0]) }
    }

    /// Checks and counts one call at `date`. Counters of windows that the limits have left
    /// behind are forgotten.
    public mutating func admit(_ limits: [AppliedLimit], at date: Date) -> QuotaDecision {
        for limit in limits where used.keys.contains(where: {
            $0.endpoint == limit.endpoint && $0.window == limit.window && $0.windowStart < limit.span.start
        }) {
            used = used.filter {
                !($0.key.endpoint == limit.endpoint && $0.key.window == limit.window && $0.key.windowStart < limit.span.start)
            }
        }
        let before = limits.map { LimitState(limit: $0, used: used[Self.key($0), default: 0]) }
        let blocking = before.filter { $0.used >= $0.limit.quota }
        if !blocking.isEmpty {
            let retryAfter = blocking.map { $0.reset(at: date) }.max() ?? 1
            return .refused(retryAfter: retryAfter, before)
        }
        for limit in limits { used[Self.key(limit), default: 0] += 1 }
        return .admitted(before.map { LimitState(limit: $0.limit, used: $0.used + 1) })
    }

    /// Takes back one call counted by `admit` with these limits (Tollgate answered it itself).
    /// A counter whose window has since been forgotten is left alone.
    public mutating func giveBack(_ limits: [AppliedLimit]) {
        for limit in limits {
            let key = Self.key(limit)
            if let count = used[key], count > 0 { used[key] = count - 1 }
        }
    }
}

/// The rate-limit headers of a decided call (DESIGN §3.3).
public enum QuotaHeaders {
    /// `X-RateLimit-Limit-<Window>` and `X-RateLimit-Remaining-<Window>` for each window (the
    /// tightest limit when several share one), then `RateLimit-Limit`, `RateLimit-Remaining` and
    /// `RateLimit-Reset` for the tightest window: the least remaining, a tie going to the shorter.
    public static func fields(_ states: [LimitState], at date: Date) -> [(name: String, value: String)] {
        guard let first = states.first else { return [] }
        // The tightest limit over all windows, and the tightest of each window (few: found by
        // comparing). Called for every call with a quota: no sorting, no set, names as literals.
        var tightest = first
        var byWindow: [LimitState] = []
        for state in states {
            if tighter(state, than: tightest) { tightest = state }
            if let index = byWindow.firstIndex(where: { $0.limit.window == state.limit.window }) {
                if tighter(state, than: byWindow[index]) { byWindow[index] = state }
            } else {
                byWindow.append(state)
            }
        }
        if byWindow.count > 1 { byWindow.sort { QuotaWindows.order($0.limit.window) < QuotaWindows.order($1.limit.window) } }
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(2 * byWindow.count + 3)
        for state in byWindow {
            let names = headerNames(state.limit.window)
            fields.append((names.limit, String(state.limit.quota)))
            fields.append((names.remaining, String(state.remaining)))
        }
        fields.append(("RateLimit-Limit", String(tightest.limit.quota)))
        fields.append(("RateLimit-Remaining", String(tightest.remaining)))
        fields.append(("RateLimit-Reset", String(tightest.reset(at: date))))
        return fields
    }

    /// `X-RateLimit-Limit-<Window>` and `X-RateLimit-Remaining-<Window>` (`QuotaWindows.headerName`).
    static func headerNames(_ window: QuotaWindow) -> (limit: String, remaining: String) {
        namesByOrder[QuotaWindows.order(window)]
    }

    /// The two header names of every window, at its `QuotaWindows.order`: made once, not per call.
    private static let namesByOrder: [(limit: String, remaining: String)] = {
        var names = Array(repeating: (limit: "", remaining: ""), count: QuotaWindow.allCases.count)
        for window in QuotaWindow.allCases {
            let name = QuotaWindows.headerName(window)
            names[QuotaWindows.order(window)] = ("X-RateLimit-Limit-\(name)", "X-RateLimit-Remaining-\(name)")
        }
        return names
    }()

    private static func tighter(_ lhs: LimitState, than rhs: LimitState) -> Bool {
        if lhs.remaining != rhs.remaining { return lhs.remaining < rhs.remaining }
        return QuotaWindows.order(lhs.limit.window) < QuotaWindows.order(rhs.limit.window)
    }
}

/// How much of a quota counter is durably taken: after a crash, counters restart at their lease,
/// so a call that was admitted is never granted again (a few unused ones may be refused).
public struct QuotaLease: Sendable, Equatable {
    public var subscription: String
    public var plan: String
    public var endpoint: String?
    public var window: QuotaWindow
    public var windowStart: Date
    public var leased: Int

    public init(subscription: String, plan: String, endpoint: String?, window: QuotaWindow, windowStart: Date, leased: Int) {
        self.subscription = subscription
        self.plan = plan
        self.endpoint = endpoint
        self.window = window
        self.windowStart = windowStart
        self.leased = leased
    }

    /// Whether counters of this window are worth keeping across restarts (an hour or longer).
    public static func isDurable(_ window: QuotaWindow) -> Bool {
        window != .second && window != .minute
    }

    /// How many calls one lease takes ahead: a twentieth of the quota, at least one.
    public static func block(for quota: Int) -> Int {
        max(1, quota / 20)
    }
}
