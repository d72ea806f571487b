/// Where an invoice is collected when a billing provider other than the built-in one holds it
/// (DESIGN §3.8): `{"name": "stripe", "invoice": "in_...", "status": ..., "hosted_url"?}`.
public struct ProviderInvoice: Sendable, Equatable {
    public var name: String
    /// The provider's invoice id, once created.
    public var invoice: String?
    /// `pushing` until the push is done, then the provider's status of the invoice.
    public var status: String
    public var hostedURL: String?
    /// Why the last push attempt failed (free of secrets), while it has not succeeded.
    public var lastError: String?

    public init(name: String, invoice: String?, status: String, hostedURL: String? = nil, lastError: String? = nil) {
        self.name = name
        self.invoice = invoice
        self.status = status
        self.hostedURL = hostedURL
        self.lastError = lastError
    }

    public var document: DocumentNode {
        var entries: [(String, DocumentNode)] = [("name", .text(name)), ("invoice", .text(invoice)), ("status", .text(status))]
        if let hostedURL { entries.append(("hosted_url", .text(hostedURL))) }
        if let lastError { entries.append(("last_error", .text(lastError))) }
        return .object(entries)
    }
}
