import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TollgateCore
import TollgateStore

/// Where a node that shares its quotas with other nodes gets its leases (`SharedQuotas`).
public protocol QuotaLeaseSource: Sendable {
    /// Takes a lease of `counter` for this node (asking the other nodes to hand back what they
    /// hold unused when nothing is left), and tells the ledger how long its leases are valid.
    func lease(_ counter: QuotaCounter, quota: Int, windowEnd: Date) async throws -> QuotaGrant
    /// Hands calls that this node held unused back to their counters (leases that may have lapsed).
    func handBack(_ unused: [QuotaCounter: Int])
}

/// The gateway's quota counters, checked and counted in one step under a lock, so that with
/// quota Q exactly Q concurrent calls pass, without a database round trip per call.
///
/// Alone on SQLite (`sharing` nil): one `QuotaBook` per subscription and plan. Counters of
/// windows of an hour or more are made durable by leases taken ahead in blocks: a call waits for
/// a database write only when its counter passes the lease, about once every twentieth of the
/// quota. After a crash the counters restart at their leases (a few calls may be refused, none
/// granted twice); a graceful shutdown settles the leases to the exact counts.
///
/// Shared on PostgreSQL (`sharing` set): every window's counter is shared by all gateway nodes
/// through a `SharedQuotaBook`; a call waits for a lease only when this node's allowance of a
/// counter runs out (docs/quotas.md).
public final class QuotaLedger: Sendable {
    struct BookKey: Hashable {
        var subscription: String
        var plan: String
    }

    struct LeaseKey: Hashable {
        var book: BookKey
        var counter: QuotaBook.Key
    }

    struct LeaseState {
        var durable = 0
        var requested = 0
        var pending: EventLoopFuture<Void>?
    }

    struct State {
        var books: [BookKey: QuotaBook] = [:]
        var leases: [LeaseKey: LeaseState] = [:]
        /// Shared mode: this node's part of every shared counter.
        var shared = SharedQuotaBook()
        /// Shared mode: leases being taken, completed once each is applied to `shared`.
        var leasing: [QuotaCounter: EventLoopFuture<Void>] = [:]
        /// Shared mode: until when this node's leases are surely its own (its time-out renewed).
        var leasesValidUntil = Date.distantPast
    }

    /// What the ledger decided about one call.
    public enum Admission: Sendable {
        /// No prepaid price covers the call.
        case notCovered
        /// Over a limit: refused, counted nowhere.
        case refused(retryAfter: Int, [LimitState])
        /// Counted; forward once `wait` (a lease being written) succeeds, if there is one.
        /// `exhausted` are the limits this very call used up; `counted` gives the call back.
        case admitted([LimitState], wait: EventLoopFuture<Void>?, exhausted: [AppliedLimit], counted: Counted)
        /// Shared quotas: this node is taking a lease; the decision follows, `admitted` (with no
        /// `wait`) or `refused`. The future fails when no lease could be taken (database down).
        case pending(EventLoopFuture<Admission>)
    }

    /// Where one admitted call was counted, so that it can be given back.
    public struct Counted: Sendable {
        let book: BookKey
        let limits: [AppliedLimit]
        /// The shared counters that counted the call (shared mode), for its usage commit.
        public let shared: [QuotaCounter]
    }

    private let state = NIOLockedValueBox(State())
    private let recorder: UsageRecorder
    private let sharing: (any QuotaLeaseSource)?
    private let now: @Sendable () -> Date

    /// A ledger alone (`sharing` nil) or sharing its counters with other nodes through `sharing`.
    public init(recorder: UsageRecorder, sharing: (any QuotaLeaseSource)? = nil, now: @escaping @Sendable () -> Date = Date.init) {
        self.recorder = recorder
        self.sharing = sharing
        self.now = now
    }

    /// Whether counters are shared with other nodes.
    public var isShared: Bool { sharing != nil }

    /// The limits of `plan` that cover a call to `endpoint` at `date`.
    public static func limits(consumer: Consumer, plan: Plan, endpoint: String?, at date: Date) -> [AppliedLimit] {
        guard !plan.prepaidQuotas.isEmpty else { return [] }
        let period = BillingPeriods.period(containing: date, unit: plan.period, anchor: consumer.startedAt)
        return AppliedLimit.covering(endpoint: endpoint, plan: plan, at: date, billingPeriod: period)
    }

