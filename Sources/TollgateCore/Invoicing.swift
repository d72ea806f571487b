import Foundation

/// One line of an invoice: what one price of one plan charged over a span.
public struct InvoiceLine: Sendable, Equatable {
    public var description: String
    /// The plan the price belongs to.
    public var plan: String
    /// The index of the price in its plan.
    public var price: Int
    /// Units for usage; the share of a whole period for fees (negative for a credit).
    public var quantity: Decimal
    /// Rounded to the currency's minor unit.
    public var amount: Decimal
    /// What the line pays for: the usage period (arrears) or the period paid ahead (advance).
    public var span: TimeSpan

    public init(description: String, plan: String, price: Int, quantity: Decimal, amount: Decimal, span: TimeSpan) {
        self.description = description
        self.plan = plan
        self.price = price
        self.quantity = quantity
        self.amount = amount
        self.span = span
    }
}

/// The life of an invoice: `draft → finalized → paid | void` (a draft may be voided too).
public enum InvoiceStatus: String, Sendable, CaseIterable {
    case draft, finalized, paid, void

    /// The statuses an invoice may move to from this one.
    public var next: [InvoiceStatus] {
        switch self {
        case .draft: [.finalized, .void]
        case .finalized: [.paid, .void]
        case .paid, .void: []
        }
    }
}

/// The rated result of one subscription's period.
///
/// `period` is the usage period the invoice closes (in arrears); fees for the next period are
/// on it too (in advance). A subscription's first invoice, issued when it starts, has an empty
/// period (`start == end`, as Stripe does) and holds the setup fee and the first period's fees.
public struct Invoice: Sendable, Equatable {
    public var id: String
    public var subscription: String
    public var customer: String
    public var product: String
    public var currency: String
    public var period: TimeSpan
    public var status: InvoiceStatus
    public var lines: [InvoiceLine]
    public var createdAt: Date
    public var finalizedAt: Date?
    /// When it was paid or voided.
    public var settledAt: Date?
    /// Where a billing provider collects it (nil: the built-in provider, Tollgate alone).
    public var provider: ProviderInvoice?

    public init(
        id: String, subscription: String, customer: String, product: String, currency: String, period: TimeSpan,
        status: InvoiceStatus, lines: [InvoiceLine], createdAt: Date, finalizedAt: Date? = nil, settledAt: Date? = nil
    ) {
        self.id = id
        self.subscription = subscription
        self.customer = customer
        self.product = product
        self.currency = currency
        self.period = period
        self.status = status
        self.lines = lines
        self.createdAt = createdAt
        self.finalizedAt = finalizedAt
        self.settledAt = settledAt
    }

    /// The sum of the rounded lines.
    public var subtotal: Decimal { Rating.total(lines) }
    /// There are no taxes or discounts yet: the subtotal.
    public var total: Decimal { subtotal }

    /// The invoice as the admin API and the `invoice.finalized` webhook show it (DESIGN §3.4).
    public var document: DocumentNode {
        let scale = Currency.minorUnits(currency) ?? 2
        func money(_ amount: Decimal) -> DocumentNode { .text(Rating.text(amount, scale: scale)) }
        return .object([
            ("id", .text(id)),
            ("subscription", .text(subscription)),
            ("customer", .text(customer)),
            ("product", .text(product)),
            ("currency", .text(currency)),
            ("period_start", .text(RFC3339.string(period.start))),
            ("period_end", .text(RFC3339.string(period.end))),
            ("status", .text(status.rawValue)),
            ("lines", DocumentNode(.list(lines.map { line in
                .object([
                    ("description", .text(line.description)),
                    ("plan", .text(line.plan)),
                    ("price", .integer(line.price)),
                    ("quantity", DocumentNode(.string(line.quantity.description))),
                    ("amount", money(line.amount)),
                    ("period_start", .text(RFC3339.string(line.span.start))),
                    ("period_end", .text(RFC3339.string(line.span.end))),
                ])
            }))),
            ("subtotal", money(subtotal)),
            ("total", money(total)),
            ("created_at", .text(RFC3339.string(createdAt))),
            ("finalized_at", .text(finalizedAt.map(RFC3339.string))),
        ] + (provider.map { [("provider", $0.document)] } ?? []))
    }
}

