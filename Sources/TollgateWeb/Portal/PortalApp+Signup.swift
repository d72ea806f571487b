import Foundation
import TollgateControl
import TollgateCore
import TollgateStore

extension PortalApp {
    struct SignupView: Sendable {
        var open: Bool
        var plans: [PlanOption]
        var name: String
        var email: String
        var formToken: String
    }

    /// The cookie that pairs the signup form with the browser that loaded it (double submit): a
    /// form posted from another site cannot carry the same value, so no site can sign a visitor
    /// up (and in) behind their back.
    static let signupCookie = "tollgate_signup"

    /// The plans offered for signup: `public: true`, not archived, of a product not archived.
    func publicPlans(checked: String?) async throws -> [PlanOption] {
        let products = Dictionary(try await store.allProducts().filter { !$0.archived }.map { ($0.value.id, $0.value.name) },
                                  uniquingKeysWith: { a, _ in a })
        return try await store.allPlans().compactMap { stored in
            guard !stored.archived, stored.value.isPublic, let productName = products[stored.value.product] else { return nil }
            return PlanOption(stored.value, productName: productName, checked: stored.value.id == checked)
        }
    }

    func signupPage(error: String?, request: WebRequest, status: Int = 200) async throws -> WebResponse {
        var chrome = chrome("Sign up")
        chrome.error = error
        // The browser's form token is kept (a form shown again after a mistake still matches it).
        let token = request.cookies[Self.signupCookie].flatMap { $0.utf8.count == 64 ? $0 : nil } ?? ControlPlane.randomSecret()
        let view = SignupView(
            open: configuration.signupEnabled, plans: try await publicPlans(checked: request.form["plan"] ?? request.query["plan"]),
            name: request.form["name"] ?? "", email: request.form["email"] ?? "", formToken: token)
        let cookie = WebCookies.session(
            name: Self.signupCookie, value: token, path: Self.prefix + "/signup", maxAge: 3600, secure: configuration.secureCookies)
        return renderer.page("portal-signup", chrome: chrome, view, status: configuration.signupEnabled ? status : 404)
            .setting(cookie: cookie)
    }

    /// Creates the customer and the subscription, signs the customer in and shows the token once.
    func signup(_ request: WebRequest, now: Date) async throws -> WebResponse {
        guard configuration.signupEnabled else { return try await signupPage(error: nil, request: request) }
        guard let expected = request.cookies[Self.signupCookie], let given = request.form["form_token"],
              bytesEqualInConstantTime(Array(expected.utf8), Array(given.utf8)) else {
            return try await signupPage(error: "The form expired. Please send it again.", request: request, status: 403)
        }
        let name = (request.form["name"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let email = (request.form["email"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let planID = request.form["plan"] ?? ""
        var problems: [String] = []
        if name.isEmpty || name.count > 200 { problems.append("Enter a name (at most 200 characters).") }
        if email.count > 254 || !email.contains("@") || email.hasPrefix("@") || email.hasSuffix("@") {
            problems.append("Enter an e-mail address.")
        }
        let plans = try await publicPlans(checked: nil)
        if !plans.contains(where: { $0.id == planID }) { problems.append("Choose one of the plans offered.") }
        guard problems.isEmpty else {
            return try await signupPage(error: problems.joined(separator: " "), request: request, status: 422)
        }
        guard limiter.admit(request.clientAddress, now: now) else {
            return try await signupPage(
                error: "Too many signups from your address. Please try again later.", request: request, status: 429)
        }
        let customer = Customer(id: RandomID.make("cus"), name: name, email: email, createdAt: now)
        try await store.saveCustomer(customer, mode: .create)
        let issued = try await control.subscribe(customer: customer.id, plan: planID, startedAt: nil)
        let cookie = try await sessions.start(customer: customer.id, now: now)
        let base = Self.prefix + "/subscriptions/" + WebForm.encode(issued.subscription.id)
        return renderer.page("token", chrome: chrome("Welcome"), TokenView(
            heading: "Welcome, \(name)", intro: "Your account and your subscription are ready.",
            token: issued.token, curl: try await curlLine(token: issued.token, product: issued.subscription.product),
            continueHref: base, continueLabel: "Go to your subscription"), status: 201).setting(cookie: cookie)
    }
}
