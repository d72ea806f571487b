import Crypto
import Foundation
import TollgateCore
import TollgateStore

/// The `quota.exhausted` webhook event: sent when a call uses up a limit, once per window.
enum QuotaExhaustion {
    static func webhook(_ limit: AppliedLimit, consumer: Consumer, target: WebhookTarget, at now: Date) -> WebhookDelivery {
        // The id is derived from the counter, so the outbox keeps one event per window even if the
        // count is reached again after a restart.
        let counter = [consumer.subscription, consumer.plan, limit.endpoint ?? "", limit.window.rawValue,
                       String(Int(limit.span.start.timeIntervalSince1970))].joined(separator: "|")
        let id = "evt_quota_" + Hex.encode(SHA256.hash(data: Data(counter.utf8)).prefix(12))
        let data = DocumentNode.object([
            ("subscription", .text(consumer.subscription)),
            ("endpoint", .text(limit.endpoint)),
            ("window", .text(limit.window.rawValue)),
            ("limit", .integer(limit.quota)),
        ])
        return WebhookDelivery.event(
            .quotaExhausted, id: id, data: data, product: consumer.product, subscription: consumer.subscription, target: target,
            at: now)
    }
}
