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
/// passes a promise, completed once its event's batch has committed, or (the proxy, for each
/// billable call) an observer told on its event loop (`UsageDurabilityObserver`); the hot path
/// never waits for a database round trip of its own, only for the next shared commit.
///
/// Commits are written by the recorder's write loop, or, with `commitsOnEventLoops` (SQLite),
/// by the event loops of the calls themselves: each loop queues its calls apart, and the first
/// call it queues after a commit schedules the next one on it, which runs once the loop has
/// handled the I/O at hand and so takes every call the loop queued meanwhile. That commit is
/// written there and then, if it needs no waiting but for another loop's commit
/// (`TollgateStore.commitUsageNow`), and its calls are answered without a thread hop; if it
/// would have to wait (the writer's turn is taken, a subscription's clock must be read) or it
/// fails, the write loop takes it over. The write loop also writes what comes without an
/// event loop (leases, webhook events, settlements) when rung.
///
/// The queue holds at most `capacity` events (queued or being written). When it is full a
/// billable event with a promise is refused (the promise fails at once) and an analytics event
/// is dropped and counted (`tollgate_usage_dropped_total`); `acceptsBillable` tells the proxy
/// beforehand. Metrics are computed here, per commit, after it is written: the proxy's event
/// loops only append to the queue.
public final class UsageRecorder: Service, Sendable {
    /// Usage waiting to be written, and who waits for it.
    private struct Queue: Sendable {
        var events: [UsageEvent] = []
        var leases: [QuotaLease] = []
        var settlements: [QuotaLease] = []
        var webhooks: [WebhookDelivery] = []
        /// Calls among `events` answered from shared quota holdings, by counter.
        var quotaCalls: [QuotaCounter: Int] = [:]
        var waiters: [UsageWaiter] = []

        mutating func append(_ event: consuming UsageEvent, quota: [QuotaCounter], waiter: UsageWaiter?) {
            events.append(event)
            for counter in quota { quotaCalls[counter, default: 0] += 1 }
            if let waiter { waiters.append(waiter) }
        }

        /// Moves everything into `batch`.
        mutating func move(into batch: inout Batch) {
            let count = events.count
            if batch.commit.events.isEmpty {
                batch.commit.events = events
            } else {
                batch.commit.events += events
            }
            // Room for as many as were taken: the calls of the next batch are appended without regrowing.
            events = []
            if count > 0 { events.reserveCapacity(max(16, count)) }
            batch.commit.raisedLeases += leases
            batch.commit.settledLeases += settlements
            batch.commit.webhooks += webhooks
            for (counter, calls) in quotaCalls { batch.quotaCalls[counter, default: 0] += calls }
            batch.waiters += waiters
            leases = []
            settlements = []
            webhooks = []
            quotaCalls = [:]
            waiters = []
        }

        /// Puts a batch that was not written back in front of what was queued since.
        mutating func putBack(_ batch: Batch) {
            events = batch.commit.events + events
            leases = batch.commit.raisedLeases + leases
            settlements = batch.commit.settledLeases + settlements
            webhooks = batch.commit.webhooks + webhooks
            for (counter, calls) in batch.quotaCalls { quotaCalls[counter, default: 0] += calls }
            waiters = batch.waiters + waiters
        }
    }

    /// The queue of one event loop's calls (`commitsOnEventLoops`).
    private struct LoopQueue: Sendable {
        let loop: any EventLoop
        var queue = Queue()
        /// The loop is to write a commit of its queue.
        var scheduled = false
    }

    private struct Pending: Sendable {
        /// What is written by the write loop or with the next commit of an event loop.
        var shared = Queue()
        /// With `commitsOnEventLoops`: the calls of each event loop, written by that loop.
        var loops: [LoopQueue] = []
        /// Events in the queues.
        var queued = 0
        /// Events taken by a commit and not yet written.
        var inFlight = 0
        /// Analytics events dropped since the write loop last looked.
        var dropped = 0
        /// Refusals counted since the write loop last looked, by status.
        var refusals: [Int: Int] = [:]
        var stopping = false
        /// The write loop has returned: nothing queued from now on would be written.
        var stopped = false

        var depth: Int { queued + inFlight }

