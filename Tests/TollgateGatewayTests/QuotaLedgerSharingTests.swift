import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TollgateCore
import TollgateGateway
import TollgateStore
import TollgateTestSupport

/// The ledger in shared mode, in memory: a fake lease source stands in for PostgreSQL and the
/// other nodes; an event loop of NIO's stands in for the proxy's.
@Suite("Quota ledger, shared")
struct QuotaLedgerSharingTests {
    /// What the database and the other nodes would do: a total that never passes the quota,
    /// leases of `block`, a switch that makes leases fail, and what was handed back.
    final class FakeLeases: QuotaLeaseSource {
        struct State {
            var total = 0
            var block = 2
            var failing = false
            var requests = 0
            var handedBack: [QuotaCounter: Int] = [:]
        }

        let state = NIOLockedValueBox(State())
        let validity: NIOLockedValueBox<QuotaLedger?> = NIOLockedValueBox(nil)

        func lease(_ counter: QuotaCounter, quota: Int, windowEnd: Date) async throws -> QuotaGrant {
            let grant = try state.withLockedValue { state in
                state.requests += 1
                if state.failing { throw TestFailure("database down") }
                let amount = min(state.block, quota - state.total)
                state.total += amount
                return QuotaGrant(amount: amount, total: state.total, holders: [])
            }
            validity.withLockedValue { $0 }?.leasesValid(until: QuotaLedgerSharingTests.start.addingTimeInterval(15))
            return grant
        }

        func handBack(_ unused: [QuotaCounter: Int]) {
            state.withLockedValue { state in
                for (counter, amount) in unused {
                    state.handedBack[counter, default: 0] += amount
                    state.total -= amount
                }
            }
        }
    }

    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    static let consumer = Consumer(subscription: "sub_1", customer: "cus_1", product: "shop", plan: "basic", startedAt: start)
    static let plan = Plan(
        id: "basic", product: "shop", name: "Basic", currency: "EUR", period: .month,
        prices: [.prepaid(PrepaidQuota(quota: 5, window: .month))])

    /// Runs `body` with a ledger sharing through `leases`, its clock read from `clock`.
    static func withLedger(
        _ leases: FakeLeases, clock: NIOLockedValueBox<Date> = NIOLockedValueBox(start),
        _ body: @Sendable (QuotaLedger) async throws -> Void
    ) async throws {
        try await TestDatabase.sqlite.withStore { store in
            let ledger = QuotaLedger(
                recorder: UsageRecorder(store: store, logger: TestLogger.make()), sharing: leases,
                now: { clock.withLockedValue { $0 } })
            leases.validity.withLockedValue { $0 = ledger }
            try await body(ledger)
        }
    }

    static let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// Admits one call at `date` and, when it waits for a lease, waits for the decision.
    static func decide(_ ledger: QuotaLedger, at date: Date) async throws -> QuotaLedger.Admission {
        let admission = ledger.admit(consumer: consumer, plan: plan, endpoint: nil, at: date, eventLoop: loop)
        guard case .pending(let decision) = admission else { return admission }
        return try await decision.get()
    }

    static func isAdmitted(_ admission: QuotaLedger.Admission) -> Bool {
        if case .admitted(_, let wait, _, _) = admission { return wait == nil }
        return false
    }

    @Test func callsAreServedFromLeasesAndRefusedOnceTheQuotaIsGranted() async throws {
        let leases = FakeLeases()
        let clock = NIOLockedValueBox(Self.start)
        try await Self.withLedger(leases, clock: clock) { ledger in
            var admitted = 0
            for _ in 0..<8 {
                let admission = try await Self.decide(ledger, at: Self.start)
                if Self.isAdmitted(admission) { admitted += 1 } else if case .refused = admission {} else {
                    Issue.record("neither admitted nor refused: \(admission)")
                }
            }
            #expect(admitted == 5)
            // Leases of two: 2 + 2 + 1, then one that came back empty; refusals after it ask nobody.
            #expect(leases.state.withLockedValue(\.requests) == 4)
            // The refusal lasts a second; then the ledger asks again.
            clock.withLockedValue { $0 = Self.start.addingTimeInterval(1) }
            _ = try await Self.decide(ledger, at: Self.start.addingTimeInterval(1))
            #expect(leases.state.withLockedValue(\.requests) == 5)
        }
    }

    @Test func aCallAdmittedAfterALeaseIsCountedInTheRecordedCounters() async throws {
        let leases = FakeLeases()
        try await Self.withLedger(leases) { ledger in
            let admission = try await Self.decide(ledger, at: Self.start)
            guard case .admitted(let states, nil, let exhausted, let counted) = admission else {
                Issue.record("not admitted: \(admission)"); return
            }
            #expect(states.map(\.used) == [1])
            #expect(exhausted.isEmpty)
            #expect(counted.shared == [QuotaCounter(
                subscription: "sub_1", plan: "basic", endpoint: nil, window: .month,
                windowStart: QuotaWindows.span(.month, containing: Self.start, billingPeriod: TimeSpan(start: Self.start, end: Self.start)).start)])
            // Given back (Tollgate answered it itself): the next call needs no lease.
            ledger.giveBack(counted)
            #expect(Self.isAdmitted(ledger.admit(consumer: Self.consumer, plan: Self.plan, endpoint: nil, at: Self.start, eventLoop: Self.loop)))
            #expect(leases.state.withLockedValue(\.requests) == 1)
        }
    }

    @Test func aFailedLeaseFailsItsCallsAndTheNextCallAsksAgain() async throws {
        let leases = FakeLeases()
        leases.state.withLockedValue { $0.failing = true }
        try await Self.withLedger(leases) { ledger in
            await #expect(throws: TestFailure.self) { try await Self.decide(ledger, at: Self.start) }
            leases.state.withLockedValue { $0.failing = false }
            let decided1 = try await Self.decide(ledger, at: Self.start)
            #expect(Self.isAdmitted(decided1))
            #expect(leases.state.withLockedValue(\.requests) == 2)
        }
    }

    @Test func leasesThatMayHaveLapsedAreHandedBackAndTakenAnew() async throws {
        let leases = FakeLeases()
        try await Self.withLedger(leases) { ledger in
            let decided2 = try await Self.decide(ledger, at: Self.start)
            #expect(Self.isAdmitted(decided2))
            // Valid for 15 s from the lease: past that, the unused call is handed back first.
            let decided3 = try await Self.decide(ledger, at: Self.start.addingTimeInterval(16))
            #expect(Self.isAdmitted(decided3))
            #expect(leases.state.withLockedValue(\.handedBack.values.first) == 1)
            #expect(leases.state.withLockedValue(\.requests) == 2)
        }
    }

    @Test func anotherNodeAskingGetsWhatThisNodeHoldsUnused() async throws {
        let leases = FakeLeases()
        leases.state.withLockedValue { $0.block = 4 }
        try await Self.withLedger(leases) { ledger in
            guard case .admitted(_, _, _, let counted) = try await Self.decide(ledger, at: Self.start) else {
                Issue.record("not admitted"); return
            }
            let counter = try #require(counted.shared.first)
            #expect(ledger.handBack(counter) == 3)
            #expect(ledger.handBack(counter) == 0)
            #expect(ledger.handBackAll().isEmpty)
        }
    }
}
