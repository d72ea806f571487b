import Foundation
import Testing
import TollgateApp
import TollgateBilling
import TollgateCore
import TollgateTestSupport

/// The operator dashboard on the admin port, driven over real HTTP like a browser without JavaScript.
@Suite("Operator dashboard")
struct DashboardTests {
    /// Signs `browser` in with the admin key; returns the overview page.
    static func signIn(_ server: RunningTollgate, _ browser: WebClient) async throws -> TestResponse {
        let signedIn = try await browser.post(server.adminURL + "/dashboard/sign-in", form: [("key", server.adminKey)])
        guard signedIn.status == 303 else { throw TestFailure("sign-in failed: \(signedIn.status)") }
        return try await browser.get(server.adminURL + "/dashboard")
    }

    @Test("sign-in with the admin key, a session cookie, CSRF on forms; the API still wants its key", arguments: TestDatabase.allCases)
    func signIn(database: TestDatabase) async throws {
        try await withTollgate(database: database) { server in
            let browser = WebClient()
            let anonymous = try await browser.get(server.adminURL + "/dashboard")
            #expect(anonymous.status == 303)
            #expect(anonymous.header("Location") == "/dashboard/sign-in")
            let form = try await browser.get(server.adminURL + "/dashboard/sign-in")
            #expect(form.status == 200)
            #expect(isSafePage(form))
            #expect(form.body.contains("name=\"key\""))
            #expect(try await browser.post(server.adminURL + "/dashboard/sign-in", form: [("key", "wrong")]).status == 401)
            #expect(browser.cookies.isEmpty)

            let overview = try await Self.signIn(server, browser)
            #expect(overview.status == 200)
            #expect(isSafePage(overview))
            #expect(overview.body.contains("<svg class=\"chart\""))
            let cookie = try #require(browser.setCookies.first { $0.hasPrefix("tollgate_dashboard=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/dashboard"))

            // A form without the session's token is refused.
            let forged = try await browser.post(server.adminURL + "/dashboard/customers", form: [("name", "Forged")])
            #expect(forged.status == 403)
            // The session is no way into the API.
            #expect(try await browser.get(server.adminURL + "/v1/customers").status == 401)

            let csrf = try #require(WebClient.csrf(in: overview.body))
            let out = try await browser.post(server.adminURL + "/dashboard/sign-out", form: [("csrf", csrf)])
            #expect(out.status == 303)
            #expect(try await browser.get(server.adminURL + "/dashboard").status == 303)
        }
    }

    @Test("customers and subscriptions: listed, a usage chart, never a token outside its one-time page")
    func customersAndSubscriptions() async throws {
        try await withTollgate { server in
            let (subscription, token) = try await server.subscribe(plan: "shop-quota")
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 200)
            let customer = try #require(try await server.admin("GET", "/v1/subscriptions/\(subscription)").json()["customer"] as? String)
            let browser = WebClient()
            _ = try await Self.signIn(server, browser)
            let customers = try await browser.get(server.adminURL + "/dashboard/customers")
            #expect(customers.status == 200)
            #expect(customers.body.contains("href=\"/dashboard/customers/\(customer)\""))
            let page = try await browser.get(server.adminURL + "/dashboard/customers/\(customer)")
            #expect(page.body.contains(subscription))
            let usage = try await waitForValue("the call in the usage explorer") { () -> TestResponse? in
                let page = try await browser.get(server.adminURL + "/dashboard/subscriptions/\(subscription)?range=30d")
                return page.body.contains("<td>hello</td><td class=\"num\">1</td>") ? page : nil
            }
            #expect(isSafePage(usage))
            #expect(usage.body.contains("<svg class=\"chart\""))
            #expect(usage.body.contains("hello per month"))
            for body in [customers.body, page.body, usage.body] { #expect(!body.contains(token)) }

            // Create a customer and a subscription from the dashboard; the token shows once.
            let csrf = try #require(WebClient.csrf(in: page.body))
            let created = try await browser.post(server.adminURL + "/dashboard/customers", form: [("csrf", csrf), ("name", "Grace"), ("email", "grace@example.com")])
            #expect(created.status == 303)
            let location = try #require(created.header("Location"))
            let newCustomer = String(location.dropFirst("/dashboard/customers/".count).prefix { $0 != "?" })
            let issued = try await browser.post(server.adminURL + "/dashboard/customers/\(newCustomer)/subscriptions", form: [("csrf", csrf), ("plan", "shop-basic")])
            let newToken = try #require(WebClient.element("token", in: issued.body))
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", newToken)]).status == 200)
            // Terminate it from the dashboard: the token dies.
            let subscriptions = try await server.admin("GET", "/v1/subscriptions?customer=\(newCustomer)").json()["data"] as? [[String: Any]]
            let newSubscription = try #require(subscriptions?.first?["id"] as? String)
            #expect(try await browser.post(server.adminURL + "/dashboard/subscriptions/\(newSubscription)/terminate", form: [("csrf", csrf)]).status == 303)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", newToken)]).status == 401)
        }
    }

