import Foundation
import Testing
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// The Stripe provider's records (DESIGN §3.8), the same on SQLite and PostgreSQL: pushes step by
/// step, customers' Stripe ids, payments and dunning.
@Suite("Stripe store")
struct StripeStoreTests {
    /// A customer, a subscription and a finalized invoice of 12.00 EUR; returns the invoice.
    static func seed(_ store: TollgateStore) async throws -> Invoice {
        try await StoreConformanceTests.seedCatalog(store)
        try await store.saveCustomer(Customer(id: "acme", name: "Acme", createdAt: Date()), mode: .create)
        let subscription = Subscription(
            id: "sub_1", customer: "acme", plan: "maps-basic", product: "maps", status: .active, startedAt: Date(), createdAt: Date())
        try await store.createSubscription(subscription, tokenHash: APIToken.hash(APIToken.generate()))
        let span = TimeSpan(start: Date(timeIntervalSince1970: 1_790_000_000), end: Date(timeIntervalSince1970: 1_790_000_000))
        let invoice = Invoice(
            id: "inv_1", subscription: "sub_1", customer: "acme", product: "maps", currency: "EUR", period: span, status: .finalized,
            lines: [InvoiceLine(description: "Basic", plan: "maps-basic", price: 0, quantity: 1, amount: 12, span: span)],
            createdAt: Date(), finalizedAt: Date())
        #expect(try await store.insertInvoices([(invoice, nil)]) == ["inv_1"])
        return invoice
    }

    @Test(arguments: TestDatabase.allCases)
    func pushStepsAreRecordedAndTheCustomerKeepsItsStripeID(database: TestDatabase) async throws {
        try await database.withStore { store in
            let invoice = try await Self.seed(store)
            #expect(try await store.stripePushCandidates(limit: 10).map(\.id) == ["inv_1"])
            #expect(try await store.invoice("inv_1")?.provider == nil)
            try await store.recordStripeStep(invoice, .customer, StripeStepRecord(state: .started))
            #expect(try await store.invoice("inv_1")?.provider == ProviderInvoice(name: "stripe", invoice: nil, status: "pushing"))
            try await store.recordStripeStep(invoice, .customer, StripeStepRecord(state: .done, result: "cus_S"))
            #expect(try await store.customer("acme")?.value.stripeCustomer == "cus_S")
            // A save without a Stripe id (the collector's upsert) keeps it.
            try await store.saveCustomer(Customer(id: "acme", name: "Acme Inc", createdAt: Date()), mode: .upsert)
            #expect(try await store.customer("acme")?.value.stripeCustomer == "cus_S")
            try await store.recordStripeStep(invoice, .item(0), StripeStepRecord(state: .started))
            try await store.recordStripeStep(invoice, .item(0), nil)
            try await store.recordStripeStep(invoice, .invoice, StripeStepRecord(state: .done, result: "in_S"))
            let steps = try await store.stripePushSteps(invoice: "inv_1")
            #expect(steps == [.customer: StripeStepRecord(state: .done, result: "cus_S"), .invoice: StripeStepRecord(state: .done, result: "in_S")])
            try await store.stripePushFailed("inv_1", error: "Stripe answered 500: boom")
            #expect(try await store.invoice("inv_1")?.provider?.lastError == "Stripe answered 500: boom")
            try await store.finishStripePush("inv_1", status: "open", hostedURL: "https://pay.example/in_S")
            #expect(try await store.stripePushCandidates(limit: 10).isEmpty)
            let shown = try await store.invoice(stripeInvoice: "in_S")
            #expect(shown?.id == "inv_1")
            #expect(shown?.provider == ProviderInvoice(name: "stripe", invoice: "in_S", status: "open", hostedURL: "https://pay.example/in_S"))
            #expect(try await store.openStripeInvoices(limit: 10).map(\.id) == ["inv_1"])
            try await store.skipStripePush("inv_1")
            #expect(try await store.invoice("inv_1")?.provider == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func aFailedPaymentIsPastDueThenSuspendedAndPaymentMakesItActive(database: TestDatabase) async throws {
        try await database.withStore { store in
            let invoice = try await Self.seed(store)
            try await store.recordStripeStep(invoice, .invoice, StripeStepRecord(state: .done, result: "in_S"))
            try await store.finishStripePush("inv_1", status: "open", hostedURL: nil)
            let failedAt = Date()
            let failed = try await store.stripePaymentFailed("inv_1", status: "open", now: failedAt) { _ in nil }
            #expect(failed?.after.status == .pastDue)
            #expect(try await store.stripePaymentFailed("inv_1", status: "open", now: failedAt.addingTimeInterval(60)) { _ in nil } == nil)
            #expect(try await !store.hasOverdue(grace: 3600, now: failedAt.addingTimeInterval(3599)))
            #expect(try await store.hasOverdue(grace: 3600, now: failedAt.addingTimeInterval(3601)))
            #expect(try await store.suspendOverdue(grace: 3600, now: failedAt.addingTimeInterval(3599)) { _ in nil }.isEmpty)
            let suspended = try await store.suspendOverdue(grace: 3600, now: failedAt.addingTimeInterval(3601)) { _ in nil }
            #expect(suspended.map(\.after.status) == [.suspended])
            #expect(try await store.subscription("sub_1")?.status == .suspended)
            // Still known to the gateway (to be answered 402).
            #expect(try await store.activeCredentials().map(\.subscription.id) == ["sub_1"])
            let paid = try await store.stripeInvoicePaid("inv_1", hostedURL: nil) { _ in nil }
            #expect(paid.invoice.status == .paid && paid.invoice.provider?.status == "paid")
            #expect(paid.change?.after.status == .active)
            #expect(try await store.subscription("sub_1")?.status == .active)
            #expect(try await store.stripeInvoicePaid("inv_1", hostedURL: nil) { _ in nil }.change == nil)
            #expect(try await store.openStripeInvoices(limit: 10).isEmpty)
        }
    }
}
