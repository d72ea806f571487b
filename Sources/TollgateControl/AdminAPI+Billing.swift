import Foundation
import Hummingbird
import TollgateBilling
import TollgateCore
import TollgateStore

extension AdminAPI {
    /// `/v1/billing/close` and `/v1/invoices`: closing periods on demand, reading and settling invoices.
    func addBillingRoutes(to table: inout AdminRouteTable) {
        let api = self
        table.add(AdminRoute(
            method: .post, path: "/v1/billing/close",
            summary: "Invoice every period that ended at or before `at` (default now); idempotent",
            success: (200, "CloseResult"), requestSchema: "CloseRequest", requestBodyRequired: false
        ) { request, _ in
            let body = try await AdminAPI.body(request, required: false)
            let reader = DocumentReader()
            guard let object = reader.object(body, at: "") else { throw APIError.invalid(reader.problems) }
            let now = Date()
            var at = now
            if let text = object.string("at", required: false) {
                if let date = RFC3339.date(text) {
                    if date > now { object.report("at", "must not lie in the future") } else { at = date }
                } else {
                    object.report("at", "must be an RFC 3339 time such as 2026-01-31T00:00:00Z")
                }
            }
            object.finish()
            try reader.throwIfProblems()
            let created = try await api.control.periodClose.close(at: at)
            return JSONResponse.make(.object([("invoices", DocumentNode(.list(created.map { .text($0) })))]))
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/invoices", summary: "List invoices, oldest first", success: (200, "InvoicePage"),
            query: [.init(name: "subscription", description: "only this subscription's"),
                    .init(name: "customer", description: "only this customer's"),
                    .oneOf("status", "only invoices in this status", ["draft", "finalized", "paid", "void"]),
                    .limit,
                    .cursor]
        ) { request, _ in
            let (cursor, limit) = try AdminAPI.pageParameters(request)
            let query = request.uri.queryParameters
            var status: InvoiceStatus?
            if let text = query["status"] {
                status = InvoiceStatus(rawValue: String(text))
                if status == nil {
                    throw APIError.invalid([DocumentProblem(path: "status", line: nil, message: "must be draft, finalized, paid or void")])
                }
            }
            let page = try await api.store.invoices(
                subscription: query["subscription"].map(String.init), customer: query["customer"].map(String.init), status: status,
                after: cursor, limit: limit)
            return JSONResponse.page(page.items.map(\.document), nextCursor: page.nextCursor)
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/invoices/{id}", summary: "Read an invoice with its lines", success: (200, "Invoice")
        ) { _, context in
            let id = try AdminAPI.parameter(context, "id")
            guard let invoice = try await api.store.invoice(id) else { throw StoreError.notFound("no invoice \"\(id)\"") }
            return JSONResponse.make(invoice.document)
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/invoices/{id}/pay",
            summary: "Collect a finalized invoice: with Stripe, Stripe charges it now (402 when the payment fails); else it is recorded as paid",
            success: (200, "Invoice"),
            extraErrors: [(402, "Stripe tried to collect and the payment failed (the reason is the message)"),
                          (502, "Stripe could not be reached")]
        ) { _, context in
            JSONResponse.make(try await api.control.billingProvider.collect(try AdminAPI.parameter(context, "id")).document)
        })
        for (action, status, summary) in [
            ("finalize", InvoiceStatus.finalized, "Finalize a draft (sends invoice.finalized)"),
            ("void", .void, "Void a draft or finalized invoice; its period is not invoiced again"),
        ] {
            table.add(AdminRoute(
                method: .post, path: "/v1/invoices/{id}/\(action)", summary: summary, success: (200, "Invoice")
            ) { _, context in
                let id = try AdminAPI.parameter(context, "id")
                // Only finalizing sends an event, so only then is the product's webhook looked up.
                var found: WebhookTarget?
                if status == .finalized, let invoice = try await api.store.invoice(id) {
                    found = try await api.store.product(invoice.product)?.value.webhook
                }
                let target = found
                let invoice = try await api.store.setInvoiceStatus(id, to: status) { invoice in
                    status == .finalized ? PeriodClose.finalizedEvent(invoice, target: target) : nil
                }
                return JSONResponse.make(invoice.document)
            })
        }
        table.add(AdminRoute(
            method: .get, path: "/v1/subscriptions/{id}/late-events",
            summary: "Events stored after their period was invoiced (kept and reported, never re-rated)",
            success: (200, "LateEventPage"),
            query: [.limit,
                    .cursor]
        ) { request, context in
            let id = try AdminAPI.parameter(context, "id")
            let (cursor, limit) = try AdminAPI.pageParameters(request)
            guard try await api.store.subscription(id) != nil else { throw StoreError.notFound("no subscription \"\(id)\"") }
            let page = try await api.store.lateEvents(subscription: id, after: cursor, limit: limit)
            return JSONResponse.page(page.items.map { event in
                .object([
                    ("id", .text(event.id)), ("name", .text(event.name)), ("source", .text(event.source)),
                    ("occurred_at", .text(RFC3339.string(event.occurredAt))), ("invoice", .text(event.invoice)),
                ])
            }, nextCursor: page.nextCursor)
        })
    }
}