        /// Takes what is queued for one commit: `loop`'s calls and the shared queue, or, for
        /// nil (the write loop), everything. Its events count as in flight until written.
        mutating func take(for loop: (any EventLoop)?, quotaNode: String?) -> Batch {
            var batch = Batch()
            for index in loops.indices where loop == nil || loops[index].loop === loop {
                if loop != nil { loops[index].scheduled = false }
                loops[index].queue.move(into: &batch)
            }
            shared.move(into: &batch)
            if !batch.quotaCalls.isEmpty, let quotaNode { batch.commit.quotaUse = QuotaUse(node: quotaNode, calls: batch.quotaCalls) }
            batch.taken = batch.commit.events.count
            queued -= batch.taken
            inFlight += batch.taken
            return batch
        }

        /// A batch taken was written (or given up): its events leave the queue.
        mutating func finished(_ batch: Batch) {
            inFlight -= batch.taken
        }

        /// A batch taken was not written: it goes back, for the write loop (its events without
        /// repeats of a key, if a commit left them out).
        mutating func putBack(_ batch: Batch) {
            inFlight -= batch.taken
            queued += batch.commit.events.count
            shared.putBack(batch)
        }

        /// Counts dropped events and refusals, as reported at a commit, and starts counting again.
        mutating func takeCounts() -> (dropped: Int, refusals: [Int: Int]) {
            defer {
                dropped = 0
                refusals = [:]
            }
            return (dropped, refusals)
        }
    }

    private let store: TollgateStore
    private let logger: Logger
    private let state = NIOLockedValueBox(Pending())
    /// The metrics written at each commit, by whichever thread commits.
    private let metrics = NIOLockedValueBox(MetricHandles())
    /// Whether event loops write commits themselves (see the type's description).
    let commitsOnEventLoops: Bool
    /// Event loops write their commits one at a time: a loop that finds another's commit under
    /// way waits for it (a fraction of a millisecond) rather than handing its own over.
    private let loopCommits = NIOLock()
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

    /// `commitsOnEventLoops`: event loops write their calls' commits themselves when they can
    /// (SQLite; see the type's description).
    public init(
        store: TollgateStore, logger: Logger, capacity: Int = 100_000, quotaNode: String? = nil, commitsOnEventLoops: Bool = false
    ) {
        precondition(capacity > 0, "the usage queue needs room for at least one event")
        self.store = store
        self.commitsOnEventLoops = commitsOnEventLoops
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
        /// Queued for the write loop.
        case queued
        /// Queued, and this caller's event loop is to write the next commit.
        case commitScheduled
        /// Queued for a commit an event loop is to write.
        case joinedCommit
        case refused(UsageQueueError)
        case dropped
    }

    /// Queues an event. With a promise, the promise succeeds when the event is durable, or fails
    /// if it could not be written, or at once (`UsageQueueError`) when the queue is full or the
    /// recorder has stopped. Without a promise, a non-billable event finding the queue full is
    /// dropped and counted; a billable one is still queued (the proxy asks `acceptsBillable` and
    /// passes a promise with every billable event, so that never grows the queue far).
    /// `quota` names the shared quota counters the call was answered from: they count it in the
    /// same transaction as its event. `eventLoop` is the caller's (a promise's loop is known):
    /// with `commitsOnEventLoops`, the commit may be written there.
    public func record(
        _ event: consuming UsageEvent, durable promise: EventLoopPromise<Void>? = nil, quota: [QuotaCounter] = [],
        on eventLoop: (any EventLoop)? = nil
    ) {
        record(event, waiter: promise.map(UsageWaiter.promise), quota: quota, on: eventLoop)
    }

    /// Queues a billable call's event, as `record(_:durable:quota:on:)` with a promise does, and
    /// tells `observer` on its event loop (the caller's) once the event is durable or could not
    /// be written: `usageResolved(for: call, _:)`. The proxy's way, with no future and no
    /// callback allocated per call.
    func record(
        _ event: consuming UsageEvent, observedBy observer: any UsageDurabilityObserver, call: AnyObject,
        quota: [QuotaCounter], on eventLoop: any EventLoop
    ) {
        record(event, waiter: .call(NIOLoopBound((observer, call), eventLoop: eventLoop)), quota: quota, on: eventLoop)
    }

