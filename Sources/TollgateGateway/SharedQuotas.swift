import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import ServiceLifecycle
import TollgateCore
import TollgateStore

/// What one gateway node does so that all nodes on one PostgreSQL share their quotas exactly
/// (docs/quotas.md): it takes leases for the `QuotaLedger`, asks the other nodes to hand back
/// what they hold unused when nothing is left, hands back its own when asked (`LISTEN`/`NOTIFY`
/// on one channel), renews its lease time-out, takes back what dead nodes held once their
/// time-out passed, and hands everything back when it stops.
public final class SharedQuotas: QuotaLeaseSource, Service {
    /// Messages between nodes: `reclaim` asks every node holding a counter to hand back what it
    /// holds unused; `returned` says that a node handed back `amount` calls (0: it had none).
    enum Message: Equatable {
        case reclaim(node: String, QuotaCounter)
        case returned(node: String, amount: Int, QuotaCounter)

        var text: String {
            switch self {
            case .reclaim(let node, let counter): "reclaim \(node)\n\(counter)"
            case .returned(let node, let amount, let counter): "returned \(node) \(amount)\n\(counter)"
            }
        }

        init?(_ text: String) {
            guard let newline = text.firstIndex(of: "\n") else { return nil }
            let words = text[..<newline].split(separator: " ")
            guard words.count >= 2, let counter = QuotaCounter(text[text.index(after: newline)...]) else { return nil }
            switch (words[0], words.count) {
            case ("reclaim", 2): self = .reclaim(node: String(words[1]), counter)
            case ("returned", 3):
                guard let amount = Int(words[2]), amount >= 0 else { return nil }
                self = .returned(node: String(words[1]), amount: amount, counter)
            default: return nil
            }
        }
    }

    /// A lease request that waits for the named nodes to answer a `reclaim`.
    private struct Waiter {
        var counter: QuotaCounter
        var nodes: Set<String>
        var continuation: CheckedContinuation<Void, Never>
    }

    /// This node's name in `quota_holdings` and `quota_nodes`.
    public let node: String
    private let store: TollgateStore
    private let leaseTimeout: Duration
    private let reclaimWait: Duration
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let ledgerBox = NIOLockedValueBox<QuotaLedger?>(nil)
    private let waiters = NIOLockedValueBox<[Int: Waiter]>([:])
    private let nextWaiter = NIOLockedValueBox(0)

    /// `leaseTimeout`: how long what a silent node holds stays its own; `reclaimWait`: how long a
    /// node that needs more waits for the others to hand theirs back before it refuses.
    public init(
        store: TollgateStore, node: String = RandomID.make("node"), leaseTimeout: Duration = .seconds(30),
        reclaimWait: Duration = .milliseconds(500), now: @escaping @Sendable () -> Date = Date.init, logger: Logger
    ) {
        self.store = store
        self.node = node
        self.leaseTimeout = leaseTimeout
        self.reclaimWait = reclaimWait
        self.now = now
        self.logger = logger
    }

    /// The ledger this node's leases are for (set once, before the proxy starts).
    public func attach(_ ledger: QuotaLedger) {
        ledgerBox.withLockedValue { $0 = ledger }
    }

    private var ledger: QuotaLedger? { ledgerBox.withLockedValue { $0 } }
    private var timeout: TimeInterval { Double(leaseTimeout.components.seconds) + Double(leaseTimeout.components.attoseconds) / 1e18 }

    // MARK: Leases

    public func lease(_ counter: QuotaCounter, quota: Int, windowEnd: Date) async throws -> QuotaGrant {
        var grant = try await take(counter, quota: quota, windowEnd: windowEnd)
        if grant.amount == 0, !grant.holders.isEmpty {
            Counter(label: MetricName.reclaims).increment()
            // Nothing left unleased, but other nodes hold some unused: ask them for it, and take
            // what they handed back (or refuse when they had nothing after all).
            await waitForReturns(of: counter, from: Set(grant.holders)) {
                try? await self.store.notifyQuotaNodes(Message.reclaim(node: self.node, counter).text)
            }
            grant = try await take(counter, quota: quota, windowEnd: windowEnd)
        }
        return grant
    }

    private func take(_ counter: QuotaCounter, quota: Int, windowEnd: Date) async throws -> QuotaGrant {
        let started = now()
        let grant = try await store.takeQuotaLease(
            node: node, counter: counter, quota: quota, windowEnd: windowEnd, block: SharedQuotaBook.block(for: quota),
            now: started, expiresAt: started.addingTimeInterval(timeout))
        ledger?.leasesValid(until: started.addingTimeInterval(timeout / 2))
        Counter(label: MetricName.leases, dimensions: [("outcome", grant.amount > 0 ? "granted" : "empty")]).increment()
        return grant
    }