/// A subscription as billing sees it: when it ran and which plan was in force when.
public struct BillingTimeline: Sendable {
    /// One plan in force from `from` until the next entry.
    public struct Entry: Sendable {
        public var from: Date
        public var plan: Plan

        public init(from: Date, plan: Plan) {
            self.from = from
            self.plan = plan
        }
    }

    public var startedAt: Date
    public var terminatedAt: Date?
    /// In order of `from`; the first is in force from the start. Never empty.
    public var plans: [Entry]

    public init(startedAt: Date, terminatedAt: Date?, plans: [Entry]) {
        precondition(!plans.isEmpty, "a subscription always has a plan")
        self.startedAt = startedAt
        self.terminatedAt = terminatedAt
        self.plans = plans.sorted { $0.from < $1.from }
    }

    /// Plans change only to plans of the same period unit (the change is refused otherwise).
    public var unit: BillingPeriodUnit { plans[0].plan.period }

    /// The plan in force at `date` (a change at `date` counts).
    public func plan(at date: Date) -> Plan {
        plans.last { $0.from <= date }?.plan ?? plans[0].plan
    }

    /// The plan in force just before `date`: the one a period ending at `date` closes under.
    public func plan(before date: Date) -> Plan {
        plans.last { $0.from < date }?.plan ?? plans[0].plan
    }

    /// The billing period `[start, end)` that starts at or contains `date`.
    public func period(containing date: Date) -> TimeSpan {
        BillingPeriods.period(containing: date, unit: unit, anchor: startedAt)
    }
}

/// Which invoices a subscription is due and what is on them (DESIGN §3.7). Pure: usage comes in
/// as meter values, times as arguments.
public enum Invoicing {
    /// The periods to invoice, in order, after the last invoiced one (`invoicedThrough`, the
    /// latest `period_end` of the subscription's invoices; nil when it has none).
    ///
    /// The first invoice (an empty period at the start) is due once the subscription has started;
    /// a period is due when it ended at least `grace` before `at`. A termination ends the last
    /// period early, and nothing is due after it.
    public static func duePeriods(_ timeline: BillingTimeline, invoicedThrough: Date?, at: Date, grace: TimeInterval = 0) -> [TimeSpan] {
        var due: [TimeSpan] = []
        if invoicedThrough == nil {
            guard timeline.startedAt <= at else { return [] }
            due.append(TimeSpan(start: timeline.startedAt, end: timeline.startedAt))
        }
        var period = timeline.period(containing: invoicedThrough ?? timeline.startedAt)
        while true {
            let end = min(period.end, timeline.terminatedAt ?? period.end)
            guard end > period.start, end.addingTimeInterval(grace) <= at else { break }
            if invoicedThrough.map({ end > $0 }) ?? true { due.append(TimeSpan(start: period.start, end: end)) }
            guard end == period.end else { break }
            period = timeline.period(containing: period.end)
        }
        return due
    }

    /// The lines of the invoice that closes `period` (one of `duePeriods`), with `usage` the
    /// value of each meter over it.
    ///
    /// - The first invoice: the setup fee and the first period's fees, in advance.
    /// - Every other: usage of the period at the prices of the plan in force at its end; for each
    ///   plan change inside it, the old plan's fees credited and the new plan's charged for the
    ///   rest of the period, by the second; and, unless the subscription ended by then, the next
    ///   period's fees in advance.
    public static func lines(_ timeline: BillingTimeline, period: TimeSpan, usage: [String: Decimal]) -> [InvoiceLine] {
        guard period.end > period.start else {
            let plan = timeline.plan(at: period.start)
            let paidAhead = timeline.period(containing: period.start)
            return setupLines(plan, span: paidAhead) + advanceLines(plan, span: paidAhead)
        }
        let whole = timeline.period(containing: period.start)
        var lines = usageLines(timeline.plan(before: period.end), usage: usage, span: period)
        for change in timeline.plans.dropFirst() where change.from > period.start && change.from < period.end {
            let rest = TimeSpan(start: change.from, end: whole.end)
            lines += advanceLines(timeline.plan(before: change.from), span: rest, proratedOver: whole, credit: true)
            lines += advanceLines(change.plan, span: rest, proratedOver: whole)
        }
        let ended = timeline.terminatedAt.map { $0 <= period.end } ?? false
        if period.end == whole.end, !ended {
            let next = timeline.period(containing: whole.end)
            lines += advanceLines(timeline.plan(at: next.start), span: next)
        }
        return lines
    }

