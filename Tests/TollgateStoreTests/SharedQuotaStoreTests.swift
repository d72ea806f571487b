import Foundation
import SQLKit
import Testing
import TollgateCore
@testable import TollgateStore
import TollgateTestSupport

/// The SQL of quotas shared by gateway nodes on PostgreSQL: leases never pass the quota, shrink
/// as it runs low, come back when handed back or when their node's time-out has passed, and the
/// calls a node answered stay counted.
@Suite("Shared quota store")
struct SharedQuotaStoreTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let counter = QuotaCounter(subscription: "sub_1", plan: "p", endpoint: nil, window: .month, windowStart: now)
    static let end = now.addingTimeInterval(30 * 86_400)

    static func lease(_ store: TollgateStore, _ node: String, quota: Int = 100, at offset: TimeInterval = 0) async throws -> QuotaGrant {
        let at = now.addingTimeInterval(offset)
        return try await store.takeQuotaLease(
            node: node, counter: counter, quota: quota, windowEnd: end, block: QuotaLease.block(for: quota), now: at,
            expiresAt: at.addingTimeInterval(30))
    }

    @Test func leasesNeverPassTheQuotaAndShrinkAsItRunsLow() async throws {
        try await TestDatabase.postgres.withStore { store in
            var amounts: [Int] = []
            var total = 0
            while true {
                let grant = try await Self.lease(store, "a")
                if grant.amount == 0 { break }
                amounts.append(grant.amount)
                total += grant.amount
                #expect(grant.total == total)
            }
            #expect(total == 100)
            #expect(amounts.first == 5)  // a twentieth of 100
            #expect(amounts.last == 1)   // one at a time near the end
            #expect(amounts == amounts.sorted(by: >))
            // Nothing left: A holds calls it has not used, so A is named.
            #expect(try await Self.lease(store, "b") == QuotaGrant(amount: 0, total: 100, holders: ["a"]))
            // Once A answered them all, there is nobody to ask.
            try await store.commitUsage(UsageCommit(quotaUse: QuotaUse(node: "a", calls: [Self.counter: 100])))
            #expect(try await Self.lease(store, "b") == QuotaGrant(amount: 0, total: 100, holders: []))
        }
    }

    @Test func aNodeHoldingUnusedCallsIsNamedAndWhatItHandsBackIsLeasedAgain() async throws {
        try await TestDatabase.postgres.withStore { store in
            while try await Self.lease(store, "a", quota: 20).amount > 0 {}
            // A answered 15 of its 20.
            try await store.commitUsage(UsageCommit(quotaUse: QuotaUse(node: "a", calls: [Self.counter: 15])))
            #expect(try await Self.lease(store, "b", quota: 20) == QuotaGrant(amount: 0, total: 20, holders: ["a"]))
            #expect(try await store.quotaCounterUse(subscription: "sub_1") == [Self.counter: 15])
            // A hands back more than it has unused: nothing changes.
            try await store.returnQuota(node: "a", counter: Self.counter, amount: 6)
            #expect(try await Self.lease(store, "b", quota: 20).amount == 0)
            try await store.returnQuota(node: "a", counter: Self.counter, amount: 5)
            var leased = 0
            while case let grant = try await Self.lease(store, "b", quota: 20), grant.amount > 0 { leased += grant.amount }
            #expect(leased == 5)
        }
    }

    @Test func whatADeadNodeHeldUnusedComesBackAfterItsTimeOutAndItsUseStays() async throws {
        try await TestDatabase.postgres.withStore { store in
            #expect(try await Self.lease(store, "a", quota: 40).amount == 2)
            try await store.commitUsage(UsageCommit(quotaUse: QuotaUse(node: "a", calls: [Self.counter: 1])))
            while try await Self.lease(store, "b", quota: 40).amount > 0 {}
            // A's time-out (30 s from its lease) has not passed: its unused call is still A's.
            #expect(try await Self.lease(store, "b", quota: 40, at: 29).holders == ["a"])
            // Past it, B's next lease takes back the unused call; the used one stays counted.
            #expect(try await Self.lease(store, "b", quota: 40, at: 31) == QuotaGrant(amount: 1, total: 40, holders: []))
            // Counted: A's answered call; what B holds is not used yet.
            #expect(try await store.quotaCounterUse(subscription: "sub_1") == [Self.counter: 1])
        }
    }

    @Test func maintenanceTakesBackFromDeadNodesAndForgetsEndedWindows() async throws {
        try await TestDatabase.postgres.withStore { store in
            #expect(try await Self.lease(store, "a", quota: 40).amount == 2)
            let early = try await store.maintainQuotas(
                node: "b", now: Self.now.addingTimeInterval(10), expiresAt: Self.now.addingTimeInterval(40),
                forgetBefore: Self.now)
            #expect(early.isEmpty)
            let late = try await store.maintainQuotas(
                node: "b", now: Self.now.addingTimeInterval(31), expiresAt: Self.now.addingTimeInterval(61),
                forgetBefore: Self.now)
            #expect(late == [Self.counter: 2])
            #expect(try await store.quotaCounterUse(subscription: "sub_1") == [Self.counter: 0])
            _ = try await store.maintainQuotas(
                node: "b", now: Self.now.addingTimeInterval(31), expiresAt: Self.now.addingTimeInterval(61),
                forgetBefore: Self.end.addingTimeInterval(1))
            #expect(try await store.quotaCounterUse(subscription: "sub_1").isEmpty)
        }
    }

    @Test func anUpgradeCountsWhatSingleNodeLeasesHeld() async throws {
        let url = try TestDatabase.postgres.makeURL()
        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            try await Migrations.run(on: store.backend, through: 11)
            try await store.raiseQuotaLeases([QuotaLease(
                subscription: "sub_1", plan: "p", endpoint: nil, window: .month, windowStart: Self.now, leased: 37)])
            try await store.migrate()
            #expect(try await store.quotaCounterUse(subscription: "sub_1") == [Self.counter: 37])
            var leased = 0
            while case let grant = try await Self.lease(store, "a", quota: 40), grant.amount > 0 { leased += grant.amount }
            #expect(leased == 3)
        }
    }
}
