import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgateStore

/// Performs `StripePushPlan`s: sends each step, keeping Tollgate's durable record of it before
/// and after, so that a retry or a crash at any point resumes without pushing anything twice.
public struct StripePusher: Sendable {
    let store: TollgateStore
    let client: StripeClient
    let payments: StripePayments
    let halt: HaltHook
    let logger: Logger

    public init(
        store: TollgateStore, client: StripeClient, payments: StripePayments, halt: HaltHook = HaltHook(at: nil),
        logger: Logger = Logger(label: "tollgate.stripe")
    ) {
        self.store = store
        self.client = client
        self.payments = payments
        self.halt = halt
        self.logger = logger
    }

    /// A push that cannot go on; its reason is kept on the invoice (`provider.last_error`).
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Pushes every finalized invoice that is not pushed yet, oldest first. An invoice that fails
    /// keeps its error and holds back the later invoices of its customer (so that they do not
    /// take its pending items), and is tried again next time. Returns the invoices pushed now.
    @discardableResult
    public func pushPending(limit: Int = 100) async throws -> [String] {
        var blocked: Set<String> = []
        var pushed: [String] = []
        for invoice in try await store.stripePushCandidates(limit: limit) where !blocked.contains(invoice.customer) {
            do {
                if try await push(invoice) { pushed.append(invoice.id) }
            } catch let error as StripeError {
                blocked.insert(invoice.customer)
                logger.warning("pushing an invoice to Stripe failed; trying again", metadata: ["invoice": "\(invoice.id)", "error": "\(error)"])
                try await store.stripePushFailed(invoice.id, error: error.description)
            } catch let error as Failure {
                blocked.insert(invoice.customer)
                logger.warning("pushing an invoice to Stripe failed; trying again", metadata: ["invoice": "\(invoice.id)", "error": "\(error)"])
                try await store.stripePushFailed(invoice.id, error: error.description)
            }
        }
        return pushed
    }

    /// Pushes one invoice to the end; false when there was nothing to push.
    public func push(_ invoice: Invoice) async throws -> Bool {
        guard let customer = try await store.customer(invoice.customer)?.value else {
            throw Failure(description: "customer \(invoice.customer) is gone")
        }
        var plan = StripePushPlan(invoice: invoice, customer: customer, records: try await store.stripePushSteps(invoice: invoice.id))
        while true {
            switch plan.next() {
            case .skip:
                try await store.skipStripePush(invoice.id)
                return false
            case .fail(let reason):
                throw Failure(description: reason)
            case .done:
                try await finish(invoice, stripeInvoice: plan.stripeInvoice)
                return true
            case .post(let step, let path, let form, let key):
                try await record(&plan, step, StripeStepRecord(state: .started))
                let result = try await send(step, path: path, form: form, key: key, stripeInvoice: plan.stripeInvoice)
                halt.pass()
                try await record(&plan, step, StripeStepRecord(state: .done, result: result))
            case .findCustomer(let id):
                let found = try await client.list("/v1/customers").first { $0["metadata"]?["tollgate_customer"]?.scalarText == id }
                try await record(&plan, .customer, found?["id"]?.scalarText.map { StripeStepRecord(state: .done, result: $0) })
            case .findItem(let line, let customerID):
                let found = try await client.list("/v1/invoiceitems", query: StripeForm([("customer", customerID)])).first { item in
                    item["metadata"]?["tollgate_invoice"]?.scalarText == invoice.id
                        && item["metadata"]?["tollgate_line"]?.scalarText == String(line)
                }
                try await record(&plan, .item(line), found?["id"]?.scalarText.map { StripeStepRecord(state: .done, result: $0) })
            case .findInvoice(let customerID, let items):
                let found = try await client.list("/v1/invoices", query: StripeForm([("customer", customerID)]))
                    .compactMap(StripeInvoiceView.init).first { $0.belongs(to: invoice.id, items: items) }
                try await record(&plan, .invoice, found.map { StripeStepRecord(state: .done, result: $0.id) })
            }
        }
    }

    private func record(_ plan: inout StripePushPlan, _ step: StripePushStep, _ record: StripeStepRecord?) async throws {
        try await store.recordStripeStep(plan.invoice, step, record)
        plan.record(step, record)
        halt.pass()
    }

    /// Sends one step; returns what to record as its result.
    private func send(_ step: StripePushStep, path: String, form: StripeForm, key: String, stripeInvoice: String?) async throws -> String {
        switch step {
        case .customer, .item, .invoice:
            let node = try await client.post(path, form, idempotencyKey: key)
            guard let id = node["id"]?.scalarText else { throw Failure(description: "Stripe's answer to \(step) has no id") }
            return id
        case .metadata:
            _ = try await client.post(path, form, idempotencyKey: key)
            return "set"
        case .finalize:
            do {
                _ = try await client.post(path, form, idempotencyKey: key)
                return "finalized"
            } catch let error as StripeError where error.status == 404 {
                // localstripe has no /finalize: `/pay` finalizes too.
                return "by-pay"
            } catch let error as StripeError where !error.isTransient {
                // Finalized before (a retry): go on when Stripe no longer has it as a draft.
                guard let id = stripeInvoice, let view = StripeInvoiceView(try await client.get("/v1/invoices/\(id)")),
                      view.status != "draft" else { throw error }
                return "finalized"
            }
        case .pay:
            do {
                _ = try await client.post(path, form, idempotencyKey: key)
            } catch let error as StripeError where !error.isTransient {
                // Declined, no payment method, already paid: the invoice's status tells.
            }
            guard let id = stripeInvoice, let view = StripeInvoiceView(try await client.get("/v1/invoices/\(id)")) else {
                throw Failure(description: "the Stripe invoice cannot be read")
            }
            return view.status ?? "unknown"
        }
    }

    /// Reads the pushed invoice's status, marks the push done, and applies the payment's outcome.
    private func finish(_ invoice: Invoice, stripeInvoice: String?) async throws {
        guard let id = stripeInvoice, let view = StripeInvoiceView(try await client.get("/v1/invoices/\(id)")) else {
            throw Failure(description: "the Stripe invoice cannot be read")
        }
        // Collection was just attempted: anything but paid (or void) is a failed payment. Applied
        // before the push is marked done, so that no one sees a pushed invoice without its outcome.
        let failed = view.status != "paid" && view.status != "void"
        try await payments.apply(view, to: invoice.id, paymentFailed: failed)
        try await store.finishStripePush(invoice.id, status: view.status, hostedURL: view.hostedURL)
    }
}

/// The test hook behind `TOLLGATE_TEST_STRIPE_HALT_AT`: kills the process (SIGKILL, as `kill -9`)
/// at the Nth point passed between the steps of Stripe pushes. Off (nil) outside the crash tests.
public final class HaltHook: Sendable {
    private let at: Int?
    private let passed = Mutex(0)

    public init(at: Int?) {
        self.at = at
    }

    func pass() {
        guard let at else { return }
        let count = passed.withLock { count in
            count += 1
            return count
        }
        if count == at { kill(getpid(), SIGKILL) }
    }
}
