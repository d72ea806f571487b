import Foundation
import Testing
import TollgateCore

/// Quota windows, the exact check-and-count step and the rate-limit headers.
@Suite("Quota windows")
struct QuotaWindowTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var window: QuotaWindow
        var at: String
        var start: String
        var end: String
        var testDescription: String { "\(window.rawValue) at \(at)" }
    }

    static let period = TimeSpan(start: date("2026-01-31T10:00:00Z"), end: date("2026-02-28T10:00:00Z"))

    static let cases: [Case] = [
        Case(window: .second, at: "2026-03-01T12:34:56.789Z", start: "2026-03-01T12:34:56Z", end: "2026-03-01T12:34:57Z"),
        Case(window: .minute, at: "2026-03-01T12:34:56Z", start: "2026-03-01T12:34:00Z", end: "2026-03-01T12:35:00Z"),
        Case(window: .hour, at: "2026-12-31T23:59:59Z", start: "2026-12-31T23:00:00Z", end: "2027-01-01T00:00:00Z"),
        Case(window: .day, at: "2028-02-28T18:00:00Z", start: "2028-02-28T00:00:00Z", end: "2028-02-29T00:00:00Z"),
        Case(window: .day, at: "2028-02-29T00:00:00Z", start: "2028-02-29T00:00:00Z", end: "2028-03-01T00:00:00Z"),
        Case(window: .month, at: "2026-01-31T23:59:59Z", start: "2026-01-01T00:00:00Z", end: "2026-02-01T00:00:00Z"),
        Case(window: .month, at: "2026-02-14T00:00:00Z", start: "2026-02-01T00:00:00Z", end: "2026-03-01T00:00:00Z"),
        Case(window: .month, at: "2028-02-14T00:00:00Z", start: "2028-02-01T00:00:00Z", end: "2028-03-01T00:00:00Z"),
        Case(window: .month, at: "2026-04-30T23:59:59Z", start: "2026-04-01T00:00:00Z", end: "2026-05-01T00:00:00Z"),
        Case(window: .month, at: "2026-12-31T23:59:59Z", start: "2026-12-01T00:00:00Z", end: "2027-01-01T00:00:00Z"),
        Case(window: .month, at: "2027-01-01T00:00:00Z", start: "2027-01-01T00:00:00Z", end: "2027-02-01T00:00:00Z"),
        Case(window: .year, at: "2026-12-31T23:59:59Z", start: "2026-01-01T00:00:00Z", end: "2027-01-01T00:00:00Z"),
        Case(window: .year, at: "2028-07-01T00:00:00Z", start: "2028-01-01T00:00:00Z", end: "2029-01-01T00:00:00Z"),
        Case(window: .billingPeriod, at: "2026-02-10T00:00:00Z", start: "2026-01-31T10:00:00Z", end: "2026-02-28T10:00:00Z"),
    ]

    @Test(arguments: cases)
    func windowsAreUTCCalendarUnits(_ check: Case) {
        let span = QuotaWindows.span(check.window, containing: Self.date(check.at), billingPeriod: Self.period)
        #expect(span.start == Self.date(check.start))
        #expect(span.end == Self.date(check.end))
    }

    @Test func billingPeriodWindowsAnchoredOnThe31stFollowTheSubscription() {
        let anchor = Self.date("2026-01-31T10:00:00Z")
        let expected = [
            ("2026-02-15T00:00:00Z", "2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z"),
            ("2026-03-15T00:00:00Z", "2026-02-28T10:00:00Z", "2026-03-31T10:00:00Z"),
            ("2026-04-15T00:00:00Z", "2026-03-31T10:00:00Z", "2026-04-30T10:00:00Z"),
        ]
        for (at, start, end) in expected {
            let period = BillingPeriods.period(containing: Self.date(at), unit: .month, anchor: anchor)
            let span = QuotaWindows.span(.billingPeriod, containing: Self.date(at), billingPeriod: period)
            #expect(span == TimeSpan(start: Self.date(start), end: Self.date(end)), "\(at)")
        }
    }

    static func date(_ text: String) -> Date {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text)) ?? .distantPast
    }
}

@Suite("Quota book")
struct QuotaBookTests {
    static let now = QuotaWindowTests.date("2026-11-21T20:00:30Z")
    static let minute = QuotaWindows.span(.minute, containing: now, billingPeriod: TimeSpan(start: now, end: now))
    static let month = QuotaWindows.span(.month, containing: now, billingPeriod: TimeSpan(start: now, end: now))

    @Test func exactlyTheQuotaPassesAndRefusalsCountNothing() {
        var book = QuotaBook()
        let limits = [AppliedLimit(endpoint: "create", window: .month, quota: 3, span: Self.month)]
        var admitted = 0
        for _ in 0..<10 {
            if case .admitted = book.admit(limits, at: Self.now) { admitted += 1 }
        }
        #expect(admitted == 3)
        #expect(book.used.values.reduce(0, +) == 3)
    }

