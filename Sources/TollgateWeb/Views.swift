import Foundation
import TollgateControl
import TollgateCore
import TollgateStore

/// Money, times and quantities as pages write them. Amounts stay `Decimal`.
enum Format {
    static func money(_ amount: Decimal, _ currency: String) -> String {
        Rating.text(amount, scale: Currency.minorUnits(currency) ?? 2) + " " + currency
    }

    static func time(_ date: Date) -> String {
        let text = RFC3339.string(date)
        // 2026-11-27T20:30:00Z → 2026-11-27 20:30 UTC
        return String(text.prefix(10)) + " " + String(text.dropFirst(11).prefix(5)) + " UTC"
    }

    static func day(_ date: Date) -> String { String(RFC3339.string(date).prefix(10)) }

    /// `11-27` under a day's bar.
    static func shortDay(_ date: Date) -> String { String(RFC3339.string(date).dropFirst(5).prefix(5)) }

    static func quantity(_ value: Decimal) -> String { "\(value)" }

    /// What a plan charges, one line per price.
    static func prices(_ plan: Plan) -> [String] {
        plan.prices.map { price in
            switch price {
            case .flat(let amount): "\(money(amount.value, plan.currency)) per \(plan.period.rawValue)"
            case .setup(let amount): "\(money(amount.value, plan.currency)) once, at signup"
            case .prepaid(let quota):
                "\(quota.quota) calls per \(quota.window.rawValue.replacingOccurrences(of: "_", with: " "))"
                    + (quota.endpoint.map { " of \($0)" } ?? "")
                    + (quota.amount.map { " for \(money($0.value, plan.currency))" } ?? " included")
            case .usage(let usage): "usage of \(usage.meter), \(usage.model.name)"
            }
        }
    }
}

/// A prepaid quota as a row: used of limit, and when it resets.
struct QuotaRow: Sendable {
    var label: String
    var used: Int
    var limit: Int
    var remaining: Int
    var resetsAt: String

    init(_ state: LimitState) {
        label = (state.limit.endpoint ?? "all calls") + " per " + state.limit.window.rawValue.replacingOccurrences(of: "_", with: " ")
        used = min(state.used, state.limit.quota)
        limit = state.limit.quota
        remaining = state.remaining
        resetsAt = Format.time(state.limit.span.end)
    }
}

/// A subscription as a card: plan, status, period and quotas.
struct SubscriptionCard: Sendable {
    var id: String
    var href: String
    var planName: String
    var planID: String
    var product: String
    var customer: String
    var status: String
    var active: Bool
    var periodStart: String
    var periodEnd: String
    var quotas: [QuotaRow]
    /// Stored, not computed: templates read stored properties only (through `Mirror`).
    var hasQuotas: Bool

    init(_ account: SubscriptionAccount, href: String) {
        id = account.subscription.id
        self.href = href
        planName = account.plan.name
        planID = account.plan.id
        product = account.subscription.product
        customer = account.subscription.customer
        status = account.subscription.status.rawValue
        active = account.subscription.status.hasCredential
        periodStart = Format.time(account.period.start)
        periodEnd = Format.time(account.period.end)
        quotas = account.quotas.map(QuotaRow.init)
        hasQuotas = !quotas.isEmpty
    }
}

/// Usage per day as a chart and tables.
struct UsageView: Sendable {
    /// One name and value.
    struct Row: Sendable {
        var name: String
        var value: String
    }

    var chart: String
    var endpoints: [Row]
    var meters: [Row]
    var hasEndpoints: Bool
    var hasMeters: Bool
    var from: String
    var to: String

    init(_ report: UsageReport, title: String) {
        let names = report.total.endpoints.keys.sorted()
        chart = BarChart(
            title: title, labels: report.days.map { Format.shortDay($0.span.start) },
            series: names.map { name in BarChart.Series(name: name, values: report.days.map { Decimal($0.endpoints[name] ?? 0) }) },
            unit: "calls"
        ).svg()
        endpoints = names.map { Row(name: $0, value: String(report.total.endpoints[$0] ?? 0)) }
        meters = report.total.meters.keys.sorted().map { Row(name: $0, value: report.total.meters[$0]?.description ?? "0") }
        hasEndpoints = !endpoints.isEmpty
        hasMeters = !meters.isEmpty
        from = Format.time(report.total.span.start)
        to = Format.time(report.total.span.end)
    }
}

/// An invoice with its lines.
struct InvoiceView: Sendable {
    /// One line.
    struct Line: Sendable {
        var description: String
        var quantity: String
        var amount: String
    }

    var id: String
    var href: String
    var subscription: String
    var customer: String
    var status: String
    var period: String
    var total: String
    var lines: [Line]
    var canFinalize: Bool
    var canPay: Bool
    var canVoid: Bool
    /// The billing provider's page where the customer pays it (Stripe's hosted invoice), if any.
    var hostedURL: String?

    init(_ invoice: Invoice, href: String) {
        id = invoice.id
        hostedURL = invoice.provider?.hostedURL.flatMap { $0.hasPrefix("https://") ? $0 : nil }
        self.href = href
        subscription = invoice.subscription
        customer = invoice.customer
        status = invoice.status.rawValue
        period = Format.day(invoice.period.start) + " – " + Format.day(invoice.period.end)
        total = Format.money(invoice.total, invoice.currency)
        lines = invoice.lines.map { Line(description: $0.description, quantity: Format.quantity($0.quantity), amount: Format.money($0.amount, invoice.currency)) }
        canFinalize = invoice.status.next.contains(.finalized)
        canPay = invoice.status.next.contains(.paid)
        canVoid = invoice.status.next.contains(.void)
    }
}

/// The usage charges of the current period so far.
struct EstimateView: Sendable {
    var lines: [InvoiceView.Line]
    var total: String
    var hasLines: Bool

    init(_ lines: [InvoiceLine], currency: String) {
        self.lines = lines.map { InvoiceView.Line(description: $0.description, quantity: Format.quantity($0.quantity), amount: Format.money($0.amount, currency)) }
        total = Format.money(Rating.total(lines), currency)
        hasLines = !lines.isEmpty
    }
}

/// A plan to choose (signup, change of plan).
struct PlanOption: Sendable {
    var id: String
    var name: String
    var product: String
    var prices: [String]
    var checked: Bool

    init(_ plan: Plan, productName: String, checked: Bool = false) {
        id = plan.id
        name = plan.name
        product = productName
        prices = Format.prices(plan)
        if prices.isEmpty { prices = ["free"] }
        self.checked = checked
    }
}