    @Test("invoices filtered by status and voided from the dashboard; webhook deliveries listed")
    func invoices() async throws {
        try await withTollgate(configure: { $0.billing.drafts = true }) { server in
            let (subscription, _) = try await server.subscribe(plan: "shop-basic")
            _ = try await server.admin("POST", "/v1/billing/close", body: "{}")
            let list = try await server.admin("GET", "/v1/invoices?subscription=\(subscription)").json()["data"] as? [[String: Any]]
            let invoice = try #require(list?.first?["id"] as? String)
            let browser = WebClient()
            _ = try await Self.signIn(server, browser)
            let drafts = try await browser.get(server.adminURL + "/dashboard/invoices?status=draft")
            #expect(drafts.status == 200)
            #expect(drafts.body.contains(invoice))
            #expect(!(try await browser.get(server.adminURL + "/dashboard/invoices?status=paid")).body.contains(invoice))
            let page = try await browser.get(server.adminURL + "/dashboard/invoices/\(invoice)")
            #expect(isSafePage(page))
            #expect(page.body.contains("10.00 EUR"))
            let csrf = try #require(WebClient.csrf(in: page.body))
            let voided = try await browser.post(server.adminURL + "/dashboard/invoices/\(invoice)/void", form: [("csrf", csrf)])
            #expect(voided.status == 200)
            #expect(WebClient.element("invoice-status", in: voided.body) == "void")
            #expect(try await server.admin("GET", "/v1/invoices/\(invoice)").json()["status"] as? String == "void")

            // A delivery to a webhook that does not answer, listed and sent again from the dashboard.
            let patched = try await server.admin(
                "PATCH", "/v1/products/shop", body: #"{"webhook":{"url":"http://127.0.0.1:1/hooks","secret":"whsec_test"}}"#)
            #expect(patched.status == 200)
            _ = try await server.subscribe(plan: "shop-pro")
            let webhooks = try await browser.get(server.adminURL + "/dashboard/webhooks")
            #expect(webhooks.status == 200)
            #expect(isSafePage(webhooks))
            #expect(webhooks.body.contains("subscription.created"))
            let deliveries = try await server.admin("GET", "/v1/webhooks/deliveries").json()["data"] as? [[String: Any]]
            let delivery = try #require(deliveries?.first?["id"] as? String)
            let retried = try await browser.post(server.adminURL + "/dashboard/webhooks/\(delivery)/retry", form: [("csrf", csrf)])
            #expect(retried.status == 303)
            #expect(retried.header("Location") == "/dashboard/webhooks?done=retried")
        }
    }

    @Test("the catalog as YAML: downloaded, an invalid edit shown by line, a valid one applied")
    func catalog() async throws {
        try await withTollgate { server in
            let browser = WebClient()
            _ = try await Self.signIn(server, browser)
            let page = try await browser.get(server.adminURL + "/dashboard/catalog")
            #expect(page.status == 200)
            #expect(isSafePage(page))
            let download = try await browser.get(server.adminURL + "/dashboard/catalog.yaml")
            #expect(download.header("Content-Disposition")?.contains("attachment") == true)
            let yaml = download.body
            #expect(try Catalog.parse(yaml: yaml).plans.count > 5)
            let csrf = try #require(WebClient.csrf(in: page.body))

            // A bad amount and an unknown key: both shown next to their lines; nothing changes.
            var lines = yaml.components(separatedBy: "\n")
            let idLine = try #require(lines.firstIndex { $0.hasSuffix("- id: \"shop-basic\"") })
            let nameLine = idLine + 2
            #expect(lines[nameLine].contains("name: \"Basic\""))
            lines.insert("    colour: \"blue\"", at: nameLine + 1)
            let amountLine = try #require(lines.indices.first { $0 > idLine && lines[$0].contains("amount: \"10.00\"") })
            lines[amountLine] = lines[amountLine].replacingOccurrences(of: "\"10.00\"", with: "\"ten\"")
            let refused = try await browser.post(server.adminURL + "/dashboard/catalog", form: [("csrf", csrf), ("yaml", lines.joined(separator: "\n"))])
            #expect(refused.status == 422)
            #expect(refused.body.contains("class=\"problem\""))
            #expect(refused.body.contains("colour"))
            #expect(refused.body.contains("id=\"problem-\(amountLine + 1)\""))
            #expect(try await server.admin("GET", "/v1/plans/shop-basic").json()["name"] as? String == "Basic")

            var edited = yaml.components(separatedBy: "\n")
            edited[nameLine] = edited[nameLine].replacingOccurrences(of: "\"Basic\"", with: "\"Basic (2027)\"")
            let renamed = edited.joined(separator: "\n")
            let applied = try await browser.post(server.adminURL + "/dashboard/catalog", form: [("csrf", csrf), ("yaml", renamed)])
            #expect(applied.status == 200)
            #expect(applied.body.contains("The catalog was applied."))
            #expect(try await server.admin("GET", "/v1/plans/shop-basic").json()["name"] as? String == "Basic (2027)")
        }
    }
}