    @Test func aCallPassesOnlyIfEveryLimitHasRoomAndThenCountsInAll() {
        var book = QuotaBook()
        let perMinute = AppliedLimit(endpoint: nil, window: .minute, quota: 2, span: Self.minute)
        let perMonth = AppliedLimit(endpoint: "create", window: .month, quota: 100, span: Self.month)
        #expect(book.admit([perMinute, perMonth], at: Self.now) == .admitted([
            LimitState(limit: perMinute, used: 1), LimitState(limit: perMonth, used: 1),
        ]))
        _ = book.admit([perMinute, perMonth], at: Self.now)
        guard case .refused(let retryAfter, let states) = book.admit([perMinute, perMonth], at: Self.now) else {
            Issue.record("the third call in the minute must be refused")
            return
        }
        #expect(retryAfter == 30)
        #expect(states.map(\.used) == [2, 2])
        // The monthly counter did not move with the refusal.
        #expect(book.used[QuotaBook.Key(endpoint: "create", window: .month, windowStart: Self.month.start)] == 2)
    }

    @Test func aNewWindowStartsFromZero() {
        var book = QuotaBook()
        let first = AppliedLimit(endpoint: nil, window: .minute, quota: 1, span: Self.minute)
        let nextMinute = Self.minute.end.addingTimeInterval(1)
        let second = AppliedLimit(
            endpoint: nil, window: .minute, quota: 1,
            span: QuotaWindows.span(.minute, containing: nextMinute, billingPeriod: Self.minute))
        #expect(book.admit([first], at: Self.now) == .admitted([LimitState(limit: first, used: 1)]))
        #expect(book.admit([first], at: Self.now) == .refused(retryAfter: 30, [LimitState(limit: first, used: 1)]))
        #expect(book.admit([second], at: nextMinute) == .admitted([LimitState(limit: second, used: 1)]))
    }

    @Test func limitsComeFromThePlansPrepaidPrices() throws {
        let plan = Plan(
            id: "p", product: "shop", name: "P", currency: "EUR", period: .month,
            prices: [.flat(amount: Amount(1)), .prepaid(PrepaidQuota(endpoint: "create", quota: 10, window: .day)),
                     .prepaid(PrepaidQuota(quota: 1000, window: .month))])
        let period = TimeSpan(start: Self.month.start, end: Self.month.end)
        #expect(AppliedLimit.covering(endpoint: "create", plan: plan, at: Self.now, billingPeriod: period).count == 2)
        #expect(AppliedLimit.covering(endpoint: "read", plan: plan, at: Self.now, billingPeriod: period).map(\.window) == [.month])
        #expect(AppliedLimit.covering(endpoint: nil, plan: plan, at: Self.now, billingPeriod: period).map(\.window) == [.month])
    }
}

@Suite("Quota headers")
struct QuotaHeaderTests {
    @Test func everyWindowAndTheTightestOne() {
        let now = QuotaBookTests.now
        let minute = LimitState(limit: AppliedLimit(endpoint: nil, window: .minute, quota: 60, span: QuotaBookTests.minute), used: 10)
        let month = LimitState(limit: AppliedLimit(endpoint: "create", window: .month, quota: 1000, span: QuotaBookTests.month), used: 992)
        let fields = QuotaHeaders.fields([month, minute], at: now)
        let headers = Self.dictionary(fields)
        #expect(headers["X-RateLimit-Limit-Minute"] == "60")
        #expect(headers["X-RateLimit-Remaining-Minute"] == "50")
        #expect(headers["X-RateLimit-Limit-Month"] == "1000")
        #expect(headers["X-RateLimit-Remaining-Month"] == "8")
        #expect(headers["RateLimit-Limit"] == "1000")
        #expect(headers["RateLimit-Remaining"] == "8")
        // From 2026-11-21T20:00:30Z to 2026-12-01T00:00:00Z.
        let untilDecember: Int = 9 * 86_400 + 3 * 3600 + 59 * 60 + 30
        #expect(headers["RateLimit-Reset"] == String(untilDecember))
        #expect(fields.count == 7)
    }

    @Test func aTieGoesToTheShorterWindow() {
        let now = QuotaBookTests.now
        let minute = LimitState(limit: AppliedLimit(endpoint: nil, window: .minute, quota: 5, span: QuotaBookTests.minute), used: 0)
        let month = LimitState(limit: AppliedLimit(endpoint: nil, window: .month, quota: 5, span: QuotaBookTests.month), used: 0)
        let headers = Self.dictionary(QuotaHeaders.fields([month, minute], at: now))
        #expect(headers["RateLimit-Reset"] == "30")
        #expect(QuotaHeaders.fields([], at: now).isEmpty)
    }