    /// Checks and counts one call.
    public func admit(consumer: Consumer, plan: Plan, endpoint: String?, at date: Date, eventLoop: any EventLoop) -> Admission {
        admit(Self.limits(consumer: consumer, plan: plan, endpoint: endpoint, at: date), consumer: consumer, plan: plan,
              endpoint: endpoint, at: date, eventLoop: eventLoop)
    }

    /// Checks and counts one call whose limits were found already (`limits(consumer:plan:endpoint:at:)`,
    /// or a connection's `RecentQuotaLimits`).
    public func admit(
        _ limits: [AppliedLimit], consumer: Consumer, plan: Plan, endpoint: String?, at date: Date, eventLoop: any EventLoop
    ) -> Admission {
        guard !limits.isEmpty else { return .notCovered }
        let book = BookKey(subscription: consumer.subscription, plan: plan.id)
        if let sharing {
            return admitShared(limits, book: book, sharing: sharing, at: date, eventLoop: eventLoop) { [self] in
                admit(consumer: consumer, plan: plan, endpoint: endpoint, at: now(), eventLoop: eventLoop)
            }
        }
        var leasesToWrite: [QuotaLease] = []
        var promise: EventLoopPromise<Void>?
        let admission: Admission = state.withLockedValue { state in
            switch state.books[book, default: QuotaBook()].admit(limits, at: date) {
            case .refused(let retryAfter, let states):
                return .refused(retryAfter: retryAfter, states)
            case .admitted(let states):
                var waits: [EventLoopFuture<Void>] = []
                for limitState in states where QuotaLease.isDurable(limitState.limit.window) {
                    let key = LeaseKey(book: book, counter: QuotaBook.key(limitState.limit))
                    var lease = state.leases[key] ?? {
                        // A new window: leases of the windows before it are done with.
                        state.leases = state.leases.filter { entry in
                            !(entry.key.book == book && entry.key.counter.endpoint == key.counter.endpoint
                                && entry.key.counter.window == key.counter.window)
                        }
                        return LeaseState()
                    }()
                    if limitState.used <= lease.durable { continue }
                    if limitState.used <= lease.requested, let pending = lease.pending {
                        waits.append(pending)
                        continue
                    }
                    let amount = min(limitState.limit.quota, limitState.used - 1 + QuotaLease.block(for: limitState.limit.quota))
                    let leasePromise = promise ?? eventLoop.makePromise(of: Void.self)
                    promise = leasePromise
                    lease.requested = amount
                    lease.pending = leasePromise.futureResult
                    state.leases[key] = lease
                    waits.append(leasePromise.futureResult)
                    leasesToWrite.append(QuotaLease(
                        subscription: book.subscription, plan: book.plan, endpoint: key.counter.endpoint,
                        window: key.counter.window, windowStart: key.counter.windowStart, leased: amount))
                }
                let wait: EventLoopFuture<Void>? = switch waits.count {
                case 0: nil
                case 1: waits[0]
                default: EventLoopFuture.andAllSucceed(waits, on: eventLoop)
                }
                let exhausted = states.filter { $0.used == $0.limit.quota }.map(\.limit)
                return .admitted(states, wait: wait, exhausted: exhausted, counted: Counted(book: book, limits: limits, shared: []))
            }
        }
        if let promise {
            let written = leasesToWrite
            let future = promise.futureResult
            future.whenComplete { [self] result in
                switch result {
                case .success: leasesWritten(written, book: book)
                case .failure: leasesFailed(written, book: book, pending: future)
                }
            }
            recorder.raiseLeases(written, durable: promise)
        }
        return admission
    }

    /// Gives back a call that `admit` counted and that Tollgate then answered itself (502,
    /// 503, 504): Tollgate's own failures use no quota.
    public func giveBack(_ counted: Counted) {
        state.withLockedValue { state in
            if counted.shared.isEmpty {
                state.books[counted.book]?.giveBack(counted.limits)
            } else {
                state.shared.giveBack(counted.shared)
            }
        }
    }

