import Foundation

/// One step of pushing an invoice to Stripe (DESIGN §3.8). Its `name` keys Tollgate's durable
/// record of the step and the `Idempotency-Key` of its request.
public enum StripePushStep: Hashable, Sendable, CustomStringConvertible {
    /// Create the Stripe customer (only when the customer has none yet).
    case customer
    /// Create the invoice item of line `n` (0-based).
    case item(Int)
    /// Create the Stripe invoice, which takes the customer's pending items.
    case invoice
    /// Set the invoice's metadata (Stripe-compatible servers may drop it at creation).
    case metadata
    /// Finalize the invoice.
    case finalize
    /// Ask Stripe to collect the invoice now.
    case pay

    public var name: String {
        switch self {
        case .customer: "customer"
        case .item(let line): "item-\(line)"
        case .invoice: "invoice"
        case .metadata: "metadata"
        case .finalize: "finalize"
        case .pay: "pay"
        }
    }

    public var description: String { name }

    public init?(name: String) {
        switch name {
        case "customer": self = .customer
        case "invoice": self = .invoice
        case "metadata": self = .metadata
        case "finalize": self = .finalize
        case "pay": self = .pay
        default:
            guard name.hasPrefix("item-"), let line = Int(name.dropFirst(5)), line >= 0 else { return nil }
            self = .item(line)
        }
    }
}

/// What Tollgate durably knows about one step of a push.
public struct StripeStepRecord: Sendable, Equatable {
    /// `started` is written before the request is sent, `done` once its answer is known: a
    /// step found `started` after a crash may or may not have reached Stripe.
    public enum State: String, Sendable {
        case started, done
    }

    public var state: State
    /// What the step made or found: a Stripe id (`cus_`, `ii_`, `in_`) or a status.
    public var result: String?

    public init(state: State, result: String? = nil) {
        self.state = state
        self.result = result
    }
}

/// The next thing a push needs done.
public enum StripePushAction: Sendable, Equatable {
    /// Send `POST path` with `form` and header `Idempotency-Key: idempotencyKey`; record the step
    /// `started` before and `done` with the answer's id after.
    case post(StripePushStep, path: String, form: StripeForm, idempotencyKey: String)
    /// After a crash: look for the Stripe customer whose `metadata[tollgate_customer]` is `tollgateCustomer`.
    case findCustomer(tollgateCustomer: String)
    /// After a crash: look among the customer's invoice items for the one of line `line`.
    case findItem(line: Int, customer: String)
    /// After a crash: look among the customer's invoices for the one holding `items`.
    case findInvoice(customer: String, items: [String])
    /// Nothing to push: the total is not above zero.
    case skip
    /// The invoice cannot be pushed (the reason, free of secrets).
    case fail(String)
    /// Every step is done.
    case done
}

/// How to push one finalized invoice to Stripe, as a value: from what is recorded so far, `next()`
/// says what to do; `record` takes what came of it. Pure, so that every crash point can be tested
/// in memory; `StripePusher` performs it.
///
/// Order: customer (when it has no Stripe id) → one invoice item per line → the invoice
/// (`pending_invoice_items_behavior=include`) → its metadata → finalize → pay. A step recorded
/// `started` but not `done` (the process died while its request was out) is first looked for in
/// Stripe, since a Stripe-compatible server may ignore the `Idempotency-Key`; only when it is
/// not there is it sent again.
public struct StripePushPlan: Sendable {
    public let invoice: Invoice
    public let customer: Customer
    public private(set) var records: [StripePushStep: StripeStepRecord]

    public init(invoice: Invoice, customer: Customer, records: [StripePushStep: StripeStepRecord] = [:]) {
        self.invoice = invoice
        self.customer = customer
        self.records = records
    }

    /// `tollgate-INVOICE-STEP` (`tollgate-customer-ID` for creating a customer): the same on every
    /// retry of a step, different for every step.
    public static func idempotencyKey(invoice: String, customer: String, step: StripePushStep) -> String {
        step == .customer ? "tollgate-customer-\(customer)" : "tollgate-\(invoice)-\(step.name)"
    }

