import Foundation
import Logging
import TollgateControl
import TollgateCore
import TollgateStore

/// Settings of the consumer portal.
public struct PortalConfiguration: Sendable {
    /// Whether `/_portal/signup` creates customers (`--portal-signup on|off`).
    public var signupEnabled = true
    /// Signups per client address and window.
    public var signupLimit = SignupLimit()
    /// How long a portal session lasts.
    public var sessionLifetime: TimeInterval = 12 * 3600
    /// Mark cookies `Secure` (the portal is reached over HTTPS).
    public var secureCookies = false

    public init() {}
}

/// The consumer portal under `/_portal` on the proxy port (DESIGN §3.10): signup with public
/// plans, sign-in by one-time link, subscriptions with quotas, usage and charges, token rotation,
/// change of plan, cancellation, invoices. A customer only ever sees their own objects: every
/// lookup checks the owner and answers 404 otherwise.
public struct PortalApp: Sendable {
    public static let prefix = "/_portal"
    let control: ControlPlane
    let configuration: PortalConfiguration
    let sessions: WebSessions
    let renderer: PageRenderer
    let limiter: SharedSignupLimit
    let clock: @Sendable () -> Date
    let logger: Logger

    public init(control: ControlPlane, configuration: PortalConfiguration, logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.control = control
        self.configuration = configuration
        self.sessions = WebSessions(
            store: control.store, kind: .portal, cookieName: "tollgate_portal", path: Self.prefix,
            lifetime: configuration.sessionLifetime, secure: configuration.secureCookies)
        self.renderer = PageRenderer()
        self.limiter = SharedSignupLimit(configuration.signupLimit)
        self.clock = clock
        self.logger = logger
    }

    var store: TollgateStore { control.store }

    /// Answers one request; errors become a plain error page (never their text).
    public func respond(_ request: WebRequest) async -> WebResponse {
        do {
            return try await route(request)
        } catch let error as StoreError where error.code == .notFound {
            return notFound()
        } catch {
            logger.error("portal request failed", metadata: ["error": "\(type(of: error))"])
            return renderer.page("message", chrome: chrome("Something went wrong"), MessageView(
                heading: "Something went wrong", text: "The request could not be completed. Please try again.",
                linkHref: Self.prefix, linkLabel: "Back"), status: 500)
        }
    }

    private func route(_ request: WebRequest) async throws -> WebResponse {
        let path = request.path
        let now = clock()
        switch (request.method, path) {
        case ("GET", ["assets", "app.css"]):
            return PageRenderer.stylesheet()
        case ("GET", ["signup"]):
            return try await signupPage(error: nil, request: request)
        case ("POST", ["signup"]):
            return try await signup(request, now: now)
        case ("GET", ["sign-in"]):
            return signedOutPage()
        case ("GET", let parts) where parts.count == 2 && parts[0] == "sign-in":
            return try await useLink(parts[1], now: now)
        default:
            break
        }
        guard let current = try await sessions.current(request, now: now), let customer = current.session.customer else {
            if request.method == "GET" { return .redirect(Self.prefix + "/sign-in") }
            return renderer.page("message", chrome: chrome("Signed out"), MessageView(
                heading: "Signed out", text: "Your session has ended. Open a new sign-in link to go on.", linkHref: nil), status: 401)
        }
        if request.method == "POST" && !WebSessions.checkCSRF(request, current) {
            return renderer.page("message", chrome: chrome("Form expired", current), MessageView(
                heading: "Form expired", text: "The form was not sent from this session. Reload the page and try again.",
                linkHref: Self.prefix, linkLabel: "Back"), status: 403)
        }
        switch (request.method, path) {
        case ("GET", []):
            return try await home(customer: customer, current)
        case ("GET", ["invoices"]):
            return try await invoices(customer: customer, current)
        case ("POST", ["sign-out"]):
            let cookie = try await sessions.end(current)
            return .redirect(Self.prefix + "/sign-in", cookies: [cookie])
        case ("GET", let parts) where parts.count == 2 && parts[0] == "subscriptions":
            let subscription = try await owned(parts[1], customer: customer)
            return try await subscriptionPage(subscription, current, request: request, error: nil)
        case ("POST", let parts) where parts.count == 3 && parts[0] == "subscriptions":
            let subscription = try await owned(parts[1], customer: customer)
            return try await act(parts[2], on: subscription, current, request: request)
        default:
            return notFound(current)
        }
    }

