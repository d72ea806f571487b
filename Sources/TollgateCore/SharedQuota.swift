import Foundation

/// One quota counter shared by every gateway node: a prepaid limit of one subscription's plan
/// (product-wide when `endpoint` is nil) in one window.
public struct QuotaCounter: Hashable, Sendable, CustomStringConvertible {
    public var subscription: String
    public var plan: String
    public var endpoint: String?
    public var window: QuotaWindow
    public var windowStart: Date

    public init(subscription: String, plan: String, endpoint: String?, window: QuotaWindow, windowStart: Date) {
        self.subscription = subscription
        self.plan = plan
        self.endpoint = endpoint
        self.window = window
        self.windowStart = windowStart
    }

    /// The counter a limit of `subscription`'s `plan` counts in.
    public init(subscription: String, plan: String, limit: AppliedLimit) {
        self.init(
            subscription: subscription, plan: plan, endpoint: limit.endpoint, window: limit.window,
            windowStart: limit.span.start)
    }

    /// The counter as one line of text (the payload of the nodes' notifications), and back.
    public var description: String {
        [subscription, plan, endpoint ?? "", window.rawValue, String(Micros.of(windowStart))]
            .joined(separator: "\t")
    }

    public init?(_ text: Substring) {
        let parts = text.split(separator: "\t", omittingEmptySubsequences: false)
        guard parts.count == 5, let window = QuotaWindow(rawValue: String(parts[3])), let start = Int64(parts[4]) else {
            return nil
        }
        self.init(
            subscription: String(parts[0]), plan: String(parts[1]), endpoint: parts[2].isEmpty ? nil : String(parts[2]),
            window: window, windowStart: Micros.date(start))
    }
}

/// One node's share of the quotas that several gateway nodes enforce together (DESIGN §3.3,
/// docs/quotas.md), as a value: no I/O, no clock of its own.
///
/// Each shared counter has a total in the database that can never pass the quota; a node takes
/// a lease of part of what is left (`held`) and admits calls against it in memory. A call passes
/// only if every counter that covers it has allowance here; otherwise `admit` names the counters
/// to lease, and the caller decides again once the leases are back. When a lease comes back
/// empty and no other node had any to hand back, the counter refuses until `refusedUntil`, so a
/// refused call costs no database round trip either.
public struct SharedQuotaBook: Sendable {
    /// What this node knows and holds of one counter.
    public struct Counter: Sendable, Equatable {
        public var quota: Int
        public var windowEnd: Date
        /// Calls this node may admit in all: its leases, less what it handed back.
        public var held = 0
        /// Calls admitted against `held` (in flight or answered), less those given back.
        public var admitted = 0
        /// What the other nodes held at this node's last lease: counted as used in the headers.
        public var othersGranted = 0
        /// A lease request is out.
        public var leasing = false
        /// No allowance anywhere: refuse without asking until then.
        public var refusedUntil: Date?
        /// This node has told the vendor that the counter is used up (`quota.exhausted`).
        public var exhaustionAnnounced = false

        public var unused: Int { max(0, held - admitted) }
        /// The calls of the window counted anywhere, as far as this node knows.
        public var used: Int { othersGranted + admitted }
    }

    /// The outcome of `admit`.
    public enum Decision: Sendable, Equatable {
        /// The call passes and is counted in every counter (`states` after it).
        case admitted([LimitState])
        /// The call is refused and counted nowhere.
        case refused(retryAfter: Int, [LimitState])
        /// Some counters have no allowance here: lease these (quota of each), then decide again.
        /// Counters already being leased are not named again; `waitFor` lists all that lack.
        case lease([QuotaCounter: Int], waitFor: [QuotaCounter])
    }

    public private(set) var counters: [QuotaCounter: Counter] = [:]
    /// How many calls one lease takes at the most (of a quota Q: Q/20, at least 1).
    public static func block(for quota: Int) -> Int { QuotaLease.block(for: quota) }

    public init() {}