    // MARK: Shared counters

    /// Shared mode: counts the call if this node holds allowance for every counter; otherwise
    /// takes the leases it lacks and decides again (`decideAgain`) once they are back.
    private func admitShared(
        _ limits: [AppliedLimit], book: BookKey, sharing: any QuotaLeaseSource, at date: Date, eventLoop: any EventLoop,
        decideAgain: @escaping @Sendable () -> Admission
    ) -> Admission {
        let counters = limits.map { (counter: QuotaCounter(subscription: book.subscription, plan: book.plan, limit: $0), limit: $0) }
        var lapsed: [QuotaCounter: Int] = [:]
        var leases: [(QuotaCounter, Int, Date, EventLoopPromise<Void>)] = []
        var waits: [EventLoopFuture<Void>] = []
        let outcome: Admission? = state.withLockedValue { state in
            if date >= state.leasesValidUntil {
                // This node may have lost its leases (it could not renew them in time): what it
                // held unused is handed back, and every counter is leased anew.
                lapsed = state.shared.handBackAll()
            }
            switch state.shared.admit(counters, at: date) {
            case .admitted(let states):
                let exhausted = states.filter { $0.used == $0.limit.quota }.map(\.limit)
                return .admitted(
                    states, wait: nil, exhausted: exhausted, counted: Counted(book: book, limits: limits, shared: counters.map(\.counter)))
            case .refused(let retryAfter, let states):
                return .refused(retryAfter: retryAfter, states)
            case .lease(let toLease, let waitFor):
                for (counter, quota) in toLease {
                    let promise = eventLoop.makePromise(of: Void.self)
                    let windowEnd = counters.first { $0.counter == counter }?.limit.span.end ?? date
                    state.leasing[counter] = promise.futureResult
                    leases.append((counter, quota, windowEnd, promise))
                }
                waits = waitFor.compactMap { state.leasing[$0] }
                return nil
            }
        }
        if !lapsed.isEmpty { sharing.handBack(lapsed) }
        if let outcome { return outcome }
        for (counter, quota, windowEnd, promise) in leases {
            promise.completeWithTask { [self] in
                do {
                    let grant = try await sharing.lease(counter, quota: quota, windowEnd: windowEnd)
                    state.withLockedValue { state in
                        state.shared.leased(counter, amount: grant.amount, total: grant.total, refuseUntil: now().addingTimeInterval(1))
                        state.leasing[counter] = nil
                    }
                } catch {
                    state.withLockedValue { state in
                        state.shared.leaseFailed(counter)
                        state.leasing[counter] = nil
                    }
                    throw error
                }
            }
        }
        let ready = waits.isEmpty ? eventLoop.makeSucceededVoidFuture() : EventLoopFuture.andAllSucceed(waits, on: eventLoop)
        return .pending(ready.flatMap {
            switch decideAgain() {
            case .pending(let decision): decision
            case let decided: eventLoop.makeSucceededFuture(decided)
            }
        })
    }

    /// Shared mode: of the limits a refused call found used up, those this node has not yet
    /// announced (`quota.exhausted` goes out once per node and window, not per refusal).
    public func exhaustionToAnnounce(_ states: [LimitState], consumer: Consumer, plan: Plan) -> [AppliedLimit] {
        let used = states.filter { $0.remaining == 0 }.map(\.limit)
        guard isShared, !used.isEmpty else { return [] }
        let counters = used.map { QuotaCounter(subscription: consumer.subscription, plan: plan.id, limit: $0) }
        let fresh = Set(state.withLockedValue { state in state.shared.announce(counters) })
        return used.filter { fresh.contains(QuotaCounter(subscription: consumer.subscription, plan: plan.id, limit: $0)) }
    }

    /// Shared mode: this node's leases are its own until `date` (its time-out was renewed).
    public func leasesValid(until date: Date) {
        state.withLockedValue { state in state.leasesValidUntil = max(state.leasesValidUntil, date) }
    }

