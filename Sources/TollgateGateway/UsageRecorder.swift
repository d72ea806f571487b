import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Synchronization
import TollgateCore
import TollgateStore

/// Why the recorder refused to queue a billable event.
public struct UsageQueueError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public enum Code: Sendable {
        /// `capacity` events are already waiting to be written (the database is slower than the traffic).
        case full
        /// The recorder has stopped; nothing more is written.
        case stopped
    }

    public var code: Code
    public var capacity: Int

    public var description: String {
        switch code {
        case .full: "usage queue full: \(capacity) events are waiting to be written; billable calls are refused until it drains"
        case .stopped: "usage recorder stopped: the event was not written"
        }
    }
}

/// Writes usage events to the store in batches (group commit). A caller that needs durability
/// passes a promise, completed once its event's batch has committed; the hot path never waits
/// for a database round trip of its own, only for the next shared commit.
///
/// The queue holds at most `capacity` events (queued or being written). When it is full a
/// billable event with a promise is refused (the promise fails at once) and an analytics event
/// is dropped and counted (`tollgate_usage_dropped_total`); `acceptsBillable` tells the proxy
/// beforehand. Metrics are computed here, in the write loop, per batch: the proxy's event
/// loops only append to the queue.
public final class UsageRecorder: Service, Sendable {
    private struct Pending {
        var events: [UsageEvent] = []
        var leases: [QuotaLease] = []
        var settlements: [QuotaLease] = []
        var webhooks: [WebhookDelivery] = []
        /// Calls among `events` answered from shared quota holdings, by counter.
        var quotaCalls: [QuotaCounter: Int] = [:]
        var promises: [EventLoopPromise<Void>] = []
        /// Events taken by the write loop and not yet written.
        var inFlight = 0
        /// Analytics events dropped since the write loop last looked.
        var dropped = 0
        /// Refusals counted since the write loop last looked, by status.
        var refusals: [Int: Int] = [:]
        var stopping = false
        /// The write loop has returned: nothing queued from now on would be written.
        var stopped = false

        var depth: Int { events.count + inFlight }
    }

    private let store: TollgateStore
    private let logger: Logger
    private let state = NIOLockedValueBox(Pending())
    /// `Pending.depth`, readable without the lock.
    private let depth = Atomic<Int>(0)
    /// Rung after every change to `state`; holding at most one ring, it cannot lose a wake-up:
    /// a ring that comes while the loop is writing is still there when the loop next waits.
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    /// The most events that may wait to be written.
    public let capacity: Int
    /// This node's name among the nodes sharing quotas (PostgreSQL), for `QuotaUse`.
    let quotaNode: String?

