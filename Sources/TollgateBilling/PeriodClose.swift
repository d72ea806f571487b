import Foundation
import Logging
import ServiceLifecycle
import TollgateCore
import TollgateStore

/// Closes billing periods into invoices (DESIGN §3.7): for every subscription, each period that
/// ended is rated from its meters' aggregates and invoiced once. The database holds the
/// guarantee (one invoice per subscription and period end), so closes may race, repeat, or die
/// half-way and resume: nothing is invoiced twice.
public struct PeriodClose: Sendable {
    public let store: TollgateStore
    /// Leave new invoices as drafts for review instead of finalizing them.
    public var drafts: Bool
    /// Subscriptions read and written per transaction.
    public var pageSize = 500

    public init(store: TollgateStore, drafts: Bool = false) {
        self.store = store
        self.drafts = drafts
    }

    /// Invoices every period that ended at least `grace` before `at` (and every subscription's
    /// first invoice once it started); returns the ids of the invoices created by this call.
    public func close(at: Date, grace: TimeInterval = 0) async throws -> [String] {
        let plans = Dictionary(try await store.allPlans().map { ($0.value.id, $0.value) }, uniquingKeysWith: { a, _ in a })
        let meters = Dictionary(try await store.allMeters().map { ($0.value.id, $0.value) }, uniquingKeysWith: { a, _ in a })
        let targets = Dictionary(
            try await store.allProducts().compactMap { product in product.value.webhook.map { (product.value.id, $0) } },
            uniquingKeysWith: { a, _ in a })
        var created: [String] = []
        var cursor = ""
        while true {
            let page = try await store.billingCandidates(after: cursor, limit: pageSize)
            // The page's due periods first, so that their meters are read together.
            var due: [(subscription: Subscription, timeline: BillingTimeline, period: TimeSpan)] = []
            var requests: [MeterValuesRequest] = []
            for candidate in page.items {
                let entries = candidate.plans.compactMap { entry in plans[entry.plan].map { BillingTimeline.Entry(from: entry.from, plan: $0) } }
                guard entries.count == candidate.plans.count else { continue }
                let subscription = candidate.subscription
                let timeline = BillingTimeline(startedAt: subscription.startedAt, terminatedAt: subscription.terminatedAt, plans: entries)
                for period in Invoicing.duePeriods(timeline, invoicedThrough: candidate.invoicedThrough, at: at, grace: grace) {
                    due.append((subscription, timeline, period))
                    requests.append(MeterValuesRequest(
                        subscription: subscription.id, span: period,
                        meters: Invoicing.meters(timeline, period: period).compactMap { meters[$0] }))
                }
            }
            let usages = try await store.meterValues(requests)
            var invoices: [(invoice: Invoice, webhook: WebhookDelivery?)] = []
            for ((subscription, timeline, period), usage) in zip(due, usages) {
                let now = Date()
                let invoice = Invoice(
                    id: RandomID.timeOrdered("inv", at: now), subscription: subscription.id, customer: subscription.customer,
                    product: subscription.product, currency: timeline.plans[0].plan.currency, period: period,
                    status: drafts ? .draft : .finalized, lines: Invoicing.lines(timeline, period: period, usage: usage),
                    createdAt: now, finalizedAt: drafts ? nil : now)
                invoices.append((invoice, drafts ? nil : Self.finalizedEvent(invoice, target: targets[invoice.product])))
            }
            created += try await store.insertInvoices(invoices)
            guard let next = page.nextCursor else { break }
            cursor = next
        }
        return created
    }

    /// The `invoice.finalized` webhook event, when the product has a webhook.
    public static func finalizedEvent(_ invoice: Invoice, target: WebhookTarget?) -> WebhookDelivery? {
        guard let target else { return nil }
        let now = Date()
        return WebhookDelivery.event(
            .invoiceFinalized, id: RandomID.timeOrdered("evt", at: now), data: invoice.document, product: invoice.product,
            subscription: invoice.subscription, target: target, at: now)
    }
}

/// Runs `PeriodClose` on a schedule: each period is closed once its grace for late events has passed.
///
/// A class: ServiceLifecycle prints its services, and printing a struct reflects over every
/// stored property, down into the store's locks.
public final class BillingService: Service, Sendable, CustomStringConvertible {
    /// Settings of the schedule.
    public struct Configuration: Sendable {
        /// How long after a period ends its late events are still waited for.
        public var grace: Duration = .seconds(3600)
        /// How often ended periods are looked for; nil: only on demand (`POST /v1/billing/close`),
        /// e.g. on all but one of several nodes.
        public var interval: Duration? = .seconds(60)
        public var drafts = false

        public init() {}
    }

    let close: PeriodClose
    let configuration: Configuration
    let logger: Logger

    public init(store: TollgateStore, configuration: Configuration = Configuration(), logger: Logger) {
        self.close = PeriodClose(store: store, drafts: configuration.drafts)
        self.configuration = configuration
        self.logger = logger
    }

    public var description: String { "BillingService" }

    public func run() async throws {
        guard let interval = configuration.interval else {
            try? await gracefulShutdown()
            return
        }
        let grace = TimeInterval(configuration.grace.components.seconds)
        try? await cancelWhenGracefulShutdown {
            while true {
                do {
                    let created = try await self.close.close(at: Date(), grace: grace)
                    if !created.isEmpty { self.logger.info("periods closed", metadata: ["invoices": "\(created.count)"]) }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("closing periods failed; trying again later", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