    /// Shared mode: another node asked for this counter; what this node holds unused is taken
    /// out of its allowance at once, and returned here to be handed back.
    public func handBack(_ counter: QuotaCounter) -> Int {
        state.withLockedValue { state in state.shared.handBack(counter) }
    }

    /// Shared mode: everything held unused, taken out of the allowance (a graceful stop).
    public func handBackAll() -> [QuotaCounter: Int] {
        state.withLockedValue { state in state.shared.handBackAll() }
    }

    /// Shared mode: some node handed calls of `counter` back; a counter that refused asks again.
    public func allowanceReturned(_ counter: QuotaCounter) {
        state.withLockedValue { state in state.shared.allowanceReturned(counter) }
    }

    /// Shared mode: forgets counters whose window ended before `date`.
    public func forgetEnded(before date: Date) {
        state.withLockedValue { state in state.shared.forgetEnded(before: date) }
    }

    /// A lease write failed: the calls waiting for it fail (they were told through the
    /// future), and the next call asks for the lease again instead of waiting on the failure.
    private func leasesFailed(_ leases: [QuotaLease], book: BookKey, pending: EventLoopFuture<Void>) {
        state.withLockedValue { state in
            for lease in leases {
                let key = LeaseKey(book: book, counter: QuotaBook.Key(
                    endpoint: lease.endpoint, window: lease.window, windowStart: lease.windowStart))
                guard var current = state.leases[key], current.pending === pending else { continue }
                current.requested = current.durable
                current.pending = nil
                state.leases[key] = current
            }
        }
    }

    private func leasesWritten(_ leases: [QuotaLease], book: BookKey) {
        state.withLockedValue { state in
            for lease in leases {
                let key = LeaseKey(book: book, counter: QuotaBook.Key(
                    endpoint: lease.endpoint, window: lease.window, windowStart: lease.windowStart))
                guard var current = state.leases[key] else { continue }
                current.durable = max(current.durable, lease.leased)
                if current.requested <= current.durable { current.pending = nil }
                state.leases[key] = current
            }
        }
    }

    /// Where a subscription's limits stand now, without counting anything.
    public func status(consumer: Consumer, plan: Plan, at date: Date) -> [LimitState] {
        let book = BookKey(subscription: consumer.subscription, plan: plan.id)
        let period = BillingPeriods.period(containing: date, unit: plan.period, anchor: consumer.startedAt)
        let limits = AppliedLimit.all(plan: plan, at: date, billingPeriod: period)
        if isShared {
            let counters = limits.map { (counter: QuotaCounter(subscription: book.subscription, plan: book.plan, limit: $0), limit: $0) }
            return state.withLockedValue { state in state.shared.states(counters) }
        }
        return state.withLockedValue { state in (state.books[book] ?? QuotaBook()).states(limits) }
    }

    /// Restores counters from stored leases (at start): each counter starts at its lease.
    public func restore(_ leases: [QuotaLease]) {
        var counters: [BookKey: [QuotaBook.Key: Int]] = [:]
        var leaseStates: [LeaseKey: LeaseState] = [:]
        for lease in leases {
            let book = BookKey(subscription: lease.subscription, plan: lease.plan)
            let counter = QuotaBook.Key(endpoint: lease.endpoint, window: lease.window, windowStart: lease.windowStart)
            counters[book, default: [:]][counter] = lease.leased
            leaseStates[LeaseKey(book: book, counter: counter)] = LeaseState(durable: lease.leased, requested: lease.leased)
        }
        state.withLockedValue { state in
            state.books = counters.mapValues { QuotaBook(used: $0) }
            state.leases = leaseStates
        }
    }

    /// The exact counts of every durable counter, to settle the leases at a graceful shutdown.
    public func exactCounts() -> [QuotaLease] {
        state.withLockedValue { state in
            state.books.flatMap { book, counters in
                counters.used.compactMap { key, used in
                    QuotaLease.isDurable(key.window)
                        ? QuotaLease(
                            subscription: book.subscription, plan: book.plan, endpoint: key.endpoint, window: key.window,
                            windowStart: key.windowStart, leased: used)
                        : nil
                }
            }
        }
    }
}
