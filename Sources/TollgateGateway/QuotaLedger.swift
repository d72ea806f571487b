import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TollgateCore

/// The gateway's quota counters: one `QuotaBook` per subscription and plan, checked and counted
/// in one step under a lock, so that with quota Q exactly Q concurrent calls pass. Counters of
/// windows of an hour or more are made durable by leases taken ahead in blocks: a call waits for
/// a database write only when its counter passes the lease, about once every twentieth of the
/// quota. After a crash the counters restart at their leases (a few calls may be refused, none
/// granted twice); a graceful shutdown settles the leases to the exact counts.
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
    }

    /// What the ledger decided about one call.
    public enum Admission {
        /// No prepaid price covers the call.
        case notCovered
        /// Over a limit: refused, counted nowhere.
        case refused(retryAfter: Int, [LimitState])
        /// Counted; forward once `wait` (a lease being written) succeeds, if there is one.
        /// `exhausted` are the limits this very call used up; `counted` gives the call back.
        case admitted([LimitState], wait: EventLoopFuture<Void>?, exhausted: [AppliedLimit], counted: Counted)
    }

    /// Where one admitted call was counted, so that it can be given back.
    public struct Counted: Sendable {
        let book: BookKey
        let limits: [AppliedLimit]
    }

    private let state = NIOLockedValueBox(State())
    private let recorder: UsageRecorder

    public init(recorder: UsageRecorder) {
        self.recorder = recorder
    }

    /// The limits of `plan` that cover a call to `endpoint` at `date`.
    public static func limits(consumer: Consumer, plan: Plan, endpoint: String?, at date: Date) -> [AppliedLimit] {
        guard !plan.prepaidQuotas.isEmpty else { return [] }
        let period = BillingPeriods.period(containing: date, unit: plan.period, anchor: consumer.startedAt)
        return AppliedLimit.covering(endpoint: endpoint, plan: plan, at: date, billingPeriod: period)
    }

    /// Checks and counts one call.
    public func admit(consumer: Consumer, plan: Plan, endpoint: String?, at date: Date, eventLoop: any EventLoop) -> Admission {
        let limits = Self.limits(consumer: consumer, plan: plan, endpoint: endpoint, at: date)
        guard !limits.isEmpty else { return .notCovered }
        let book = BookKey(subscription: consumer.subscription, plan: plan.id)
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
                return .admitted(states, wait: wait, exhausted: exhausted, counted: Counted(book: book, limits: limits))
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
        state.withLockedValue { state in state.books[counted.book]?.giveBack(counted.limits) }
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