    public func handBack(_ unused: [QuotaCounter: Int]) {
        Task { await handBackNow(unused) }
    }

    /// Hands `unused` back and tells every node how much (also when it is 0).
    private func handBackNow(_ unused: [QuotaCounter: Int]) async {
        for (counter, amount) in unused {
            do {
                try await store.returnQuota(node: node, counter: counter, amount: amount)
                Counter(label: MetricName.handedBack).increment(by: amount)
                try await store.notifyQuotaNodes(Message.returned(node: node, amount: amount, counter).text)
            } catch {
                logger.warning("quota could not be handed back", metadata: ["error": "\(type(of: error))"])
            }
        }
    }

    /// Registers a wait for `nodes` to answer about `counter`, runs `ask`, and waits until they
    /// all answered or `reclaimWait` passed.
    private func waitForReturns(of counter: QuotaCounter, from nodes: Set<String>, ask: @escaping @Sendable () async -> Void) async {
        let id = nextWaiter.withLockedValue { value in
            value += 1
            return value
        }
        await withCheckedContinuation { continuation in
            waiters.withLockedValue { $0[id] = Waiter(counter: counter, nodes: nodes, continuation: continuation) }
            Task {
                await ask()
                try? await Task.sleep(for: self.reclaimWait)
                self.resume { $0 == id }
            }
        }
    }

    private func resume(where matches: (Int) -> Bool) {
        let ready = waiters.withLockedValue { waiters in
            let ids = waiters.keys.filter(matches)
            return ids.compactMap { waiters.removeValue(forKey: $0)?.continuation }
        }
        for continuation in ready { continuation.resume() }
    }

    /// A node answered about `counter`: waits that no longer need anyone end.
    private func answered(by other: String, about counter: QuotaCounter) {
        let ready = waiters.withLockedValue { waiters in
            var ready: [CheckedContinuation<Void, Never>] = []
            for (id, var waiter) in waiters where waiter.counter == counter {
                waiter.nodes.remove(other)
                if waiter.nodes.isEmpty {
                    waiters[id] = nil
                    ready.append(waiter.continuation)
                } else {
                    waiters[id] = waiter
                }
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    // MARK: Messages

    func heard(_ text: String) async {
        guard let message = Message(text) else { return }
        switch message {
        case .reclaim(let asker, let counter):
            guard asker != node else { return }
            // Answered even with nothing to hand back (`returned` 0), so that the asker need not wait.
            await handBackNow([counter: ledger?.handBack(counter) ?? 0])
        case .returned(let other, let amount, let counter):
            // Only calls actually handed back make refusing nodes ask again.
            if amount > 0 { ledger?.allowanceReturned(counter) }
            answered(by: other, about: counter)
        }
    }

    // MARK: Metrics

    /// The names of the metrics of shared quotas (docs/operations.md describes them).
    enum MetricName {
        static let leases = "tollgate_quota_leases_total"
        static let reclaims = "tollgate_quota_reclaims_total"
        static let handedBack = "tollgate_quota_handed_back_total"
    }

    // MARK: Service

    public func run() async throws {
        // A graceful stop ends the loops; the proxy, shut down before this service, has drained.
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.listen() }
                group.addTask { await self.maintain() }
                await group.next()
                group.cancelAll()
            }
        }
        await leave()
    }

    /// Answers the other nodes' messages until cancelled, listening again after a failure.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await store.followQuotaNodes { text in
                    guard let text else { return }
                    Task { await self.heard(text) }
                }
                return
            } catch is CancellationError {
                return
            } catch {
                logger.warning("listening for quota messages failed; listening again", metadata: ["error": "\(type(of: error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Every third of the lease time-out: renews this node's time-out, takes back what nodes
    /// that went silent held unused (telling every node), forgets ended windows.
    private func maintain() async {
        while !Task.isCancelled {
            let started = now()
            do {
                let returned = try await store.maintainQuotas(
                    node: node, now: started, expiresAt: started.addingTimeInterval(timeout),
                    forgetBefore: started.addingTimeInterval(-3_600))
                ledger?.leasesValid(until: started.addingTimeInterval(timeout / 2))
                ledger?.forgetEnded(before: started)
                for (counter, amount) in returned {
                    ledger?.allowanceReturned(counter)
                    try? await store.notifyQuotaNodes(Message.returned(node: node, amount: amount, counter).text)
                }
            } catch {
                logger.warning("quota lease time-out could not be renewed", metadata: ["error": "\(type(of: error))"])
            }
            try? await Task.sleep(for: leaseTimeout / 3)
        }
    }

    /// A graceful stop, after the proxy drained: hands back everything unused and leaves.
    private func leave() async {
        guard let ledger else { return }
        await handBackNow(ledger.handBackAll())
        try? await store.leaveQuotas(node: node)
    }
}
