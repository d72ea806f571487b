import Foundation
import TollgateCore
import TollgateStore

/// Where invoices are collected (DESIGN §3.8): the built-in provider (invoices live in Tollgate
/// and are marked paid by hand) or Stripe (pushed, collected and paid there).
public protocol BillingProvider: Sendable {
    /// `POST /v1/invoices/{id}/pay`: collect the invoice now; returns it as it is afterwards.
    func collect(_ invoice: String) async throws -> Invoice
}

/// Why a provider could not collect an invoice; the HTTP edge maps it to its status.
public struct BillingError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, broadly.
    public enum Code: Sendable {
        /// The provider tried and the payment failed (402).
        case paymentFailed
        /// The invoice is not at the provider yet (409).
        case notPushed
        /// The provider could not be reached or refused the request (502).
        case providerUnavailable
    }

    public var code: Code
    public var message: String

    public var description: String { message }
}

/// Invoices live in Tollgate alone: collecting one records it as paid.
public struct BuiltInBillingProvider: BillingProvider {
    let store: TollgateStore

    public init(store: TollgateStore) {
        self.store = store
    }

    public func collect(_ invoice: String) async throws -> Invoice {
        try await store.setInvoiceStatus(invoice, to: .paid)
    }
}

/// Invoices are pushed to Stripe: collecting one asks Stripe to charge it now
/// (`POST /v1/invoices/{id}/pay`) and applies the outcome. An invoice Stripe does not hold
/// (total not above zero) is collected by the built-in provider.
public struct StripeBillingProvider: BillingProvider {
    let store: TollgateStore
    let client: StripeClient
    let payments: StripePayments

    public init(store: TollgateStore, client: StripeClient, payments: StripePayments) {
        self.store = store
        self.client = client
        self.payments = payments
    }

    public func collect(_ id: String) async throws -> Invoice {
        guard let invoice = try await store.invoice(id) else { throw StoreError.notFound("no invoice \"\(id)\"") }
        guard invoice.status == .finalized, invoice.total > 0 else {
            return try await BuiltInBillingProvider(store: store).collect(id)
        }
        guard let stripeInvoice = invoice.provider?.invoice, invoice.provider?.status != StripePushState.pushing.rawValue else {
            throw BillingError(code: .notPushed, message: "invoice \"\(id)\" is still being pushed to Stripe; try again shortly")
        }
        var declined: String?
        do {
            // A new key for every attempt: Stripe would answer a repeated key with the first attempt's outcome.
            _ = try await client.post(
                "/v1/invoices/\(stripeInvoice)/pay", StripeForm(), idempotencyKey: "tollgate-\(id)-collect-\(UUID().uuidString)")
        } catch let error as StripeError where error.isTransient {
            throw BillingError(code: .providerUnavailable, message: "Stripe could not collect invoice \"\(id)\": \(error)")
        } catch let error as StripeError {
            declined = error.message
        }
        let view: StripeInvoiceView?
        do {
            view = StripeInvoiceView(try await client.get("/v1/invoices/\(stripeInvoice)"))
        } catch {
            throw BillingError(code: .providerUnavailable, message: "Stripe invoice of \"\(id)\" cannot be read: \(error)")
        }
        guard let view else { throw BillingError(code: .providerUnavailable, message: "Stripe's invoice of \"\(id)\" is unreadable") }
        if view.status == "paid" {
            try await payments.paid(id, hostedURL: view.hostedURL)
        } else {
            try await payments.paymentFailed(id, status: view.status)
            throw BillingError(code: .paymentFailed, message: "Stripe could not collect invoice \"\(id)\": \(declined ?? "it is \(view.status ?? "unpaid")")")
        }
        guard let paid = try await store.invoice(id) else { throw StoreError.notFound("no invoice \"\(id)\"") }
        return paid
    }
}