    /// The Stripe customer id: linked, or made by this push.
    public var stripeCustomer: String? {
        customer.stripeCustomer ?? done(.customer)
    }

    /// The Stripe invoice id, once created.
    public var stripeInvoice: String? { done(.invoice) }

    /// The item ids made so far, in line order.
    public var items: [String] {
        invoice.lines.indices.compactMap { done(.item($0)) }
    }

    private func done(_ step: StripePushStep) -> String? {
        guard let record = records[step], record.state == .done else { return nil }
        return record.result
    }

    private func key(_ step: StripePushStep) -> String {
        Self.idempotencyKey(invoice: invoice.id, customer: customer.id, step: step)
    }

    public func next() -> StripePushAction {
        guard invoice.total > 0 else { return .skip }
        guard Currency.minorUnits(invoice.currency.uppercased()) != nil else {
            return .fail("currency \(invoice.currency) has no known minor unit")
        }
        guard let customerID = stripeCustomer else {
            if records[.customer]?.state == .started { return .findCustomer(tollgateCustomer: customer.id) }
            var form = StripeForm([("name", customer.name)])
            if let email = customer.email { form.fields.append(("email", email)) }
            form.fields.append(("metadata[tollgate_customer]", customer.id))
            return .post(.customer, path: "/v1/customers", form: form, idempotencyKey: key(.customer))
        }
        for (index, line) in invoice.lines.enumerated() {
            let step = StripePushStep.item(index)
            switch records[step]?.state {
            case .done: continue
            case .started: return .findItem(line: index, customer: customerID)
            case nil: break
            }
            guard let amount = Currency.minorAmount(line.amount, currency: invoice.currency) else {
                return .fail("line \(index) of \(invoice.id) is not a whole number of minor units of \(invoice.currency)")
            }
            let form = StripeForm([
                ("customer", customerID),
                ("amount", String(amount)),
                ("currency", invoice.currency.lowercased()),
                ("description", line.description),
                ("metadata[tollgate_invoice]", invoice.id),
                ("metadata[tollgate_line]", String(index)),
            ])
            return .post(step, path: "/v1/invoiceitems", form: form, idempotencyKey: key(step))
        }
        guard let invoiceID = stripeInvoice else {
            if records[.invoice]?.state == .started { return .findInvoice(customer: customerID, items: items) }
            let form = StripeForm([
                ("customer", customerID),
                ("pending_invoice_items_behavior", "include"),
                ("description", "\(invoice.id): \(RFC3339.string(invoice.period.start)) to \(RFC3339.string(invoice.period.end))"),
            ])
            return .post(.invoice, path: "/v1/invoices", form: form, idempotencyKey: key(.invoice))
        }
        if records[.metadata]?.state != .done {
            let form = StripeForm([
                ("metadata[tollgate_invoice]", invoice.id),
                ("metadata[tollgate_subscription]", invoice.subscription),
            ])
            return .post(.metadata, path: "/v1/invoices/\(invoiceID)", form: form, idempotencyKey: key(.metadata))
        }
        if records[.finalize]?.state != .done {
            return .post(.finalize, path: "/v1/invoices/\(invoiceID)/finalize", form: StripeForm(), idempotencyKey: key(.finalize))
        }
        if records[.pay]?.state != .done {
            return .post(.pay, path: "/v1/invoices/\(invoiceID)/pay", form: StripeForm(), idempotencyKey: key(.pay))
        }
        return .done
    }

    /// Takes what came of a step: `started` before its request, `done` with its result after,
    /// nil when a step recorded `started` was looked for and not found (it is sent again).
    public mutating func record(_ step: StripePushStep, _ record: StripeStepRecord?) {
        records[step] = record
    }

    /// The status Stripe gave the invoice at the end of the push (from the `pay` step).
    public var collectedStatus: String? { done(.pay) }
}
