import Foundation
import TollgateControl
import TollgateCore
import TollgateStore

extension DashboardApp {
    struct RevenueChart: Sendable {
        var currency: String
        var chart: String
    }

    struct OverviewView: Sendable {
        var active: Int
        var calls: Int
        var failingWebhooks: String
        var pastDue: String
        var pastDueDays: Int
        var callsChart: String
        var revenue: [RevenueChart]
    }

    /// The most rows the overview reads of one list (invoices, deliveries).
    static let overviewScanLimit = 5000

    func overview(_ current: WebSessions.Current) async throws -> WebResponse {
        let now = clock()
        let today = Granularity.day.floor(now)
        let days = (0..<30).map { today.addingTimeInterval(Double($0 - 29) * 86_400) }
        let calls = try await store.gatewayCallsPerDay(from: days[0], to: today.addingTimeInterval(86_400))
        let callsChart = BarChart(
            title: "Calls per day, last 30 days", labels: days.map(Format.shortDay),
            series: [BarChart.Series(name: "calls through the gateway", values: days.map { Decimal(calls[$0] ?? 0) })], unit: "calls"
        ).svg()

        // Revenue: finalized and paid invoices by the month their period ended, per currency.
        let months = (0..<6).reversed().map { back in Self.monthStart(now, back: back) }
        var revenue: [String: [Date: Decimal]] = [:]
        var pastDue = 0
        var scanned = 0
        var cursor: String?
        repeat {
            let page = try await store.invoices(after: cursor, limit: 500)
            for invoice in page.items {
                if invoice.status == .finalized, let finalized = invoice.finalizedAt,
                   now.timeIntervalSince(finalized) > configuration.pastDueAfter {
                    pastDue += 1
                }
                guard invoice.status == .finalized || invoice.status == .paid else { continue }
                let month = Self.monthStart(invoice.period.end == invoice.period.start ? invoice.createdAt : invoice.period.end, back: 0)
                guard month >= months[0] else { continue }
                revenue[invoice.currency, default: [:]][month, default: 0] += invoice.total
            }
            scanned += page.items.count
            cursor = page.nextCursor
        } while cursor != nil && scanned < Self.overviewScanLimit
        let revenueCharts = revenue.keys.sorted().map { currency in
            RevenueChart(currency: currency, chart: BarChart(
                title: "Revenue per month in \(currency)", labels: months.map { String(RFC3339.string($0).prefix(7)) },
                series: [BarChart.Series(name: "invoiced \(currency)", values: months.map { revenue[currency]?[$0] ?? 0 })],
                unit: currency
            ).svg())
        }
        let failed = try await store.deliveries(status: .failed, before: nil, limit: 100)
        let counts = try await store.subscriptionCounts()
        let view = OverviewView(
            active: counts[.active] ?? 0, calls: calls.values.reduce(0, +),
            failingWebhooks: failed.nextCursor == nil ? String(failed.items.count) : "100+",
            pastDue: scanned >= Self.overviewScanLimit ? "\(pastDue)+" : String(pastDue),
            pastDueDays: Int(configuration.pastDueAfter / 86_400), callsChart: callsChart, revenue: revenueCharts)
        return renderer.page("dash-overview", chrome: chrome("Overview", current, section: "overview"), view)
    }

    /// The first instant of the UTC month `back` months before the one holding `date`.
    static func monthStart(_ date: Date, back: Int) -> Date {
        var start = Granularity.month.floor(date)
        for _ in 0..<back { start = Granularity.month.floor(start.addingTimeInterval(-86_400)) }
        return start
    }
}