    private func record(_ event: consuming UsageEvent, waiter: UsageWaiter?, quota: [QuotaCounter], on eventLoop: (any EventLoop)?) {
        let capacity = self.capacity
        // The loop that tells the waiter writes the commit, so that it needs no hop.
        let committer = commitsOnEventLoops ? waiter?.eventLoop ?? eventLoop : nil
        let billable = event.billable
        // Moved into the queue, not copied with all its strings (a closure cannot consume a capture).
        var moving: UsageEvent? = consume event
        let admission: Admission = state.withLockedValue { pending in
            if pending.stopped { return .refused(UsageQueueError(code: .stopped, capacity: capacity)) }
            if pending.depth >= capacity {
                if waiter != nil { return .refused(UsageQueueError(code: .full, capacity: capacity)) }
                if !billable {
                    pending.dropped += 1
                    return .dropped
                }
            }
            pending.queued += 1
            depth.store(pending.depth, ordering: .relaxed)
            guard let committer else {
                pending.shared.append(moving.take()!, quota: quota, waiter: waiter)
                return .queued
            }
            // As many queues as event loops: found by comparing, not hashing.
            let index = pending.loops.firstIndex { $0.loop === committer } ?? {
                pending.loops.append(LoopQueue(loop: committer))
                return pending.loops.count - 1
            }()
            pending.loops[index].queue.append(moving.take()!, quota: quota, waiter: waiter)
            if pending.loops[index].scheduled { return .joinedCommit }
            pending.loops[index].scheduled = true
            return .commitScheduled
        }
        switch admission {
        case .queued, .dropped: ring.yield()
        case .joinedCommit: break
        case .commitScheduled:
            if let committer { committer.execute { self.commitOnEventLoop(committer) } }
        case .refused(let error): waiter?.resolve(.failure(error))
        }
    }

