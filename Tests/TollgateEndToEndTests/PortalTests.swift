import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing
import TollgateApp
import TollgateCore
import TollgateTestSupport
import TollgateWeb

/// Plans `shop-basic` and `shop-pro` offered for signup.
@Sendable func publicShopPlans(_ options: inout ServeOptions) {
    guard var catalog = options.catalog else { return }
    for index in catalog.plans.indices where ["shop-basic", "shop-pro", "shop-metered", "shop-metered-plus"].contains(catalog.plans[index].id) {
        catalog.plans[index].isPublic = true
    }
    options.catalog = catalog
}

/// The consumer portal on the proxy port, driven over real HTTP like a browser without JavaScript.
@Suite("Consumer portal")
struct PortalTests {
    /// Signs up for `plan` in `browser`; returns the signup page and the token shown.
    static func signUp(_ server: RunningTollgate, _ browser: WebClient, plan: String, name: String = "Ada") async throws
        -> (page: TestResponse, token: String)
    {
        let form = try await browser.get(server.proxyURL + "/_portal/signup")
        let page = try await browser.post(
            server.proxyURL + "/_portal/signup",
            form: [("name", name), ("email", "\(name.lowercased())@example.com"), ("plan", plan), ("form_token", formToken(form.body))])
        guard page.status == 201, let token = WebClient.element("token", in: page.body) else {
            throw TestFailure("signup failed: \(page.status) \(page.body)")
        }
        return (page, token)
    }

    /// The signup form's token in `html`.
    static func formToken(_ html: String) -> String {
        html.range(of: "name=\"form_token\" value=\"").map { String(html[$0.upperBound...].prefix { $0 != "\"" }) } ?? ""
    }

    /// The first link to a subscription page in `html`.
    static func subscriptionLink(in html: String) -> String? {
        html.range(of: "href=\"/_portal/subscriptions/").map { "/_portal/subscriptions/" + html[$0.upperBound...].prefix { $0 != "\"" } }
    }

    @Test("signup shows only public plans, creates the subscription, shows its token once and signs in")
    func signup() async throws {
        try await withTollgate(configure: publicShopPlans) { server in
            let browser = WebClient()
            let form = try await browser.get(server.proxyURL + "/_portal/signup")
            #expect(form.status == 200)
            #expect(isSafePage(form))
            #expect(form.body.contains("value=\"shop-basic\""))
            #expect(!form.body.contains("value=\"shop-quota\""))
            #expect(form.body.contains("<label for=\"email\">"))

            let (page, token) = try await Self.signUp(server, browser, plan: "shop-basic")
            #expect(isSafePage(page))
            #expect(token.hasPrefix("tg_"))
            #expect(WebClient.element("curl", in: page.body)?.contains("apikey: \(token)") == true)
            let cookie = try #require(browser.setCookies.first { $0.hasPrefix("tollgate_portal=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/_portal"))

            // The token works at once.
            let call = try await server.proxy("/shop/hello", headers: [("apikey", token)])
            #expect(call.status == 200)

            // The subscriptions page lists it, without the token.
            let home = try await browser.get(server.proxyURL + "/_portal")
            #expect(home.status == 200)
            #expect(isSafePage(home))
            #expect(home.body.contains("Basic"))
            #expect(!home.body.contains(token))
        }
    }