    // MARK: Chrome

    func chrome(_ title: String, _ current: WebSessions.Current? = nil, section: String = "") -> Chrome {
        var chrome = Chrome(title: title, area: "Portal", stylesheet: Self.prefix + "/assets/app.css")
        if let current {
            chrome.nav = [
                PageLink(label: "Subscriptions", href: Self.prefix, current: section == "home"),
                PageLink(label: "Invoices", href: Self.prefix + "/invoices", current: section == "invoices"),
            ]
            chrome.signOut = Self.prefix + "/sign-out"
            chrome.csrf = current.csrf
        }
        return chrome
    }

    func notFound(_ current: WebSessions.Current? = nil) -> WebResponse {
        renderer.page("message", chrome: chrome("Not found", current), MessageView(
            heading: "Not found", text: "There is nothing here.", linkHref: Self.prefix, linkLabel: "Your subscriptions"), status: 404)
    }

    /// The subscription if it belongs to `customer`; not found otherwise (whether or not it exists).
    func owned(_ id: String, customer: String) async throws -> Subscription {
        guard let subscription = try await store.subscription(id), subscription.customer == customer else {
            throw StoreError.notFound("no subscription")
        }
        return subscription
    }

    // MARK: Sign-in

    private func signedOutPage() -> WebResponse {
        renderer.page("message", chrome: chrome("Sign in"), MessageView(
            heading: "Sign in",
            text: "You sign in to the portal with a one-time link from the API's provider. Each link works once, within an hour. New here? Sign up for a plan.",
            linkHref: Self.prefix + "/signup", linkLabel: "Sign up"))
    }

    private func useLink(_ token: String, now: Date) async throws -> WebResponse {
        guard token.utf8.count == 64,
              let customer = try await store.consumePortalLink(tokenHash: ControlPlane.secretDigest(token), now: now) else {
            return renderer.page("message", chrome: chrome("Link not valid"), MessageView(
                heading: "This link is not valid",
                text: "Sign-in links work once, within an hour. This one was already used, has expired, or never existed. Ask for a new one.",
                linkHref: nil), status: 410)
        }
        let cookie = try await sessions.start(customer: customer, now: now)
        return .redirect(Self.prefix, cookies: [cookie])
    }

    // MARK: Pages

    struct HomeView: Sendable {
        var customerName: String
        var subscriptions: [SubscriptionCard]
    }

    private func home(customer: String, _ current: WebSessions.Current) async throws -> WebResponse {
        let name = try await store.customer(customer)?.value.name ?? customer
        var cards: [SubscriptionCard] = []
        for subscription in try await store.subscriptions(customer: customer, limit: 200).items {
            let account = try await control.account(subscription, now: clock())
            cards.append(SubscriptionCard(account, href: Self.prefix + "/subscriptions/" + WebForm.encode(subscription.id)))
        }
        cards.sort { ($0.active ? 0 : 1, $0.id) < ($1.active ? 0 : 1, $1.id) }
        return renderer.page("portal-home", chrome: chrome("Your subscriptions", current, section: "home"),
                             HomeView(customerName: name, subscriptions: cards))
    }

    struct SubscriptionPageView: Sendable {
        var card: SubscriptionCard
        var usage: UsageView
        var estimate: EstimateView
        var active: Bool
        var base: String
        var csrf: String
        var choices: [PlanOption]
        var hasChoices: Bool
    }

