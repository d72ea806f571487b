import Foundation
import TollgateCore
import TollgateStore

/// What Stripe says about payments, applied to Tollgate (DESIGN §3.8), whoever heard it: the
/// webhook, the periodic sync, the end of a push, `POST /v1/invoices/{id}/pay`. A paid invoice
/// becomes `paid` and its subscription `active` again; a failed payment makes the subscription
/// `past_due`; `suspendOverdue` suspends what stayed unpaid past the grace. Each change of a
/// subscription's status sends `subscription.updated` and is told to `onChange` (the gateway).
/// Every operation may be repeated.
public struct StripePayments: Sendable {
    let store: TollgateStore
    let onChange: @Sendable ([DunningChange]) -> Void

    public init(store: TollgateStore, onChange: @escaping @Sendable ([DunningChange]) -> Void = { _ in }) {
        self.store = store
        self.onChange = onChange
    }

    /// Applies what a Stripe invoice's state means to the Tollgate invoice it was pushed from:
    /// `paid` → paid; `open` after a collection attempt → a failed payment.
    public func apply(_ view: StripeInvoiceView, to invoice: String, paymentFailed failed: Bool = false) async throws {
        if view.status == "paid" {
            try await paid(invoice, hostedURL: view.hostedURL)
        } else if failed || (view.status == "open" && view.attempted) {
            try await paymentFailed(invoice, status: view.status)
        }
    }

    public func paid(_ invoice: String, hostedURL: String? = nil) async throws {
        let webhook = try await subscriptionWebhook()
        let result = try await store.stripeInvoicePaid(invoice, hostedURL: hostedURL, webhook: webhook)
        if let change = result.change { onChange([change]) }
    }

    public func paymentFailed(_ invoice: String, status: String?, now: Date = Date()) async throws {
        let webhook = try await subscriptionWebhook()
        if let change = try await store.stripePaymentFailed(invoice, status: status, now: now, webhook: webhook) {
            onChange([change])
        }
    }

    /// Suspends every subscription past due for `grace` or longer at `now`.
    public func suspendOverdue(grace: TimeInterval, now: Date = Date()) async throws {
        guard try await store.hasOverdue(grace: grace, now: now) else { return }
        let webhook = try await subscriptionWebhook()
        let changes = try await store.suspendOverdue(grace: grace, now: now, webhook: webhook)
        if !changes.isEmpty { onChange(changes) }
    }

    /// Builds `subscription.updated` events for the products that have a webhook.
    private func subscriptionWebhook() async throws -> @Sendable (Subscription) -> WebhookDelivery? {
        let units = Dictionary(try await store.allPlans().map { ($0.value.id, $0.value.period) }, uniquingKeysWith: { a, _ in a })
        let targets = Dictionary(
            try await store.allProducts().compactMap { stored in stored.value.webhook.map { (stored.value.id, $0) } },
            uniquingKeysWith: { a, _ in a })
        return { subscription in
            SubscriptionView.webhook(
                .subscriptionUpdated, subscription, unit: units[subscription.plan] ?? .month, target: targets[subscription.product])
        }
    }
}