    /// Checks one call against `limits` (each with its counter) at `date`, counting it in all of
    /// them or in none.
    public mutating func admit(_ limits: [(counter: QuotaCounter, limit: AppliedLimit)], at date: Date) -> Decision {
        var lacking: [QuotaCounter] = []
        var toLease: [QuotaCounter: Int] = [:]
        var refusedRetry: Int?
        for (counter, limit) in limits {
            var current = counters[counter] ?? Counter(quota: limit.quota, windowEnd: limit.span.end)
            current.quota = limit.quota
            if let until = current.refusedUntil, until <= date { current.refusedUntil = nil }
            if current.admitted < current.held {
                counters[counter] = current
                continue
            }
            if current.refusedUntil != nil {
                refusedRetry = max(refusedRetry ?? 1, LimitState(limit: limit, used: limit.quota).reset(at: date))
            } else {
                lacking.append(counter)
                if !current.leasing {
                    current.leasing = true
                    toLease[counter] = limit.quota
                }
            }
            counters[counter] = current
        }
        if let refusedRetry { return .refused(retryAfter: refusedRetry, states(limits)) }
        if !lacking.isEmpty { return .lease(toLease, waitFor: lacking) }
        for (counter, _) in limits { counters[counter]?.admitted += 1 }
        return .admitted(states(limits))
    }

    /// Where the limits stand, as far as this node knows (what other nodes hold counts as used).
    public func states(_ limits: [(counter: QuotaCounter, limit: AppliedLimit)]) -> [LimitState] {
        limits.map { counter, limit in LimitState(limit: limit, used: min(limit.quota, counters[counter]?.used ?? 0)) }
    }

    /// A lease came back: `amount` more calls for this node; `total` is what all nodes hold now.
    /// An empty lease makes the counter refuse until `refuseUntil`.
    public mutating func leased(_ counter: QuotaCounter, amount: Int, total: Int, refuseUntil: Date) {
        guard var current = counters[counter] else { return }
        current.leasing = false
        current.held += amount
        current.othersGranted = max(0, total - current.held)
        if amount == 0, current.unused == 0 { current.refusedUntil = min(refuseUntil, current.windowEnd) }
        counters[counter] = current
    }

    /// A lease request failed: the next call asks again.
    public mutating func leaseFailed(_ counter: QuotaCounter) {
        counters[counter]?.leasing = false
    }

    /// Takes back one call counted by `admit` (Tollgate answered it itself).
    public mutating func giveBack(_ counted: [QuotaCounter]) {
        for counter in counted where (counters[counter]?.admitted ?? 0) > 0 { counters[counter]?.admitted -= 1 }
    }

    /// The counters among `counters` whose exhaustion this node has not announced yet, now
    /// marked as announced: a refused call tells the vendor once per node and window, not once
    /// per refusal.
    public mutating func announce(_ counters: [QuotaCounter]) -> [QuotaCounter] {
        counters.filter { counter in
            guard var current = self.counters[counter], !current.exhaustionAnnounced else { return false }
            current.exhaustionAnnounced = true
            self.counters[counter] = current
            return true
        }
    }

    /// Another node asked for what this node holds unused: hands it all back (returns how much).
    public mutating func handBack(_ counter: QuotaCounter) -> Int {
        guard var current = counters[counter] else { return 0 }
        let unused = current.unused
        current.held -= unused
        counters[counter] = current
        return unused
    }

    /// Another node handed allowance back, or a counter changed: ask again instead of refusing.
    public mutating func allowanceReturned(_ counter: QuotaCounter) {
        counters[counter]?.refusedUntil = nil
    }

    /// Hands back everything unused (a graceful stop, or leases that may have lapsed).
    public mutating func handBackAll() -> [QuotaCounter: Int] {
        var returned: [QuotaCounter: Int] = [:]
        for counter in counters.keys {
            let amount = handBack(counter)
            if amount > 0 { returned[counter] = amount }
        }
        return returned
    }

    /// Forgets counters whose window ended before `date`.
    public mutating func forgetEnded(before date: Date) {
        counters = counters.filter { $0.value.windowEnd > date || $0.value.leasing }
    }
}
