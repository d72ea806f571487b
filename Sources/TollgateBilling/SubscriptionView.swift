import Foundation
import TollgateCore
import TollgateStore

/// A subscription as the admin API and webhooks show it (never its token, unless just issued).
public enum SubscriptionView {
    public static func document(_ subscription: Subscription, period: TimeSpan, token: String? = nil) -> DocumentNode {
        var entries: [(String, DocumentNode)] = [
            ("id", .text(subscription.id)),
            ("customer", .text(subscription.customer)),
            ("plan", .text(subscription.plan)),
            ("product", .text(subscription.product)),
            ("status", .text(subscription.status.rawValue)),
        ]
        if let token { entries.append(("token", .text(token))) }
        entries += [
            ("started_at", .text(RFC3339.string(subscription.startedAt))),
            ("terminated_at", .text(subscription.terminatedAt.map(RFC3339.string))),
            ("current_period_start", .text(RFC3339.string(period.start))),
            ("current_period_end", .text(RFC3339.string(period.end))),
            ("created_at", .text(RFC3339.string(subscription.createdAt))),
        ]
        return .object(entries)
    }

    /// The period a subscription is in at `now`, or was in when it ended.
    public static func period(_ subscription: Subscription, unit: BillingPeriodUnit, now: Date = Date()) -> TimeSpan {
        BillingPeriods.period(containing: subscription.terminatedAt ?? now, unit: unit, anchor: subscription.startedAt)
    }

    /// The outbox entry of a lifecycle event, when the product has a webhook:
    /// `{"id","type","created_at","data": the subscription}`.
    public static func webhook(
        _ type: WebhookEventType, _ subscription: Subscription, unit: BillingPeriodUnit, target: WebhookTarget?
    ) -> WebhookDelivery? {
        guard let target else { return nil }
        let now = Date()
        return WebhookDelivery.event(
            type, id: RandomID.timeOrdered("evt", at: now), data: document(subscription, period: period(subscription, unit: unit, now: now)),
            product: subscription.product, subscription: subscription.id, target: target, at: now)
    }
}
