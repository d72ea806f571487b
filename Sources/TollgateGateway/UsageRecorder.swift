import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import TollgateCore
import TollgateStore

/// Writes usage events to the store in batches (group commit). A caller that needs durability
/// passes a promise, completed once its event's batch has committed; the hot path never waits
/// for a database round trip of its own, only for the next shared commit.
public final class UsageRecorder: Service, Sendable {
    private struct Pending {
        var events: [UsageEvent] = []
        var leases: [QuotaLease] = []
        var settlements: [QuotaLease] = []
        var webhooks: [WebhookDelivery] = []
        var promises: [EventLoopPromise<Void>] = []
        var writerWaiting: CheckedContinuation<Void, Never>?
        var stopping = false
    }

    private let store: TollgateStore
    private let logger: Logger
    private let state = NIOLockedValueBox(Pending())
    private let maxBatch: Int

    public init(store: TollgateStore, logger: Logger, maxBatch: Int = 4096) {
        self.store = store
        self.logger = logger
        self.maxBatch = maxBatch
    }

    /// Queues an event. With a promise, the promise succeeds when the event is durable, or fails
    /// if it could not be written.
    public func record(_ event: UsageEvent, durable promise: EventLoopPromise<Void>? = nil) {
        enqueue { pending in
            pending.events.append(event)
            if let promise { pending.promises.append(promise) }
        }
    }

    /// Queues quota leases to raise; `promise` succeeds once they are durable.
    public func raiseLeases(_ leases: [QuotaLease], durable promise: EventLoopPromise<Void>) {
        enqueue { pending in
            pending.leases += leases
            pending.promises.append(promise)
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

    private func enqueue(_ change: (inout Pending) -> Void) {
        let waiting: CheckedContinuation<Void, Never>? = state.withLockedValue { pending in
            change(&pending)
            let writer = pending.writerWaiting
            pending.writerWaiting = nil
            return writer
        }
        waiting?.resume()
    }

    /// Writes until shutdown, then drains what is queued and returns.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await writeLoop()
        } onGracefulShutdown: {
            let waiting = self.state.withLockedValue { pending in
                pending.stopping = true
                let writer = pending.writerWaiting
                pending.writerWaiting = nil
                return writer
            }
            waiting?.resume()
        }
    }

    private func writeLoop() async {
        while true {
            let (work, stop) = state.withLockedValue { pending in
                let taken = (Batch(events: pending.events, leases: pending.leases, settlements: pending.settlements,
                                   webhooks: pending.webhooks, promises: pending.promises), pending.stopping)
                pending.events = []
                pending.webhooks = []
                pending.leases = []
                pending.settlements = []
                pending.promises = []
                return taken
            }
            if work.isEmpty {
                if stop { return }
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLockedValue { pending in
                        if !pending.events.isEmpty || pending.stopping { return true }
                        pending.writerWaiting = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
                continue
            }
            await write(work)
        }
    }

    /// What one write takes from the queue.
    private struct Batch {
        var events: [UsageEvent]
        var leases: [QuotaLease]
        var settlements: [QuotaLease]
        var webhooks: [WebhookDelivery]
        var promises: [EventLoopPromise<Void>]

        var isEmpty: Bool {
            events.isEmpty && leases.isEmpty && settlements.isEmpty && webhooks.isEmpty && promises.isEmpty
        }
    }

    private func write(_ batch: Batch) async {
        let events = batch.events
        let promises = batch.promises
        var attempt = 0
        while true {
            do {
                let started = ContinuousClock.now
                defer {
                    logger.trace("usage batch written", metadata: [
                        "events": "\(events.count)", "duration": "\(ContinuousClock.now - started)",
                    ])
                }
                try await store.raiseQuotaLeases(batch.leases)
                try await store.settleQuotaLeases(batch.settlements)
                try await store.enqueueWebhooks(batch.webhooks)
                for start in stride(from: 0, to: events.count, by: maxBatch) {
                    try await store.insertEvents(Array(events[start..<min(start + maxBatch, events.count)]))
                }
                for promise in promises { promise.succeed() }
                return
            } catch {
                attempt += 1
                logger.error("usage events could not be written", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                if attempt >= 3 {
                    for promise in promises { promise.fail(error) }
                    return
                }
                try? await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
    }
}
