import Foundation
import TollgateBilling
import TollgateCore
import TollgateStore

extension ControlPlane {
    /// Finalizes, pays (through the billing provider: Stripe collects) or voids an invoice (finalizing queues `invoice.finalized` for the
    /// product's webhook), as `POST /v1/invoices/{id}/finalize|pay|void` does.
    public func setInvoiceStatus(_ id: String, to status: InvoiceStatus) async throws -> Invoice {
        // Paying goes through the billing provider: with Stripe, Stripe is asked to collect.
        if status == .paid { return try await billingProvider.collect(id) }
        var found: WebhookTarget?
        if status == .finalized, let invoice = try await store.invoice(id) {
            found = try await store.product(invoice.product)?.value.webhook
        }
        let target = found
        return try await store.setInvoiceStatus(id, to: status) { invoice in
            status == .finalized ? PeriodClose.finalizedEvent(invoice, target: target) : nil
        }
    }
}
