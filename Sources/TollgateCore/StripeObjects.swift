import Foundation

/// The fields of a Stripe invoice object Tollgate reads. Every field is optional: Stripe-compatible
/// servers leave some out (localstripe has no `hosted_invoice_url`, and expands `charge`).
public struct StripeInvoiceView: Sendable, Equatable {
    public var id: String
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    public var status: String?
    public var hostedURL: String?
    public var total: Int?
    /// `metadata[tollgate_invoice]`, when set.
    public var tollgateInvoice: String?
    /// Whether collection was attempted (an `open` invoice that was attempted failed to be paid).
    public var attempted: Bool
    /// The invoice items on its lines (`invoice_item`, or `parent.invoice_item_details.invoice_item`
    /// in newer API versions) and their `metadata[tollgate_invoice]`.
    public var lineItems: [(item: String?, tollgateInvoice: String?)]

    public static func == (lhs: StripeInvoiceView, rhs: StripeInvoiceView) -> Bool {
        lhs.id == rhs.id && lhs.status == rhs.status && lhs.hostedURL == rhs.hostedURL && lhs.total == rhs.total
            && lhs.tollgateInvoice == rhs.tollgateInvoice && lhs.attempted == rhs.attempted
    }

    /// Reads an invoice object; nil when it has no `in_` id.
    public init?(_ node: DocumentNode) {
        guard let id = node["id"]?.scalarText, id.hasPrefix("in_") else { return nil }
        self.id = id
        status = node["status"]?.scalarText
        hostedURL = node["hosted_invoice_url"]?.scalarText
        total = node["total"]?.scalarText.flatMap { Int($0) }
        tollgateInvoice = node["metadata"]?["tollgate_invoice"]?.scalarText
        attempted = node["attempted"]?.scalarText == "true"
        var items: [(item: String?, tollgateInvoice: String?)] = []
        if case .list(let lines)? = node["lines"]?["data"]?.value {
            for line in lines {
                let item = line["invoice_item"]?.scalarText ?? line["parent"]?["invoice_item_details"]?["invoice_item"]?.scalarText
                items.append((item, line["metadata"]?["tollgate_invoice"]?.scalarText))
            }
        }
        lineItems = items
    }

    /// Whether this invoice holds any of `items`, or is marked as Tollgate's `invoice`.
    public func belongs(to invoice: String, items: [String]) -> Bool {
        if tollgateInvoice == invoice { return true }
        return lineItems.contains { line in
            line.tollgateInvoice == invoice || (line.item.map { items.contains($0) } ?? false)
        }
    }
}

/// A Stripe event as `POST /_webhooks/stripe` receives it (DESIGN §3.8).
public struct StripeEvent: Sendable {
    /// What an event means for Tollgate.
    public enum Kind: Sendable, Equatable {
        /// `invoice.paid` and `invoice.payment_succeeded`.
        case invoicePaid
        /// `invoice.payment_failed`.
        case invoicePaymentFailed
        /// Any other type: acknowledged and ignored.
        case ignored
    }

    public var id: String
    public var type: String
    public var invoice: StripeInvoiceView?

    public var kind: Kind {
        switch type {
        case "invoice.paid", "invoice.payment_succeeded": .invoicePaid
        case "invoice.payment_failed": .invoicePaymentFailed
        default: .ignored
        }
    }

    /// Reads an event body; nil when it is not a Stripe event (no `type`, or an invoice event
    /// without an invoice object).
    public init?(json body: some Collection<UInt8>) {
        guard let node = try? DocumentNode.parseJSON(body), let type = node["type"]?.scalarText else { return nil }
        self.id = node["id"]?.scalarText ?? ""
        self.type = type
        self.invoice = node["data"]?["object"].flatMap(StripeInvoiceView.init)
        if type.hasPrefix("invoice."), invoice == nil { return nil }
    }
}

/// Stripe's `Stripe-Signature: t=UNIX,v1=HEX(HMAC-SHA256(secret, "t.payload"))`: the scheme of
/// Tollgate's own webhooks, checked with a five-minute tolerance.
public enum StripeSignature {
    public static let header = "Stripe-Signature"
    public static let tolerance: TimeInterval = 300

    public static func verify(header: String, body: some DataProtocol, secret: String, now: Date) -> Bool {
        WebhookSignature.verify(header: header, body: body, secret: secret, now: now, tolerance: tolerance)
    }
}