    /// The recurring fees (`flat`, and `prepaid` with an amount) for `span`: a whole period, or
    /// the part of `whole` it covers, by the second (as a credit when `credit`).
    static func advanceLines(_ plan: Plan, span: TimeSpan, proratedOver whole: TimeSpan? = nil, credit: Bool = false) -> [InvoiceLine] {
        let sign: Decimal = credit ? -1 : 1
        let share = whole.map { Rating.prorate(1, covered: span, of: $0) } ?? 1
        let quantity = sign * Rating.round(share, scale: 6)
        let suffix = whole == nil ? "" : (credit ? ", unused time from " : ", remaining time from ") + RFC3339.string(span.start)
        return plan.prices.enumerated().compactMap { index, price in
            let fee: Amount
            let description: String
            switch price {
            case .flat(let amount):
                fee = amount
                description = "\(plan.name) (\(plan.period.rawValue))"
            case .prepaid(let quota):
                guard let amount = quota.amount else { return nil }
                fee = amount
                description = "\(plan.name): \(quota.quota) prepaid calls per \(quota.window.rawValue)"
            case .setup, .usage:
                return nil
            }
            return InvoiceLine(
                description: description + suffix, plan: plan.id, price: index, quantity: quantity,
                amount: sign * Rating.round(whole.map { Rating.prorate(fee.value, covered: span, of: $0) } ?? fee.value, currency: plan.currency),
                span: span)
        }
    }

    static func setupLines(_ plan: Plan, span: TimeSpan) -> [InvoiceLine] {
        plan.prices.enumerated().compactMap { index, price in
            guard case .setup(let amount) = price else { return nil }
            return InvoiceLine(
                description: "\(plan.name): setup", plan: plan.id, price: index, quantity: 1,
                amount: Rating.round(amount.value, currency: plan.currency), span: span)
        }
    }

    static func usageLines(_ plan: Plan, usage: [String: Decimal], span: TimeSpan) -> [InvoiceLine] {
        plan.prices.enumerated().compactMap { index, price in
            guard case .usage(let usagePrice) = price else { return nil }
            let quantity = usage[usagePrice.meter] ?? 0
            return InvoiceLine(
                description: "\(plan.name): \(usagePrice.meter) (\(usagePrice.model.name))", plan: plan.id, price: index,
                quantity: quantity, amount: Rating.round(Rating.charge(usagePrice.model, quantity: quantity), currency: plan.currency),
                span: span)
        }
    }

    /// The usage charges run up so far in a period: `plan`'s usage prices applied to `usage`
    /// (meter values from the period's start until now), as the period's invoice would rate them.
    /// Fees billed in advance are not included: they were invoiced when the period began.
    public static func runningUsage(_ plan: Plan, usage: [String: Decimal], span: TimeSpan) -> [InvoiceLine] {
        usageLines(plan, usage: usage, span: span)
    }

    /// The meters whose values the lines of `timeline`'s invoice for `period` need.
    public static func meters(_ timeline: BillingTimeline, period: TimeSpan) -> Set<String> {
        guard period.end > period.start else { return [] }
        return Set(timeline.plan(before: period.end).prices.compactMap { price in
            if case .usage(let usage) = price { return usage.meter }
            return nil
        })
    }
}