    public init(store: TollgateStore, logger: Logger, capacity: Int = 100_000, quotaNode: String? = nil) {
        precondition(capacity > 0, "the usage queue needs room for at least one event")
        self.store = store
        self.logger = logger
        self.capacity = capacity
        self.quotaNode = quotaNode
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// False while `capacity` events wait to be written: the proxy then refuses billable calls
    /// (503) instead of forwarding calls it could not bill.
    public var acceptsBillable: Bool {
        depth.load(ordering: .relaxed) < capacity
    }

    /// Events queued or being written.
    public var queueDepth: Int {
        depth.load(ordering: .relaxed)
    }

    private enum Admission {
        case queued, refused(UsageQueueError), dropped
    }

    /// Queues an event. With a promise, the promise succeeds when the event is durable, or fails
    /// if it could not be written, or at once (`UsageQueueError`) when the queue is full or the
    /// recorder has stopped. Without a promise, a non-billable event finding the queue full is
    /// dropped and counted; a billable one is still queued (the proxy asks `acceptsBillable` and
    /// passes a promise with every billable event, so that never grows the queue far).
    /// `quota` names the shared quota counters the call was answered from: they count it in the
    /// same transaction as its event.
    public func record(_ event: UsageEvent, durable promise: EventLoopPromise<Void>? = nil, quota: [QuotaCounter] = []) {
        let capacity = self.capacity
        let admission: Admission = state.withLockedValue { pending in
            if pending.stopped { return .refused(UsageQueueError(code: .stopped, capacity: capacity)) }
            if pending.depth >= capacity {
                if promise != nil { return .refused(UsageQueueError(code: .full, capacity: capacity)) }
                if !event.billable {
                    pending.dropped += 1
                    return .dropped
                }
            }
            pending.events.append(event)
            for counter in quota { pending.quotaCalls[counter, default: 0] += 1 }
            if let promise { pending.promises.append(promise) }
            depth.store(pending.depth, ordering: .relaxed)
            return .queued
        }
        switch admission {
        case .queued, .dropped: ring.yield()
        case .refused(let error): promise?.fail(error)
        }
    }

    /// Counts a call the proxy refused without storing an event for it (no authenticated
    /// consumer): `tollgate_proxy_refusals_total{status}`, added by the write loop.
    public func countRefusal(status: Int) {
        state.withLockedValue { $0.refusals[status, default: 0] += 1 }
        ring.yield()
    }

    /// Queues quota leases to raise; `promise` succeeds once they are durable.
    public func raiseLeases(_ leases: [QuotaLease], durable promise: EventLoopPromise<Void>) {
        guard enqueue({ pending in
            pending.leases += leases
            pending.promises.append(promise)
        }) else {
            promise.fail(UsageQueueError(code: .stopped, capacity: capacity))
            return
        }
    }

    /// Queues webhook events (written with the next batch; an id already in the outbox is ignored).
    public func enqueueWebhooks(_ deliveries: [WebhookDelivery]) {
        enqueue { $0.webhooks += deliveries }
    }

    /// Queues the exact counts of quota counters (at a graceful shutdown, after the last call).
    public func settleLeases(_ leases: [QuotaLease]) {
        enqueue { $0.settlements += leases }
    }

    /// Applies `change` and rings; false (nothing changed) once the write loop has returned.
    @discardableResult
    private func enqueue(_ change: (inout Pending) -> Void) -> Bool {
        let accepted = state.withLockedValue { pending in
            guard !pending.stopped else { return false }
            change(&pending)
            return true
        }
        if accepted { ring.yield() }
        return accepted
    }

    /// Writes until shutdown, then drains what is queued and returns. The loop runs where the
    /// store writes (SQLite: on its writer's thread), so a commit costs no thread hop.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskExecutorPreference(store.usageExecutor) { await writeLoop() }
        } onGracefulShutdown: {
            self.state.withLockedValue { $0.stopping = true }
            self.ring.yield()
        }
    }

    private func writeLoop() async {
        var rings = doorbell.makeAsyncIterator()
        var metrics = MetricHandles()
        while true {
            let (work, counts, stop, depthNow) = state.withLockedValue { pending in
                let taken = Batch(
                    commit: UsageCommit(
                        events: pending.events, raisedLeases: pending.leases, settledLeases: pending.settlements,
                        webhooks: pending.webhooks,
                        quotaUse: pending.quotaCalls.isEmpty ? nil : quotaNode.map { QuotaUse(node: $0, calls: pending.quotaCalls) }),
                    promises: pending.promises)
                let counts = (dropped: pending.dropped, refusals: pending.refusals)
                // Room for as many as this batch: the calls of the next one are appended without regrowing.
                pending.events = []
                pending.events.reserveCapacity(max(16, taken.commit.events.count))
                pending.webhooks = []
                pending.quotaCalls = [:]
                pending.leases = []
                pending.settlements = []
                pending.promises = []
                pending.dropped = 0
                pending.refusals = [:]
                pending.inFlight = taken.commit.events.count
                if taken.isEmpty && pending.stopping {
                    // Nothing queued after this would be written: later callers are told so.
                    pending.stopped = true
                }
                depth.store(pending.depth, ordering: .relaxed)
                return (taken, counts, pending.stopping, pending.depth)
            }
            metrics.queueDepth.record(depthNow)
            metrics.count(dropped: counts.dropped, refusals: counts.refusals)
            if work.isEmpty {
                if stop { return }
                // Everything queued before the last ring was taken above; a ring since then is kept.
                if await rings.next() == nil {
                    // Cancelled (no graceful shutdown): write what is queued, then stop.
                    state.withLockedValue { $0.stopping = true }
                }
                continue
            }
            let written = await write(work, timer: metrics.commitSeconds)
            // The queue has room again before any caller learns its event was written.
            state.withLockedValue { pending in
                pending.inFlight = 0
                depth.store(pending.depth, ordering: .relaxed)
            }
            Self.complete(work.promises, with: written)
            metrics.measure(work.commit.events)
        }
    }

    /// What one write takes from the queue: one commit, and who waits for it.
    private struct Batch {
        var commit: UsageCommit
        var promises: [EventLoopPromise<Void>]

        var isEmpty: Bool { commit.isEmpty && promises.isEmpty }
    }

    /// Completes the promises of a commit, with one task per event loop: each loop is woken
    /// once per commit, however many of its calls waited for it.
    private static func complete(_ promises: [EventLoopPromise<Void>], with result: Result<Void, any Error>) {
        // As many loops as cores: found by comparing, not hashing.
        var byLoop: [(loop: any EventLoop, promises: [EventLoopPromise<Void>])] = []
        for promise in promises {
            let loop = promise.futureResult.eventLoop
            if let index = byLoop.firstIndex(where: { $0.loop === loop }) {
                byLoop[index].promises.append(promise)
            } else {
                byLoop.append((loop, [promise]))
            }
        }
        for (loop, waiting) in byLoop {
            loop.execute {
                for promise in waiting { promise.completeWith(result) }
            }
        }
    }

    /// Writes a batch in one transaction, trying three times.
    private func write(_ batch: Batch, timer: Timer) async -> Result<Void, any Error> {
        var attempt = 0
        while true {
            do {
                let started = ContinuousClock.now
                try await store.commitUsage(batch.commit)
                let duration = ContinuousClock.now - started
                timer.recordNanoseconds(duration.nanoseconds)
                logger.trace("usage batch written", metadata: ["events": "\(batch.commit.events.count)", "duration": "\(duration)"])
                return .success(())
            } catch {
                attempt += 1
                logger.error("usage events could not be written", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                if attempt >= 3 { return .failure(error) }
                try? await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
    }

    // MARK: Metrics

    /// The names of the metrics the recorder keeps (docs/operations.md describes them).
    enum MetricName {
        static let calls = "tollgate_proxy_calls_total"
        static let upstreamLatency = "tollgate_upstream_latency_seconds"
        static let queueDepth = "tollgate_usage_queue_depth"
        static let commitSeconds = "tollgate_usage_commit_seconds"
        static let dropped = "tollgate_usage_dropped_total"
        static let refusals = "tollgate_proxy_refusals_total"
    }

    /// Statuses Tollgate answers itself before forwarding a call (no credential, payment
    /// required, another product, quota used up): those calls never reached an upstream, so
    /// their time is no upstream latency.
    static let refusalsBeforeUpstream: Set<Int> = [401, 402, 403, 429]

    private struct CallLabels: Hashable {
        var product: String
        var endpoint: String
        var status: Int
    }

    /// The write loop's metrics. Making a metric (`Counter(label:dimensions:)`) goes through the
    /// metrics factory every time (locks, a look-up by name and labels); the loop makes each one
    /// once and keeps it. Used by the write loop alone.
    private struct MetricHandles {
        let queueDepth = Gauge(label: MetricName.queueDepth)
        let commitSeconds = Timer(label: MetricName.commitSeconds)
        let dropped = Counter(label: MetricName.dropped)
        private var calls: [CallLabels: Counter] = [:]
        private var latencies: [String: Timer] = [:]
        private var refusals: [Int: Counter] = [:]

        /// Adds a batch's gateway calls to `tollgate_proxy_calls_total` and their latencies to
        /// `tollgate_upstream_latency_seconds`. Labels are the product and endpoint identifiers
        /// and the status: never a consumer, a token or a path.
        mutating func measure(_ events: [UsageEvent]) {
            // Calls come in runs of equal labels: each run is counted once, and its product's
            // latency timer is looked up once.
            var run: (labels: CallLabels, count: Int64)?
            var latency: (product: String, timer: Timer)?
            for position in events.indices where events[position].source == .gateway {
                // Fields read where the event lies: the event is not copied with all its strings.
                let product = events[position].product ?? "none"
                let status = events[position].status ?? 0
                let labels = CallLabels(product: product, endpoint: events[position].endpoint ?? "unlisted", status: status)
                if run?.labels == labels {
                    run?.count += 1
                } else {
                    if let run { callCounter(run.labels).increment(by: run.count) }
                    run = (labels, 1)
                }
                if events[position].product != nil, let micros = events[position].latencyMicroseconds,
                   !refusalsBeforeUpstream.contains(status)
                {
                    if latency?.product != product { latency = (product, latencyTimer(product)) }
                    latency?.timer.recordNanoseconds(Int64(micros) * 1000)
                }
            }
            if let run { callCounter(run.labels).increment(by: run.count) }
        }

        mutating func count(dropped: Int, refusals: [Int: Int]) {
            if dropped > 0 { self.dropped.increment(by: Int64(dropped)) }
            for (status, count) in refusals { refusalCounter(status).increment(by: Int64(count)) }
        }

        private mutating func callCounter(_ labels: CallLabels) -> Counter {
            if let counter = calls[labels] { return counter }
            let counter = Counter(label: MetricName.calls, dimensions: [
                ("product", labels.product), ("endpoint", labels.endpoint), ("status", String(labels.status)),
            ])
            calls[labels] = counter
            return counter
        }

        private mutating func latencyTimer(_ product: String) -> Timer {
            if let timer = latencies[product] { return timer }
            let timer = Timer(label: MetricName.upstreamLatency, dimensions: [("product", product)])
            latencies[product] = timer
            return timer
        }

        private mutating func refusalCounter(_ status: Int) -> Counter {
            if let counter = refusals[status] { return counter }
            let counter = Counter(label: MetricName.refusals, dimensions: [("status", String(status))])
            refusals[status] = counter
            return counter
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