    /// Writes a commit of `loop`'s calls (and of the shared queue) on `loop`, if it can be
    /// written without waiting for anything but another loop's commit; otherwise (or if it
    /// fails) puts it back for the write loop.
    private func commitOnEventLoop(_ loop: any EventLoop) {
        var (batch, counts) = state.withLockedValue { pending in
            (pending.take(for: loop, quotaNode: quotaNode), pending.takeCounts())
        }
        metrics.withLockedValue { $0.count(dropped: counts.dropped, refusals: counts.refusals) }
        guard !batch.isEmpty else { return }
        let result: Result<Bool, any Error>
        let started = ContinuousClock.now
        do {
            result = .success(try loopCommits.withLock { try store.commitUsageNow(&batch.commit) })
        } catch {
            result = .failure(error)
        }
        guard case .success(true) = result else {
            if case .failure(let error) = result {
                logger.error("usage events could not be written; the write loop tries again", metadata: ["error": "\(error)"])
            }
            state.withLockedValue { $0.putBack(batch) }
            ring.yield()
            return
        }
        let duration = ContinuousClock.now - started
        let stopping = state.withLockedValue { pending in
            pending.finished(batch)
            depth.store(pending.depth, ordering: .relaxed)
            return pending.stopping
        }
        Self.complete(batch.waiters, with: .success(()))
        metrics.withLockedValue { metrics in
            metrics.commitSeconds.recordNanoseconds(duration.nanoseconds)
            metrics.measure(batch.commit.events)
        }
        // The write loop, stopping, waits for commits in flight before it returns.
        if stopping { ring.yield() }
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
            pending.shared.leases += leases
            pending.shared.waiters.append(.promise(promise))
        }) else {
            promise.fail(UsageQueueError(code: .stopped, capacity: capacity))
            return
        }
    }

    /// Queues webhook events (written with the next batch; an id already in the outbox is ignored).
    public func enqueueWebhooks(_ deliveries: [WebhookDelivery]) {
        enqueue { $0.shared.webhooks += deliveries }
    }

    /// Queues the exact counts of quota counters (at a graceful shutdown, after the last call).
    public func settleLeases(_ leases: [QuotaLease]) {
        enqueue { $0.shared.settlements += leases }
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
        while true {
            let (work, counts, stop, depthNow) = state.withLockedValue { pending in
                let taken = pending.take(for: nil, quotaNode: quotaNode)
                // Nothing queued after this would be written: later callers are told so. A
                // commit an event loop is writing may still be put back: it is waited for.
                let stop = pending.stopping && taken.isEmpty && pending.inFlight == 0
                if stop { pending.stopped = true }
                depth.store(pending.depth, ordering: .relaxed)
                return (taken, pending.takeCounts(), stop, pending.depth)
            }
            metrics.withLockedValue { metrics in
                metrics.queueDepth.record(depthNow)
                metrics.count(dropped: counts.dropped, refusals: counts.refusals)
            }
            if work.isEmpty {
                if stop { return }
                // Everything queued before the last ring was taken above; a ring since then is kept.
                if await rings.next() == nil {
                    // Cancelled (no graceful shutdown): write what is queued, then stop.
                    state.withLockedValue { $0.stopping = true }
                }
                continue
            }
            let written = await write(work)
            // The queue has room again before any caller learns its event was written.
            state.withLockedValue { pending in
                pending.finished(work)
                depth.store(pending.depth, ordering: .relaxed)
            }
            Self.complete(work.waiters, with: written)
            metrics.withLockedValue { $0.measure(work.commit.events) }
        }
    }

    /// What one write takes from the queue: one commit, and who waits for it.
    private struct Batch: Sendable {
        var commit = UsageCommit()
        /// How many events were taken from the queue for it (a commit may leave repeats out).
        var taken = 0
        /// The calls among the events answered from shared quota holdings (`commit.quotaUse`).
        var quotaCalls: [QuotaCounter: Int] = [:]
        var waiters: [UsageWaiter] = []

        var isEmpty: Bool { commit.isEmpty && waiters.isEmpty }
    }

    /// Tells the waiters of a commit: those of the calling loop at once, the others with one
    /// task per event loop (each loop is woken once per commit, however many of its calls
    /// waited for it).
    private static func complete(_ waiters: [UsageWaiter], with result: Result<Void, any Error>) {
        // As many loops as cores: found by comparing, not hashing.
        var elsewhere: [(loop: any EventLoop, waiters: [UsageWaiter])] = []
        for waiter in waiters {
            let loop = waiter.eventLoop
            if loop.inEventLoop {
                waiter.resolve(result)
            } else if let index = elsewhere.firstIndex(where: { $0.loop === loop }) {
                elsewhere[index].waiters.append(waiter)
            } else {
                elsewhere.append((loop, [waiter]))
            }
        }
        for (loop, waiting) in elsewhere {
            loop.execute {
                for waiter in waiting { waiter.resolve(result) }
            }
        }
    }

    /// Writes a batch in one transaction, trying three times.
    private func write(_ batch: Batch) async -> Result<Void, any Error> {
        var attempt = 0
        while true {
            do {
                let started = ContinuousClock.now
                try await store.commitUsage(batch.commit)
                let duration = ContinuousClock.now - started
                metrics.withLockedValue { $0.commitSeconds.recordNanoseconds(duration.nanoseconds) }
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
    /// once and keeps it. Used under the recorder's lock by whichever thread commits.
    private struct MetricHandles: Sendable {
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

/// Told on its event loop whether the usage event of one of its calls became durable
/// (`UsageRecorder.record(_:observedBy:call:quota:on:)`).
protocol UsageDurabilityObserver: AnyObject {
    func usageResolved(for call: AnyObject, _ result: Result<Void, any Error>)
}

/// Who waits for usage to be durable: a promise, or a call whose observer is told directly on
/// its event loop.
enum UsageWaiter: Sendable {
    case promise(EventLoopPromise<Void>)
    /// The observer and its call, used only on their event loop.
    case call(NIOLoopBound<(observer: any UsageDurabilityObserver, call: AnyObject)>)

    var eventLoop: any EventLoop {
        switch self {
        case .promise(let promise): promise.futureResult.eventLoop
        case .call(let bound): bound.eventLoop
        }
    }

    /// Completes the promise or tells the observer; on the waiter's event loop.
    func resolve(_ result: Result<Void, any Error>) {
        switch self {
        case .promise(let promise):
            promise.completeWith(result)
        case .call(let bound):
            let (observer, call) = bound.value
            observer.usageResolved(for: call, result)
        }
    }
}