    @Test("usage shows on the subscription page; rotation kills the old token at once")
    func usageAndRotation() async throws {
        try await withTollgate(configure: publicShopPlans) { server in
            let browser = WebClient()
            let (_, token) = try await Self.signUp(server, browser, plan: "shop-metered")
            for _ in 0..<3 { #expect(try await server.proxy("/shop/items/7", headers: [("apikey", token)]).status == 200) }
            let home = try await browser.get(server.proxyURL + "/_portal")
            let link = try #require(Self.subscriptionLink(in: home.body))
            let page = try await waitForValue("the calls on the subscription page") { () -> TestResponse? in
                let page = try await browser.get(server.proxyURL + link)
                return page.body.contains("<td>get-item</td><td class=\"num\">3</td>") ? page : nil
            }
            #expect(isSafePage(page))
            #expect(page.body.contains("<svg class=\"chart\""))
            #expect(page.body.contains("item-reads"))
            // Three reads: two free, the third at 0.015 plus the tier's flat 1 → 1.02 EUR (rounded half-up).
            #expect(WebClient.element("estimate-total", in: page.body) == "1.02 EUR")
            #expect(!page.body.contains(token))

            // A form without the session's CSRF token is refused.
            #expect(try await browser.post(server.proxyURL + link + "/rotate", form: [("csrf", "forged")]).status == 403)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 200)

            let csrf = try #require(WebClient.csrf(in: page.body))
            let rotated = try await browser.post(server.proxyURL + link + "/rotate", form: [("csrf", csrf)])
            #expect(rotated.status == 200)
            let newToken = try #require(WebClient.element("token", in: rotated.body))
            #expect(newToken != token)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 401)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", newToken)]).status == 200)
        }
    }

    @Test("change of plan among public plans, then cancellation")
    func changeAndCancel() async throws {
        try await withTollgate(configure: publicShopPlans) { server in
            let browser = WebClient()
            let (page, token) = try await Self.signUp(server, browser, plan: "shop-basic")
            let link = try #require(Self.subscriptionLink(in: page.body))
            let before = try await browser.get(server.proxyURL + link)
            #expect(before.body.contains("<option value=\"shop-pro\">"))
            // Not public, and another period: never offered.
            #expect(!before.body.contains("value=\"shop-quota\""))
            #expect(!before.body.contains("value=\"shop-metered\""))
            let csrf = try #require(WebClient.csrf(in: before.body))
            // A plan that is not offered is refused.
            #expect(try await browser.post(server.proxyURL + link + "/change-plan", form: [("csrf", csrf), ("plan", "shop-quota")]).status == 422)
            let changed = try await browser.post(server.proxyURL + link + "/change-plan", form: [("csrf", csrf), ("plan", "shop-pro")])
            #expect(changed.status == 303)
            let after = try await browser.get(server.proxyURL + link + "?done=changed")
            #expect(after.body.contains("<h1>Pro"))
            let cancelled = try await browser.post(server.proxyURL + link + "/cancel", form: [("csrf", csrf)])
            #expect(cancelled.status == 303)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 401)
        }
    }

    @Test("a one-time link from the admin API signs in once, within the hour", arguments: TestDatabase.allCases)
    func oneTimeLink(database: TestDatabase) async throws {
        try await withTollgate(database: database) { server in
            let (subscription, token) = try await server.subscribe(plan: "shop-basic")
            let customer = try #require(try await server.admin("GET", "/v1/subscriptions/\(subscription)").json()["customer"] as? String)
            let created = try await server.admin("POST", "/v1/customers/\(customer)/portal-sessions")
            #expect(created.status == 201)
            let json = try created.json()
            let url = try #require(json["url"] as? String)
            let expires = try #require((json["expires_at"] as? String).flatMap(RFC3339.date))
            #expect(url.hasPrefix(server.proxyURL + "/_portal/sign-in/"))
            #expect(expires.timeIntervalSinceNow > 3500 && expires.timeIntervalSinceNow <= 3600)
            #expect(try await server.admin("POST", "/v1/customers/nobody/portal-sessions").status == 404)
            #expect(try await server.admin("POST", "/v1/customers/\(customer)/portal-sessions", key: "").status == 401)

            let browser = WebClient()
            let first = try await browser.get(url)
            #expect(first.status == 303)
            #expect(first.header("Location") == "/_portal")
            let home = try await browser.get(server.proxyURL + "/_portal")
            #expect(home.status == 200)
            #expect(home.body.contains(subscription))
            #expect(!home.body.contains(token))

            let again = try await WebClient().get(url)
            #expect(again.status == 410)
            #expect(isSafePage(again))
            // Without a session, the portal's pages send the browser to sign in.
            #expect(try await WebClient().get(server.proxyURL + "/_portal").status == 303)
        }
    }

    @Test("a customer never sees or changes another customer's subscription or invoices")
    func isolation() async throws {
        try await withTollgate(configure: publicShopPlans) { server in
            let (other, otherToken) = try await server.subscribe(plan: "shop-basic")
            _ = try await server.admin("POST", "/v1/billing/close", body: "{}")
            let otherInvoices = try await server.admin("GET", "/v1/invoices?subscription=\(other)").json()["data"] as? [[String: Any]] ?? []
            let otherInvoice = try #require(otherInvoices.first?["id"] as? String)

            let browser = WebClient()
            _ = try await Self.signUp(server, browser, plan: "shop-basic", name: "Mallory")
            let csrf = try #require(WebClient.csrf(in: try await browser.get(server.proxyURL + "/_portal").body))

            #expect(try await browser.get(server.proxyURL + "/_portal/subscriptions/\(other)").status == 404)
            #expect(try await browser.post(server.proxyURL + "/_portal/subscriptions/\(other)/rotate", form: [("csrf", csrf)]).status == 404)
            #expect(try await browser.post(server.proxyURL + "/_portal/subscriptions/\(other)/cancel", form: [("csrf", csrf)]).status == 404)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", otherToken)]).status == 200)
            let home = try await browser.get(server.proxyURL + "/_portal")
            #expect(!home.body.contains(other))
            let invoices = try await browser.get(server.proxyURL + "/_portal/invoices")
            #expect(invoices.status == 200)
            #expect(!invoices.body.contains(otherInvoice))
        }
    }

    @Test("tollgate serve --portal-signup off|on, --portal-url; bad values exit 2")
    func commandLine() async throws {
        #expect(try TollgateProcess.run(["serve", "--portal-signup", "maybe"]).code == 2)
        #expect(try TollgateProcess.run(["serve", "--portal-url", "ftp://x"]).code == 2)
        #expect(try TollgateProcess.run(["serve", "--portal-signup-limit", "-1"]).code == 2)
        let directory = TemporaryDirectory.make()
        let catalog = directory.appendingPathComponent("catalog.yaml")
        try TestCatalog.yaml(upstreamPort: 9).replacingOccurrences(of: "    name: Pro\n", with: "    name: Pro\n    public: true\n")
            .write(to: catalog, atomically: true, encoding: .utf8)
        let process = try TollgateProcess.start(
            ["serve", "--config", catalog.path, "--data-dir", directory.appendingPathComponent("data").path, "--proxy-port", "0",
             "--admin-port", "0", "--portal-signup", "off", "--portal-url", "https://api.example.com/"],
            environment: ["TOLLGATE_ADMIN_KEY": "process-admin-key"])
        let (proxy, admin) = try await process.waitUntilListening()
        let signup = try await TestHTTP.request("GET", "http://127.0.0.1:\(proxy)/_portal/signup")
        #expect(signup.status == 404)
        #expect(signup.body.contains("turned off"))
        let auth = [("Authorization", "Bearer process-admin-key")]
        let plan = try await TestHTTP.request("GET", "http://127.0.0.1:\(admin)/v1/plans/shop-pro", headers: auth).json()
        #expect(plan["public"] as? Bool == true)
        let customer = try await TestHTTP.request("POST", "http://127.0.0.1:\(admin)/v1/customers", headers: auth, body: #"{"name":"Cli"}"#).json()
        let id = try #require(customer["id"] as? String)
        let link = try await TestHTTP.request("POST", "http://127.0.0.1:\(admin)/v1/customers/\(id)/portal-sessions", headers: auth).json()
        #expect((link["url"] as? String)?.hasPrefix("https://api.example.com/_portal/sign-in/") == true)
        process.signal(SIGTERM)
        #expect(try await process.waitForExit() == 0)
    }

    @Test("behind TLS the portal's and the dashboard's cookies are Secure, and links are https")
    func secureCookiesBehindTLS() async throws {
        let certificates = try TestCertificates.make()
        let files = try certificates.server("proxy")
        try await withTollgate(configure: { options in
            publicShopPlans(&options)
            options.tlsCertificate = files.certificate
            options.tlsKey = files.key
            options.adminTLSCertificate = files.certificate
            options.adminTLSKey = files.key
        }) { server in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(certificates.caPath)
            let client = HTTPClient(
                eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls, redirectConfiguration: .disallow))
            func cookies(_ url: String, method: HTTPMethod = .GET, form: String? = nil) async throws -> [String] {
                var request = HTTPClientRequest(url: url)
                request.method = method
                if let form {
                    request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                    request.body = .bytes(ByteBuffer(string: form))
                }
                let response = try await client.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 20)
                return response.headers["Set-Cookie"]
            }
            do {
                let proxy = server.proxyURL.replacingOccurrences(of: "http://", with: "https://")
                let admin = server.adminURL.replacingOccurrences(of: "http://", with: "https://")
                let signup = try await cookies(proxy + "/_portal/signup")
                #expect(signup.count == 1 && signup.allSatisfy { $0.hasSuffix("; Secure") })
                let dashboard = try await cookies(admin + "/dashboard/sign-in", method: .POST, form: "key=\(server.adminKey)")
                #expect(dashboard.count == 1 && dashboard.allSatisfy { $0.contains("HttpOnly") && $0.hasSuffix("; Secure") })
                var request = HTTPClientRequest(url: admin + "/v1/customers")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(server.adminKey)")
                request.body = .bytes(ByteBuffer(string: #"{"name":"Tls"}"#))
                let customer = try await client.execute(request, timeout: .seconds(30)).body.collect(upTo: 1 << 20)
                let id = try #require((try JSONSerialization.jsonObject(with: Data(String(buffer: customer).utf8)) as? [String: Any])?["id"] as? String)
                var link = HTTPClientRequest(url: admin + "/v1/customers/\(id)/portal-sessions")
                link.method = .POST
                link.headers.add(name: "Authorization", value: "Bearer \(server.adminKey)")
                let body = try await client.execute(link, timeout: .seconds(30)).body.collect(upTo: 1 << 20)
                let url = (try JSONSerialization.jsonObject(with: Data(String(buffer: body).utf8)) as? [String: Any])?["url"] as? String
                #expect(url?.hasPrefix(proxy + "/_portal/sign-in/") == true)
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    @Test("signup can be turned off, and is rate-limited per address")
    func signupControls() async throws {
        try await withTollgate(configure: { options in
            publicShopPlans(&options)
            options.portal.signupEnabled = false
        }) { server in
            let browser = WebClient()
            #expect(try await browser.get(server.proxyURL + "/_portal/signup").status == 404)
            let refused = try await browser.post(
                server.proxyURL + "/_portal/signup", form: [("name", "Eve"), ("email", "eve@example.com"), ("plan", "shop-basic")])
            #expect(refused.status == 404)
            let customers = try await server.admin("GET", "/v1/customers").json()["data"] as? [Any] ?? []
            #expect(customers.isEmpty)
        }
        try await withTollgate(configure: { options in
            publicShopPlans(&options)
            options.portal.signupLimit = .init(limit: 1, window: 3600)
        }) { server in
            let browser = WebClient()
            _ = try await Self.signUp(server, browser, plan: "shop-basic")
            let token = Self.formToken(try await browser.get(server.proxyURL + "/_portal/signup").body)
            let second = try await browser.post(
                server.proxyURL + "/_portal/signup",
                form: [("name", "Eve"), ("email", "eve@example.com"), ("plan", "shop-basic"), ("form_token", token)])
            #expect(second.status == 429)
            let invalid = try await browser.post(
                server.proxyURL + "/_portal/signup", form: [("name", ""), ("email", "nope"), ("plan", "shop-quota"), ("form_token", token)])
            #expect(invalid.status == 422)
            // A form posted from elsewhere (without the browser's form token) is refused before anything else.
            let forged = try await WebClient().post(
                server.proxyURL + "/_portal/signup", form: [("name", "Eve"), ("email", "eve@example.com"), ("plan", "shop-basic")])
            #expect(forged.status == 403)
        }
    }
}
