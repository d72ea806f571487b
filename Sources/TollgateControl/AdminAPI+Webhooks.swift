import Foundation
import Hummingbird
import TollgateCore
import TollgateStore

extension AdminAPI {
    /// `/v1/webhooks/deliveries`: the outbox, newest first, and a way to send one again.
    func addWebhookRoutes(to table: inout AdminRouteTable) {
        let api = self
        table.add(AdminRoute(
            method: .get, path: "/v1/webhooks/deliveries",
            summary: "Webhook deliveries, newest first, with attempts, last status and error, next attempt",
            success: (200, "DeliveryPage"),
            query: [.oneOf("status", "only deliveries in this status", ["pending", "delivered", "failed"]),
                    .limit,
                    .init(name: "cursor", description: "next_cursor of the previous page (a number)",
                          schema: [("pattern", .text("^[0-9]{1,18}$"))])]
        ) { request, _ in
            let (cursor, limit) = try AdminAPI.pageParameters(request)
            var status: WebhookDelivery.Status?
            if let text = request.uri.queryParameters["status"] {
                status = WebhookDelivery.Status(rawValue: String(text))
                if status == nil {
                    throw APIError.invalid([DocumentProblem(path: "status", line: nil, message: "must be pending, delivered or failed")])
                }
            }
            var before: Int?
            if let cursor {
                before = Int(cursor)
                if before == nil { throw APIError.invalid([DocumentProblem(path: "cursor", line: nil, message: "is not a cursor of this list")]) }
            }
            let page = try await api.store.deliveries(status: status, before: before, limit: limit)
            return JSONResponse.page(page.items.map(AdminAPI.document), nextCursor: page.nextCursor.map(String.init))
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/webhooks/deliveries/{id}/retry",
            summary: "Send a pending or failed delivery again now (its give-up clock starts anew)", success: (200, "Delivery")
        ) { _, context in
            let delivery = try await api.store.retryDelivery(try AdminAPI.parameter(context, "id"), now: Date())
            return JSONResponse.make(AdminAPI.document(delivery))
        })
    }

    static func document(_ delivery: WebhookDelivery) -> DocumentNode {
        .object([
            ("id", .text(delivery.id)),
            ("type", .text(delivery.type)),
            ("product", .text(delivery.product)),
            ("subscription", .text(delivery.subscription)),
            ("url", .text(delivery.url)),
            ("status", .text(delivery.status.rawValue)),
            ("attempts", .integer(delivery.attempts)),
            ("last_status", delivery.lastStatus.map(DocumentNode.integer) ?? DocumentNode(.null)),
            ("last_error", .text(delivery.lastError)),
            ("next_attempt_at", .text(delivery.status == .pending ? RFC3339.string(delivery.nextAttemptAt) : nil)),
            ("created_at", .text(RFC3339.string(delivery.createdAt))),
            ("delivered_at", .text(delivery.deliveredAt.map(RFC3339.string))),
        ])
    }
}
