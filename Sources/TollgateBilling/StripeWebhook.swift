import Foundation
import Logging
import TollgateCore
import TollgateStore

/// `POST /_webhooks/stripe` (DESIGN §3.8): checks `Stripe-Signature` (HMAC-SHA256 of `t.payload`
/// with the endpoint's secret, at most five minutes old) and applies `invoice.paid`,
/// `invoice.payment_succeeded` and `invoice.payment_failed` to the invoice pushed as that Stripe
/// invoice. Needs only the store, so gateway-only nodes answer it too.
public struct StripeWebhook: Sendable {
    let payments: StripePayments
    let store: TollgateStore
    let secret: String
    let logger: Logger

    public init(store: TollgateStore, secret: String, payments: StripePayments, logger: Logger) {
        self.store = store
        self.secret = secret
        self.payments = payments
        self.logger = logger
    }

    /// The answer to one delivery: a status and its `{"message"}`. 2xx tells Stripe to stop; a 5xx
    /// makes it deliver again later.
    public func handle(body: [UInt8], signature: String?, now: Date = Date()) async -> (status: Int, message: String) {
        guard let signature, StripeSignature.verify(header: signature, body: body, secret: secret, now: now) else {
            return (400, "invalid or missing Stripe-Signature")
        }
        guard let event = StripeEvent(json: body) else { return (400, "the body is not a Stripe event") }
        guard event.kind != .ignored, let view = event.invoice else { return (200, "ignored") }
        do {
            guard let invoice = try await store.invoice(stripeInvoice: view.id) else { return (200, "not a Tollgate invoice") }
            switch event.kind {
            case .invoicePaid: try await payments.paid(invoice.id, hostedURL: view.hostedURL)
            case .invoicePaymentFailed: try await payments.paymentFailed(invoice.id, status: view.status, now: now)
            case .ignored: break
            }
            return (200, "ok")
        } catch {
            logger.error("Stripe event could not be applied", metadata: ["event": "\(event.id)", "error": "\(type(of: error))"])
            return (500, "the event could not be applied; Stripe will deliver it again")
        }
    }
}
