import Crypto
import Foundation
import Logging
import TollgateControl
import TollgateCore
import TollgateStore

/// Settings of the operator dashboard.
public struct DashboardConfiguration: Sendable {
    public var adminKey: String
    /// How long a dashboard session lasts.
    public var sessionLifetime: TimeInterval = 8 * 3600
    /// Mark cookies `Secure` (the admin port is reached over HTTPS).
    public var secureCookies = false
    /// A finalized invoice unpaid for longer than this counts as past due on the overview.
    public var pastDueAfter: TimeInterval = 14 * 86_400

    public init(adminKey: String) {
        self.adminKey = adminKey
    }
}

/// The operator dashboard under `/dashboard` on the admin port (DESIGN §3.10): sign-in with the
/// admin key (compared in constant time) into a session cookie, CSRF tokens on every form; the
/// overview, customers and subscriptions, usage charts, invoices, webhook deliveries and the
/// catalog as YAML.
public struct DashboardApp: Sendable {
    public static let prefix = "/dashboard"
    let control: ControlPlane
    let configuration: DashboardConfiguration
    let keyDigest: SHA256.Digest
    let sessions: WebSessions
    let renderer: PageRenderer
    let clock: @Sendable () -> Date
    let logger: Logger

    public init(control: ControlPlane, configuration: DashboardConfiguration, logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.control = control
        self.configuration = configuration
        self.keyDigest = SHA256.hash(data: Data(configuration.adminKey.utf8))
        self.sessions = WebSessions(
            store: control.store, kind: .dashboard, cookieName: "tollgate_dashboard", path: Self.prefix,
            lifetime: configuration.sessionLifetime, secure: configuration.secureCookies)
        self.renderer = PageRenderer()
        self.clock = clock
        self.logger = logger
    }

    var store: TollgateStore { control.store }

    /// Answers one request; errors become an error page (a refusal's reason, never an internal error's text).
    public func respond(_ request: WebRequest) async -> WebResponse {
        var current: WebSessions.Current?
        do {
            if request.method == "GET", request.path == ["assets", "app.css"] { return PageRenderer.stylesheet() }
            if request.path == ["sign-in"] { return try await signIn(request) }
            current = try await sessions.current(request, now: clock())
            guard let current else {
                if request.method == "GET" { return .redirect(Self.prefix + "/sign-in") }
                return renderer.page("message", chrome: chrome("Signed out"), MessageView(
                    heading: "Signed out", text: "Your session has ended. Sign in again.",
                    linkHref: Self.prefix + "/sign-in", linkLabel: "Sign in"), status: 401)
            }
            if request.method == "POST" && !WebSessions.checkCSRF(request, current) {
                return message("Form expired", "The form was not sent from this session. Reload the page and try again.", current, status: 403)
            }
            return try await route(request, current)
        } catch let error as StoreError {
            if error.code == .notFound { return notFound(current) }
            return message("Not possible", error.message, current, status: 409)
        } catch let invalid as InvalidRequest {
            return message("Not possible", invalid.problems.map(\.message).joined(separator: "; "), current, status: 422)
        } catch {
            logger.error("dashboard request failed", metadata: ["error": "\(type(of: error))"])
            return message("Something went wrong", "The request could not be completed.", current, status: 500)
        }
    }

    private func route(_ request: WebRequest, _ current: WebSessions.Current) async throws -> WebResponse {
        switch (request.method, request.path) {
        case ("GET", []): return try await overview(current)
        case ("POST", ["sign-out"]):
            return .redirect(Self.prefix + "/sign-in", cookies: [try await sessions.end(current)])
        case ("GET", ["customers"]): return try await customers(request, current)
        case ("POST", ["customers"]): return try await createCustomer(request, current)
        case ("GET", let p) where p.count == 2 && p[0] == "customers":
            return try await customer(p[1], current, notice: Self.notices[request.query["done"] ?? ""])
        case ("POST", let p) where p.count == 3 && p[0] == "customers": return try await customerAction(p[1], p[2], request, current)
        case ("GET", let p) where p.count == 2 && p[0] == "subscriptions": return try await subscription(p[1], request, current)
        case ("POST", let p) where p.count == 3 && p[0] == "subscriptions": return try await subscriptionAction(p[1], p[2], request, current)
        case ("GET", ["invoices"]): return try await invoices(request, current)
        case ("GET", let p) where p.count == 2 && p[0] == "invoices": return try await invoice(p[1], current)
        case ("POST", let p) where p.count == 3 && p[0] == "invoices": return try await invoiceAction(p[1], p[2], current)
        case ("GET", ["webhooks"]): return try await webhooks(request, current)
        case ("POST", let p) where p.count == 3 && p[0] == "webhooks" && p[2] == "retry":
            _ = try await store.retryDelivery(p[1], now: clock())
            return .redirect(Self.prefix + "/webhooks?done=retried")
        case ("GET", ["catalog"]): return try await catalogPage(current, yaml: nil, problems: [])
        case ("GET", ["catalog.yaml"]): return try await catalogDownload()
        case ("POST", ["catalog"]): return try await applyCatalog(request, current)
        default: return notFound(current)
        }
    }

    // MARK: Chrome

    func chrome(_ title: String, _ current: WebSessions.Current? = nil, section: String = "") -> Chrome {
        var chrome = Chrome(title: title, area: "Dashboard", stylesheet: Self.prefix + "/assets/app.css")
        if let current {
            chrome.nav = [("Overview", "", "overview"), ("Customers", "/customers", "customers"), ("Invoices", "/invoices", "invoices"),
                          ("Webhooks", "/webhooks", "webhooks"), ("Catalog", "/catalog", "catalog")].map {
                PageLink(label: $0.0, href: Self.prefix + $0.1, current: section == $0.2)
            }
            chrome.signOut = Self.prefix + "/sign-out"
            chrome.csrf = current.csrf
        }
        return chrome
    }

    func message(_ heading: String, _ text: String, _ current: WebSessions.Current?, status: Int) -> WebResponse {
        renderer.page("message", chrome: chrome(heading, current), MessageView(
            heading: heading, text: text, linkHref: Self.prefix, linkLabel: "Overview"), status: status)
    }

    func notFound(_ current: WebSessions.Current?) -> WebResponse {
        message("Not found", "There is nothing here.", current, status: 404)
    }

    /// Fixed messages after an action (never text from the request).
    static let notices = [
        "created": "Created.", "changed": "The plan was changed.", "terminated": "The subscription was terminated.",
        "finalized": "The invoice was finalized.", "paid": "The invoice was recorded as paid.", "void": "The invoice was voided.",
        "retried": "The delivery will be sent again now.", "applied": "The catalog was applied.",
    ]

    // MARK: Sign-in

    struct Empty: Sendable {}

    private func signIn(_ request: WebRequest) async throws -> WebResponse {
        guard request.method == "POST" else {
            return renderer.page("dash-sign-in", chrome: chrome("Sign in"), Empty())
        }
        // Digests compared: the time does not depend on where the keys differ.
        let given = SHA256.hash(data: Data((request.form["key"] ?? "").utf8))
        guard given == keyDigest else {
            var chrome = chrome("Sign in")
            chrome.error = "That is not the admin key."
            return renderer.page("dash-sign-in", chrome: chrome, Empty(), status: 401)
        }
        let cookie = try await sessions.start(customer: nil, now: clock())
        return .redirect(Self.prefix, cookies: [cookie])
    }
}
