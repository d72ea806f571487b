import Foundation
import Hummingbird
import TollgateBilling
import TollgateCore
import TollgateGateway
import TollgateStore

extension AdminAPI {
    func addSubscriptionRoutes(to table: inout AdminRouteTable) {
        let api = self
        table.add(AdminRoute(
            method: .post, path: "/v1/subscriptions",
            summary: "Subscribe a customer to a plan; the answer holds the token, shown only this once",
            success: (201, "SubscriptionWithToken"), requestSchema: "SubscriptionRequest"
        ) { request, _ in
            let body = try await AdminAPI.body(request)
            let reader = DocumentReader()
            guard let object = reader.object(body, at: "") else { throw APIError.invalid(reader.problems) }
            let id = object.string("id", required: false)
            if let id, !Identifier.isValid(id) { object.report("id", Identifier.rule) }
            let customer = object.string("customer")
            let plan = object.string("plan")
            var startedAt: Date?
            if let text = object.string("started_at", required: false) {
                startedAt = RFC3339.date(text)
                if startedAt == nil { object.report("started_at", "must be an RFC 3339 time such as 2026-01-31T00:00:00Z") }
            }
            object.finish()
            try reader.throwIfProblems()
            guard let customer, let plan else { throw APIError.invalid(reader.problems) }
            let issued = try await api.control.subscribe(customer: customer, plan: plan, startedAt: startedAt, id: id)
            return try await api.answer(issued.subscription, token: issued.token, status: .created)
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/subscriptions", summary: "List subscriptions", success: (200, "SubscriptionPage"),
            query: [.init(name: "customer", description: "only this customer's"),
                    .limit,
                    .cursor]
        ) { request, _ in
            let (cursor, limit) = try AdminAPI.pageParameters(request)
            let customer = request.uri.queryParameters["customer"].map(String.init)
            let page = try await api.store.subscriptions(customer: customer, after: cursor, limit: limit)
            var items: [DocumentNode] = []
            for subscription in page.items { items.append(try await api.document(subscription)) }
            return JSONResponse.page(items, nextCursor: page.nextCursor)
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/subscriptions/{id}", summary: "Read a subscription (never its token)",
            success: (200, "Subscription")
        ) { _, context in
            let id = try AdminAPI.parameter(context, "id")
            guard let subscription = try await api.store.subscription(id) else {
                throw StoreError.notFound("no subscription \"\(id)\"")
            }
            return try await api.answer(subscription)
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/subscriptions/{id}/terminate",
            summary: "Terminate a subscription; its token stops working at once", success: (200, "Subscription")
        ) { _, context in
            try await api.answer(try await api.control.terminate(try AdminAPI.parameter(context, "id")))
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/subscriptions/{id}/tokens",
            summary: "Rotate the token: the old one stops working, the new one is in this answer only",
            success: (200, "SubscriptionWithToken")
        ) { _, context in
            let issued = try await api.control.rotateToken(try AdminAPI.parameter(context, "id"))
            return try await api.answer(issued.subscription, token: issued.token)
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/subscriptions/{id}/change-plan",
            summary: "Move the subscription to another plan of the same product", success: (200, "Subscription"),
            requestSchema: "ChangePlanRequest"
        ) { request, context in
            let body = try await AdminAPI.body(request)
            let reader = DocumentReader()
            guard let object = reader.object(body, at: "") else { throw APIError.invalid(reader.problems) }
            let plan = object.string("plan")
            object.finish()
            try reader.throwIfProblems()
            guard let plan else { throw APIError.invalid(reader.problems) }
            return try await api.answer(try await api.control.changePlan(try AdminAPI.parameter(context, "id"), to: plan))
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/customers/{id}/portal-sessions",
            summary: "A one-time sign-in link to the consumer portal for this customer: it works once, within the hour",
            success: (201, "PortalSession"), requestBodyRequired: false
        ) { _, context in
            let link = try await api.control.createPortalLink(customer: try AdminAPI.parameter(context, "id"))
            return JSONResponse.make(
                .object([("url", .text(link.url)), ("expires_at", .text(RFC3339.string(link.expiresAt)))]), status: .created)
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/subscriptions/{id}/quota",
            summary: "Each prepaid quota of the subscription's plan in its current window", success: (200, "QuotaList")
        ) { _, context in
            try await api.quota(id: try AdminAPI.parameter(context, "id"))
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/subscriptions/{id}/usage",
            summary: "Billable calls per endpoint and meter values over a range (default: the current period)",
            success: (200, "Usage"),
            query: [.init(name: "from", description: "RFC 3339 start (inclusive)", schema: [("format", .text("date-time"))]),
                    .init(name: "to", description: "RFC 3339 end (exclusive)", schema: [("format", .text("date-time"))]),
                    .oneOf("granularity", "hour, day or month: adds a series", ["hour", "day", "month"])]
        ) { request, context in
            try await api.usage(request, id: try AdminAPI.parameter(context, "id"))
        })
    }

    func quota(id: String) async throws -> Response {
        guard let subscription = try await store.subscription(id) else { throw StoreError.notFound("no subscription \"\(id)\"") }
        guard let plan = try await store.plan(subscription.plan)?.value else { throw StoreError.notFound("no plan \"\(subscription.plan)\"") }
        let states = try await control.quotaStates(subscription, plan: plan)
        return JSONResponse.make(DocumentNode(.list(states.map { state in
            .object([
                ("endpoint", .text(state.limit.endpoint)),
                ("window", .text(state.limit.window.rawValue)),
                ("limit", .integer(state.limit.quota)),
                ("used", .integer(min(state.used, state.limit.quota))),
                ("remaining", .integer(state.remaining)),
                ("reset_at", .text(RFC3339.string(state.limit.span.end))),
            ])
        })))
    }

    /// The billing period a subscription is in now (or was in when it ended).
    func currentPeriod(_ subscription: Subscription) async throws -> TimeSpan {
        SubscriptionView.period(subscription, unit: try await store.plan(subscription.plan)?.value.period ?? .month)
    }

    func document(_ subscription: Subscription, token: String? = nil) async throws -> DocumentNode {
        SubscriptionView.document(subscription, period: try await currentPeriod(subscription), token: token)
    }

    func answer(_ subscription: Subscription, token: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        JSONResponse.make(try await document(subscription, token: token), status: status)
    }
}
