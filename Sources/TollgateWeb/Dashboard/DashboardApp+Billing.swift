import Foundation
import TollgateControl
import TollgateCore
import TollgateStore

extension DashboardApp {
    struct InvoicesView: Sendable {
        var filters: [PageLink]
        var invoices: [InvoiceView]
        var next: String?
    }

    func invoices(_ request: WebRequest, _ current: WebSessions.Current) async throws -> WebResponse {
        let status = request.query["status"].flatMap(InvoiceStatus.init(rawValue:))
        let page = try await store.invoices(status: status, after: request.query["after"], limit: 100)
        let filters = [PageLink(label: "all", href: Self.prefix + "/invoices", current: status == nil)]
            + InvoiceStatus.allCases.map {
                PageLink(label: $0.rawValue, href: Self.prefix + "/invoices?status=" + $0.rawValue, current: status == $0)
            }
        let next = page.nextCursor.map { cursor in
            Self.prefix + "/invoices?after=" + WebForm.encode(cursor) + (status.map { "&status=" + $0.rawValue } ?? "")
        }
        return renderer.page("dash-invoices", chrome: chrome("Invoices", current, section: "invoices"), InvoicesView(
            filters: filters, invoices: page.items.map { InvoiceView($0, href: Self.prefix + "/invoices/" + WebForm.encode($0.id)) },
            next: next))
    }

    struct InvoicePageView: Sendable {
        var invoice: InvoiceView
        var csrf: String
    }

    func invoice(_ id: String, _ current: WebSessions.Current, notice: String? = nil) async throws -> WebResponse {
        guard let invoice = try await store.invoice(id) else { throw StoreError.notFound("no invoice") }
        var chrome = chrome("Invoice " + id, current, section: "invoices")
        chrome.notice = notice
        return renderer.page("dash-invoice", chrome: chrome, InvoicePageView(
            invoice: InvoiceView(invoice, href: Self.prefix + "/invoices/" + WebForm.encode(id)), csrf: current.csrf))
    }

    func invoiceAction(_ id: String, _ action: String, _ current: WebSessions.Current) async throws -> WebResponse {
        let status: InvoiceStatus
        switch action {
        case "finalize": status = .finalized
        case "pay": status = .paid
        case "void": status = .void
        default: return notFound(current)
        }
        _ = try await control.setInvoiceStatus(id, to: status)
        return try await invoice(id, current, notice: Self.notices[status.rawValue])
    }

    struct DeliveryRow: Sendable {
        var id: String
        var type: String
        var subscription: String
        var url: String
        var status: String
        var attempts: Int
        var lastError: String
        var created: String
        var canRetry: Bool
    }

    struct WebhooksView: Sendable {
        var filters: [PageLink]
        var deliveries: [DeliveryRow]
        var next: String?
        var csrf: String
    }

    func webhooks(_ request: WebRequest, _ current: WebSessions.Current) async throws -> WebResponse {
        let status = request.query["status"].flatMap(WebhookDelivery.Status.init(rawValue:))
        let page = try await store.deliveries(status: status, before: request.query["before"].flatMap(Int.init), limit: 100)
        let filters = [PageLink(label: "all", href: Self.prefix + "/webhooks", current: status == nil)]
            + WebhookDelivery.Status.allCases.map {
                PageLink(label: $0.rawValue, href: Self.prefix + "/webhooks?status=" + $0.rawValue, current: status == $0)
            }
        let rows = page.items.map { delivery in
            DeliveryRow(
                id: delivery.id, type: delivery.type, subscription: delivery.subscription ?? "", url: delivery.url,
                status: delivery.status.rawValue, attempts: delivery.attempts,
                lastError: delivery.lastError ?? delivery.lastStatus.map { "HTTP \($0)" } ?? "", created: Format.time(delivery.createdAt),
                canRetry: delivery.status != .delivered)
        }
        let next = page.nextCursor.map { Self.prefix + "/webhooks?before=\($0)" + (status.map { "&status=" + $0.rawValue } ?? "") }
        var chrome = chrome("Webhooks", current, section: "webhooks")
        chrome.notice = Self.notices[request.query["done"] ?? ""]
        return renderer.page("dash-webhooks", chrome: chrome, WebhooksView(filters: filters, deliveries: rows, next: next, csrf: current.csrf))
    }
}