    func subscriptionPage(_ subscription: Subscription, _ current: WebSessions.Current, request: WebRequest, error: String?) async throws
        -> WebResponse
    {
        let now = clock()
        let account = try await control.account(subscription, now: now)
        let report = try await control.usageReport(subscription, span: TimeSpan(start: account.period.start, end: max(account.period.start, min(now, account.period.end)).addingTimeInterval(1)))
        let charges = try await control.runningCharges(account, now: now)
        let base = Self.prefix + "/subscriptions/" + WebForm.encode(subscription.id)
        let choices = try await planChoices(for: account)
        let view = SubscriptionPageView(
            card: SubscriptionCard(account, href: base), usage: UsageView(report, title: "Calls per day"),
            estimate: EstimateView(charges, currency: account.plan.currency), active: subscription.status.hasCredential,
            base: base, csrf: current.csrf, choices: choices, hasChoices: !choices.isEmpty)
        var chrome = chrome(account.plan.name, current, section: "home")
        chrome.error = error
        chrome.notice = Self.notices[request.query["done"] ?? ""]
        return renderer.page("portal-subscription", chrome: chrome, view, status: error == nil ? 200 : 422)
    }

    /// Fixed messages after a change (never text from the request).
    static let notices = ["changed": "Your plan was changed.", "cancelled": "Your subscription was cancelled."]

    /// Public plans the subscription may move to: same product, currency and period.
    private func planChoices(for account: SubscriptionAccount) async throws -> [PlanOption] {
        let productName = try await store.product(account.plan.product)?.value.name ?? account.plan.product
        return try await store.allPlans().filter { stored in
            let plan = stored.value
            return !stored.archived && plan.isPublic && plan.product == account.plan.product && plan.id != account.plan.id
                && plan.currency == account.plan.currency && plan.period == account.plan.period
        }.map { PlanOption($0.value, productName: productName) }
    }

    private func act(_ action: String, on subscription: Subscription, _ current: WebSessions.Current, request: WebRequest) async throws
        -> WebResponse
    {
        let base = Self.prefix + "/subscriptions/" + WebForm.encode(subscription.id)
        switch action {
        case "rotate":
            guard subscription.status.hasCredential else { return try await subscriptionPage(subscription, current, request: request, error: "This subscription has ended.") }
            let issued = try await control.rotateToken(subscription.id)
            return renderer.page("token", chrome: chrome("New token", current, section: "home"), TokenView(
                heading: "Your new token", intro: "Your token was rotated. The old token stopped working just now.",
                token: issued.token, curl: try await curlLine(token: issued.token, product: subscription.product),
                continueHref: base, continueLabel: "Back to the subscription"))
        case "change-plan":
            let choices = try await planChoices(for: try await control.account(subscription, now: clock()))
            guard let plan = request.form["plan"], choices.contains(where: { $0.id == plan }) else {
                return try await subscriptionPage(subscription, current, request: request, error: "Choose one of the plans offered.")
            }
            do {
                _ = try await control.changePlan(subscription.id, to: plan)
            } catch let invalid as InvalidRequest {
                return try await subscriptionPage(subscription, current, request: request, error: invalid.problems.map(\.message).joined(separator: "; "))
            }
            return .redirect(base + "?done=changed")
        case "cancel":
            _ = try await control.terminate(subscription.id)
            return .redirect(base + "?done=cancelled")
        default:
            return notFound(current)
        }
    }

    struct InvoicesView: Sendable {
        var invoices: [InvoiceView]
    }

    private func invoices(customer: String, _ current: WebSessions.Current) async throws -> WebResponse {
        var all: [Invoice] = []
        var cursor: String?
        repeat {
            let page = try await store.invoices(customer: customer, after: cursor, limit: 200)
            all += page.items
            cursor = page.nextCursor
        } while cursor != nil && all.count < 1000
        let views = all.reversed().map { InvoiceView($0, href: "") }
        return renderer.page("portal-invoices", chrome: chrome("Invoices", current, section: "invoices"), InvoicesView(invoices: views))
    }

    /// A `curl` line that calls the product with `token`.
    func curlLine(token: String, product: String) async throws -> String {
        let base = control.portalAddress.baseURL ?? ""
        let endpoint = try await store.product(product)?.value.endpoints.first {
            !$0.archived && $0.method == "GET" && !$0.path.description.contains("{")
        }
        return "curl -H \"apikey: \(token)\" \(base)/\(product)\(endpoint?.path.description ?? "/")"
    }
}
