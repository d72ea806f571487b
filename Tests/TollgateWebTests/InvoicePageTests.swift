import Foundation
import Testing
import TollgateCore
@testable import TollgateWeb

/// The portal's invoices page, rendered in memory.
@Suite("Portal invoices page")
struct InvoicePageTests {
    static func invoice(hostedURL: String?) -> Invoice {
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        var invoice = Invoice(
            id: "inv_1", subscription: "sub_1", customer: "cus_1", product: "shop", currency: "EUR",
            period: TimeSpan(start: start, end: start.addingTimeInterval(86_400 * 30)), status: .finalized, lines: [],
            createdAt: start)
        invoice.provider = ProviderInvoice(name: "stripe", invoice: "in_1", status: "open", hostedURL: hostedURL)
        return invoice
    }

    static func page(_ invoice: Invoice) -> String {
        let response = PageRenderer().page(
            "portal-invoices", chrome: Chrome(title: "Invoices", area: "Portal", stylesheet: "/_portal/style.css"),
            PortalApp.InvoicesView(invoices: [InvoiceView(invoice, href: "")]))
        return String(decoding: response.body, as: UTF8.self)
    }

    @Test("A Stripe invoice links to Stripe's hosted page; only an https:// one is linked")
    func hostedLink() {
        let linked = Self.page(Self.invoice(hostedURL: "https://invoice.stripe.com/i/acct_1/test_1"))
        #expect(linked.contains(#"<a href="https://invoice.stripe.com/i/acct_1/test_1" rel="noopener noreferrer">"#))
        let notHTTPS = Self.page(Self.invoice(hostedURL: "javascript:alert(1)"))
        #expect(!notHTTPS.contains("javascript:"))
        #expect(!notHTTPS.contains("View and pay this invoice"))
        #expect(!Self.page(Self.invoice(hostedURL: nil)).contains("View and pay this invoice"))
    }
}
