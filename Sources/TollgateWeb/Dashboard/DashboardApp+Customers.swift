import Foundation
import TollgateControl
import TollgateCore
import TollgateStore

extension DashboardApp {
    struct CustomerRow: Sendable {
        var id: String
        var href: String
        var name: String
        var email: String
        var created: String
    }

    struct CustomersView: Sendable {
        var customers: [CustomerRow]
        var next: String?
        var csrf: String
    }

    func customers(_ request: WebRequest, _ current: WebSessions.Current) async throws -> WebResponse {
        let page = try await store.customers(after: request.query["after"], limit: 100)
        let rows = page.items.filter { !$0.archived }.map { stored in
            CustomerRow(
                id: stored.value.id, href: Self.prefix + "/customers/" + WebForm.encode(stored.value.id), name: stored.value.name,
                email: stored.value.email ?? "", created: Format.time(stored.createdAt))
        }
        var chrome = chrome("Customers", current, section: "customers")
        chrome.notice = Self.notices[request.query["done"] ?? ""]
        return renderer.page("dash-customers", chrome: chrome, CustomersView(
            customers: rows, next: page.nextCursor.map { Self.prefix + "/customers?after=" + WebForm.encode($0) }, csrf: current.csrf))
    }

    func createCustomer(_ request: WebRequest, _ current: WebSessions.Current) async throws -> WebResponse {
        let name = (request.form["name"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let email = (request.form["email"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 200 else { throw InvalidRequest(path: "name", "Enter a name (at most 200 characters).") }
        if !email.isEmpty && !email.contains("@") { throw InvalidRequest(path: "email", "Enter an e-mail address.") }
        let customer = Customer(id: RandomID.make("cus"), name: name, email: email.isEmpty ? nil : email, createdAt: clock())
        try await store.saveCustomer(customer, mode: .create)
        return .redirect(Self.prefix + "/customers/" + WebForm.encode(customer.id) + "?done=created")
    }

    struct PlanChoice: Sendable {
        var id: String
        var name: String
        var product: String
    }

    struct CustomerView: Sendable {
        var id: String
        var name: String
        var email: String?
        var base: String
        var csrf: String
        var subscriptions: [SubscriptionCard]
        var plans: [PlanChoice]
    }

    func customer(_ id: String, _ current: WebSessions.Current, notice: String? = nil) async throws -> WebResponse {
        guard let stored = try await store.customer(id) else { throw StoreError.notFound("no customer") }
        var cards: [SubscriptionCard] = []
        for subscription in try await store.subscriptions(customer: id, limit: 200).items {
            cards.append(SubscriptionCard(
                try await control.account(subscription, now: clock()),
                href: Self.prefix + "/subscriptions/" + WebForm.encode(subscription.id)))
        }
        let plans = try await store.allPlans().filter { !$0.archived }.map {
            PlanChoice(id: $0.value.id, name: $0.value.name, product: $0.value.product)
        }
        var chrome = chrome(stored.value.name, current, section: "customers")
        chrome.notice = notice
        return renderer.page("dash-customer", chrome: chrome, CustomerView(
            id: id, name: stored.value.name, email: stored.value.email, base: Self.prefix + "/customers/" + WebForm.encode(id),
            csrf: current.csrf, subscriptions: cards, plans: plans))
    }

    func customerAction(_ id: String, _ action: String, _ request: WebRequest, _ current: WebSessions.Current) async throws -> WebResponse {
        switch action {
        case "subscriptions":
            let issued = try await control.subscribe(customer: id, plan: request.form["plan"] ?? "", startedAt: nil)
            let base = control.portalAddress.baseURL ?? ""
            return renderer.page("token", chrome: chrome("New subscription", current, section: "customers"), TokenView(
                heading: "Subscription created", intro: "Give this token to the customer.", token: issued.token,
                curl: "curl -H \"apikey: \(issued.token)\" \(base)/\(issued.subscription.product)/",
                continueHref: Self.prefix + "/subscriptions/" + WebForm.encode(issued.subscription.id), continueLabel: "Open the subscription"))
        case "portal-link":
            let link = try await control.createPortalLink(customer: id, now: clock())
            return renderer.page("message", chrome: chrome("Portal link", current, section: "customers"), MessageView(
                heading: "One-time portal link",
                text: "Send this link to the customer; it works once, until \(Format.time(link.expiresAt)): \(link.url)",
                linkHref: Self.prefix + "/customers/" + WebForm.encode(id), linkLabel: "Back to the customer"))
        default:
            return notFound(current)
        }
    }
}
