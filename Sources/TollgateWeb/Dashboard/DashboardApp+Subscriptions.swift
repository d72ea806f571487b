import Foundation
import TollgateControl
import TollgateCore
import TollgateStore

extension DashboardApp {
    struct SubscriptionView: Sendable {
        var card: SubscriptionCard
        var usage: UsageView
        var estimate: EstimateView
        var ranges: [PageLink]
        var active: Bool
        var base: String
        var csrf: String
        var choices: [PlanChoice]
        var hasChoices: Bool
    }

    /// The usage explorer's ranges: the current period, or the last 7, 30 or 90 days.
    static let ranges: [(key: String, label: String, days: Int?)] = [
        ("period", "Current period", nil), ("7d", "Last 7 days", 7), ("30d", "Last 30 days", 30), ("90d", "Last 90 days", 90),
    ]

    func subscription(_ id: String, _ request: WebRequest, _ current: WebSessions.Current) async throws -> WebResponse {
        guard let subscription = try await store.subscription(id) else { throw StoreError.notFound("no subscription") }
        let now = clock()
        let account = try await control.account(subscription, now: now)
        let base = Self.prefix + "/subscriptions/" + WebForm.encode(id)
        let range = Self.ranges.first { $0.key == request.query["range"] } ?? Self.ranges[0]
        let end = max(account.period.start, min(now, account.period.end)).addingTimeInterval(1)
        let span: TimeSpan
        if let days = range.days {
            let today = Granularity.day.floor(now)
            span = TimeSpan(start: today.addingTimeInterval(Double(1 - days) * 86_400), end: now.addingTimeInterval(1))
        } else {
            span = TimeSpan(start: account.period.start, end: end)
        }
        let report = try await control.usageReport(subscription, span: span)
        let charges = try await control.runningCharges(account, now: now)
        let choices = try await store.allPlans().filter { stored in
            !stored.archived && stored.value.product == account.plan.product && stored.value.id != account.plan.id
                && stored.value.currency == account.plan.currency && stored.value.period == account.plan.period
        }.map { PlanChoice(id: $0.value.id, name: $0.value.name, product: $0.value.product) }
        let view = SubscriptionView(
            card: SubscriptionCard(account, href: base), usage: UsageView(report, title: "Calls per day by endpoint"),
            estimate: EstimateView(charges, currency: account.plan.currency),
            ranges: Self.ranges.map { PageLink(label: $0.label, href: base + "?range=" + $0.key, current: $0.key == range.key) },
            active: subscription.status.hasCredential, base: base, csrf: current.csrf, choices: choices,
            hasChoices: !choices.isEmpty)
        var chrome = chrome(account.plan.name, current, section: "customers")
        chrome.notice = Self.notices[request.query["done"] ?? ""]
        return renderer.page("dash-subscription", chrome: chrome, view)
    }

    func subscriptionAction(_ id: String, _ action: String, _ request: WebRequest, _ current: WebSessions.Current) async throws
        -> WebResponse
    {
        let base = Self.prefix + "/subscriptions/" + WebForm.encode(id)
        switch action {
        case "terminate":
            _ = try await control.terminate(id)
            return .redirect(base + "?done=terminated")
        case "change-plan":
            _ = try await control.changePlan(id, to: request.form["plan"] ?? "")
            return .redirect(base + "?done=changed")
        case "rotate":
            let issued = try await control.rotateToken(id)
            let root = control.portalAddress.baseURL ?? ""
            return renderer.page("token", chrome: chrome("New token", current, section: "customers"), TokenView(
                heading: "Token rotated", intro: "The old token stopped working just now. Give this one to the customer.",
                token: issued.token, curl: "curl -H \"apikey: \(issued.token)\" \(root)/\(issued.subscription.product)/",
                continueHref: base, continueLabel: "Back to the subscription"))
        default:
            return notFound(current)
        }
    }
}