    /// Two limits of one window (an endpoint's and the plan's): the headers show the tighter;
    /// windows go from the shortest; every window's names follow `QuotaWindows.headerName`.
    @Test func theTighterOfOneWindowAndTheOrderOfWindows() {
        let now = QuotaBookTests.now
        let endpointMonth = LimitState(limit: AppliedLimit(endpoint: "create", window: .month, quota: 100, span: QuotaBookTests.month), used: 90)
        let planMonth = LimitState(limit: AppliedLimit(endpoint: nil, window: .month, quota: 1000, span: QuotaBookTests.month), used: 500)
        let minute = LimitState(limit: AppliedLimit(endpoint: nil, window: .minute, quota: 60, span: QuotaBookTests.minute), used: 30)
        let fields = QuotaHeaders.fields([planMonth, endpointMonth, minute], at: now)
        #expect(fields.map(\.name) == [
            "X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute", "X-RateLimit-Limit-Month", "X-RateLimit-Remaining-Month",
            "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
        ])
        #expect(fields.map(\.value).prefix(6) == ["60", "30", "100", "10", "100", "10"])
        for window in QuotaWindow.allCases {
            let limit = LimitState(limit: AppliedLimit(endpoint: nil, window: window, quota: 1, span: QuotaBookTests.month), used: 0)
            let names = QuotaHeaders.fields([limit], at: now).map(\.name)
            #expect(names.prefix(2) == ["X-RateLimit-Limit-\(QuotaWindows.headerName(window))", "X-RateLimit-Remaining-\(QuotaWindows.headerName(window))"])
        }
    }

    static func dictionary(_ fields: [(name: String, value: String)]) -> [String: String] {
        var headers: [String: String] = [:]
        for field in fields where headers[field.name] == nil { headers[field.name] = field.value }
        return headers
    }
}

/// A connection's kept limits (`RecentQuotaLimits`) are always the limits worked out afresh.
@Suite("Recent quota limits")
struct RecentQuotaLimitsTests {
    /// A walk of calls through time (steps from a fraction of a second to days, so that every
    /// kind of window is crossed), changing endpoint, subscription start and plan on the way:
    /// at every call the kept limits equal `AppliedLimit.covering` in the call's billing period.
    @Test
    func keptLimitsAreTheLimitsWorkedOutAfresh() {
        let quotas: [PrepaidQuota] = [
            PrepaidQuota(quota: 5, window: .second), PrepaidQuota(endpoint: "search", quota: 100, window: .minute),
            PrepaidQuota(quota: 1_000, window: .hour), PrepaidQuota(endpoint: "export", quota: 9, window: .day),
            PrepaidQuota(quota: 50_000, window: .month), PrepaidQuota(quota: 1_000_000, window: .billingPeriod),
        ]
        let plans = [
            Plan(id: "p", product: "api", name: "P", currency: "EUR", period: .month, prices: quotas.map { .prepaid($0) }),
            // The same plan with one quota changed, then billed weekly.
            Plan(id: "p", product: "api", name: "P", currency: "EUR", period: .month,
                 prices: quotas.map { .prepaid($0.window == .hour ? PrepaidQuota(quota: 2_000, window: .hour) : $0) }),
            Plan(id: "p", product: "api", name: "P", currency: "EUR", period: .week, prices: quotas.map { .prepaid($0) }),
        ]
        let anchors = [QuotaWindowTests.date("2026-01-31T10:00:00Z"), QuotaWindowTests.date("2026-03-15T23:59:59Z")]
        let endpoints: [String?] = ["search", "export", nil]
        let steps: [TimeInterval] = [0, 0.25, 0.5, 1, 59, 61, 3_599, 3_600, 86_399, 86_400, 2_678_400]
        var recent = RecentQuotaLimits()
        var random = SplitMix(seed: 7)
        var date = QuotaWindowTests.date("2026-02-27T23:58:30Z")
        var plan = plans[0], anchor = anchors[0], endpoint = endpoints[0]
        for _ in 0..<3_000 {
            date += steps[random.next(below: steps.count)]
            switch random.next(below: 20) {
            case 0: plan = plans[random.next(below: plans.count)]
            case 1: anchor = anchors[random.next(below: anchors.count)]
            case 2, 3: endpoint = endpoints[random.next(below: endpoints.count)]
            default: break
            }
            let period = BillingPeriods.period(containing: date, unit: plan.period, anchor: anchor)
            let expected = AppliedLimit.covering(endpoint: endpoint, plan: plan, at: date, billingPeriod: period)
            let found = recent.limits(plan: plan, anchor: anchor, endpoint: endpoint, at: date)
            #expect(found == expected, "\(date) \(endpoint ?? "-") \(plan.period)")
        }
    }
}

/// A small deterministic generator for the walk.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(below bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
