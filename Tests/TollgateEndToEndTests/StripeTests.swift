import Foundation
import Testing
import TollgateApp
import TollgateBilling
import TollgateCore
import TollgateTestSupport

/// The Stripe billing provider (DESIGN §3.8) against localstripe on loopback: customers, pushed
/// invoices in minor units, payments back by webhook and by sync, dunning down to the gateway.
@Suite("Stripe", .serialized)
struct StripeTests {
    static let webhookSecret = "whsec_tollgate_test"

    /// A fresh localstripe and a Tollgate pointed at it, closing periods on demand.
    static func withStripe(
        grace: Duration = .seconds(7 * 86_400), sync: Duration = .seconds(3600),
        _ body: @Sendable (RunningTollgate, Localstripe) async throws -> Void
    ) async throws {
        let stripe = try await Localstripe.start()
        defer { stripe.stop() }
        try await stripe.reset()
        try await withTollgate(configure: { options in
            options.billing.interval = nil
            WebhookTests.fastRetries(&options)
            var configuration = StripeConfiguration(secretKey: Localstripe.secretKey)
            configuration.apiBase = stripe.url
            configuration.webhookSecret = webhookSecret
            configuration.pushInterval = .milliseconds(50)
            configuration.syncInterval = sync
            configuration.dunningGrace = grace
            options.stripe = configuration
        }) { server in
            try await body(server, stripe)
        }
    }

    /// A Tollgate customer linked to a new Stripe customer (with a card: `4242...` pays, `...0341` is declined).
    static func linkedCustomer(_ server: RunningTollgate, _ stripe: Localstripe, card: String?) async throws -> (id: String, stripe: String) {
        let created = try await stripe.object("POST", "/v1/customers", form: [("name", "Linked Ltd"), ("email", "pay@linked.example")])
        let stripeID = try #require(created["id"] as? String)
        if let card { try await stripe.attachCard(card, to: stripeID) }
        let customer = try await server.admin("POST", "/v1/customers", body: #"{"name":"Linked Ltd","stripe_customer":"\#(stripeID)"}"#)
        #expect(customer.status == 201, "\(customer.body)")
        #expect(try customer.json()["stripe_customer"] as? String == stripeID)
        return (try #require(try customer.json()["id"] as? String), stripeID)
    }

    static func subscribe(_ server: RunningTollgate, customer: String, plan: String, startedAt: String? = nil) async throws -> (id: String, token: String) {
        let started = startedAt.map { #","started_at":"\#($0)""# } ?? ""
        let json = try await server.admin("POST", "/v1/subscriptions", body: #"{"customer":"\#(customer)","plan":"\#(plan)"\#(started)}"#).json()
        return (try #require(json["id"] as? String), try #require(json["token"] as? String))
    }

    /// Waits until Tollgate finished pushing `invoice`; returns it.
    static func pushed(_ server: RunningTollgate, _ invoice: String, timeout: Duration = .seconds(30)) async throws -> [String: Any] {
        try await waitForValue("invoice \(invoice) to be pushed to Stripe", timeout: timeout) {
            let json = try await server.admin("GET", "/v1/invoices/\(invoice)").json()
            guard let provider = json["provider"] as? [String: Any], provider["status"] as? String != "pushing" else { return nil }
            return json
        }
    }

    /// The Stripe invoice's invoice-item lines as (amount, description, tollgate line), in the order
    /// of Tollgate's lines (localstripe's own order follows its store).
    static func stripeLines(_ invoice: [String: Any]) -> [(amount: Int, description: String, line: String?)] {
        let lines = (invoice["lines"] as? [String: Any])?["data"] as? [[String: Any]] ?? []
        return lines.filter { $0["type"] as? String == "invoiceitem" }.map {
            ($0["amount"] as? Int ?? -1, $0["description"] as? String ?? "", ($0["metadata"] as? [String: Any])?["tollgate_line"] as? String)
        }.sorted { Int($0.line ?? "") ?? -1 < Int($1.line ?? "") ?? -1 }
    }

    @Test func linkedCustomersAreUsedAndOthersAreCreatedWithTheirNameEmailAndId() async throws {
        try await Self.withStripe { server, stripe in
            let (linked, linkedStripe) = try await Self.linkedCustomer(server, stripe, card: "4242424242424242")
            let bad = try await server.admin("POST", "/v1/customers", body: #"{"name":"X","stripe_customer":"acct_1"}"#)
            #expect(bad.status == 422)
            #expect(try bad.json()["message"] as? String != nil)
            let created = try await server.admin("POST", "/v1/customers", body: #"{"id":"made-here","name":"Made Here","email":"ap@made.example"}"#)
            #expect(created.status == 201)
            #expect(try created.json()["stripe_customer"] is NSNull)
            _ = try await Self.subscribe(server, customer: linked, plan: "shop-basic")
            _ = try await Self.subscribe(server, customer: "made-here", plan: "shop-basic")
            let invoices = try await BillingTests.close(server)
            #expect(invoices.count == 2)
            for invoice in invoices { _ = try await Self.pushed(server, invoice) }

            let customers = try await stripe.list("/v1/customers")
            #expect(customers.count == 2, "the linked customer is used, one is created")
            let made = try #require(customers.first { $0["id"] as? String != linkedStripe })
            #expect(made["name"] as? String == "Made Here" && made["email"] as? String == "ap@made.example")
            #expect((made["metadata"] as? [String: Any])?["tollgate_customer"] as? String == "made-here")
            let shown = try await server.admin("GET", "/v1/customers/made-here").json()
            #expect(shown["stripe_customer"] as? String == made["id"] as? String)
            for (customer, stripeID) in [(linked, linkedStripe), ("made-here", made["id"] as? String ?? "")] {
                let theirs = try await stripe.list("/v1/invoices?customer=\(stripeID)")
                #expect(theirs.count == 1, "\(customer): \(theirs.count) Stripe invoices")
                #expect(Self.stripeLines(theirs.first ?? [:]).map(\.amount) == [1000])
            }
        }
    }

    /// Flat, per-unit usage and package lines, rounded per currency (DESIGN §3.7), land in Stripe
    /// as items of whole minor units with the same total.
    @Test(arguments: [
        // currency, flat, package amount, unit: week invoice lines (package ×3, per unit ×5, flat) in minor units
        ("EUR", "29.99", "0.35", "0.013", [105, 7, 2999]),
        ("JPY", "1200", "35", "3", [105, 15, 1200]),
        ("KWD", "1.2345", "0.105", "0.0005", [315, 3, 1235]),
    ])
    func invoicesLandWithTheirLinesAndTotalInMinorUnits(currency: String, flat: String, package: String, unit: String, week: [Int]) async throws {
        try await Self.withStripe { server, stripe in
            let plan = "mix-\(currency.lowercased())"
            let created = try await server.admin("POST", "/v1/plans", body: """
                {"id":"\(plan)","product":"shop","name":"Mix","currency":"\(currency)","period":"week","prices":[
                 {"kind":"flat","amount":"\(flat)"},
                 {"kind":"usage","meter":"item-reads","model":"package","package_size":2,"amount":"\(package)"},
                 {"kind":"usage","meter":"item-reads","model":"per_unit","unit":"\(unit)"}]}
                """)
            #expect(created.status == 201, "\(created.body)")
            let (customer, stripeCustomer) = try await Self.linkedCustomer(server, stripe, card: "4242424242424242")
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 10 * 86_400).rounded(.down))
            let (subscription, _) = try await Self.subscribe(server, customer: customer, plan: plan, startedAt: BillingTests.text(start))
            let reads = try await CollectorTests.post(server, "/v1/events/batch", "[" + (1...5).map {
                BillingTests.read("r\($0)", company: customer, at: BillingTests.text(start, Double($0) * 3600))
            }.joined(separator: ",") + "]")
            #expect(try reads.json()["accepted"] as? Int == 5)
            let invoices = try await BillingTests.close(server)
            #expect(invoices.count == 2)
            var expected: [String: [Int]] = [invoices[0]: [week[2]], invoices[1]: week]
            for id in invoices {
                let invoice = try await Self.pushed(server, id)
                let provider = try #require(invoice["provider"] as? [String: Any])
                #expect(provider["name"] as? String == "stripe")
                #expect(provider["status"] as? String == "paid", "\(provider)")
                #expect(invoice["status"] as? String == "paid")
                let stripeID = try #require(provider["invoice"] as? String)
                let pushed = try await stripe.object("GET", "/v1/invoices/\(stripeID)")
                #expect(pushed["customer"] as? String == stripeCustomer)
                #expect(pushed["currency"] as? String == currency.lowercased())
                #expect((pushed["metadata"] as? [String: Any])?["tollgate_invoice"] as? String == id)
                let lines = Self.stripeLines(pushed)
                // Tollgate's lines, one item each, in order, with their descriptions.
                let ours = try #require(invoice["lines"] as? [[String: Any]])
                #expect(lines.map(\.amount) == expected[id], "\(currency) \(id)")
                #expect(lines.map(\.description) == ours.map { $0["description"] as? String ?? "" })
                #expect(lines.map(\.line) == ours.indices.map { String($0) })
                let total = try #require(invoice["total"] as? String)
                #expect(Currency.minorAmount(Decimal(string: total)!, currency: currency) == lines.map(\.amount).reduce(0, +))
                #expect(pushed["amount_paid"] as? Int == lines.map(\.amount).reduce(0, +))
                expected[id] = nil
            }
            #expect(try await server.admin("GET", "/v1/subscriptions/\(subscription)").json()["status"] as? String == "active")
            #expect(try await stripe.list("/v1/invoices?customer=\(stripeCustomer)").count == 2)
        }
    }

    /// A declined payment: `past_due`, then (grace 0) `suspended` and 402 at the gateway; a card
    /// that pays and `POST /v1/invoices/{id}/pay`: `active`, and the token works again at once.
    @Test func anUnpaidInvoiceSuspendsTheTokenUntilItIsPaid() async throws {
        let receiver = try await WebhookReceiver.start { _, _ in (204, []) }
        try await Self.withStripe(grace: .zero) { server, stripe in
            try await WebhookTests.addHookedProduct(server, receiver: receiver)
            #expect(try await server.admin("POST", "/v1/plans", body: """
                {"id":"hooked-paid","product":"hooked","name":"Paid","currency":"EUR","period":"month","prices":[{"kind":"flat","amount":"12.00"}]}
                """).status == 201)
            let (customer, stripeCustomer) = try await Self.linkedCustomer(server, stripe, card: "4000000000000341")
            let (subscription, token) = try await Self.subscribe(server, customer: customer, plan: "hooked-paid")
            #expect(try await server.proxy("/hooked/hello", headers: [("apikey", token)]).status == 200)
            let invoices = try await BillingTests.close(server)
            let invoice = try await Self.pushed(server, try #require(invoices.first))
            #expect(invoice["status"] as? String == "finalized")
            #expect((invoice["provider"] as? [String: Any])?["status"] as? String == "open")

            let refused = try await waitForValue("the gateway to answer 402") {
                let response = try await server.proxy("/hooked/hello", headers: [("apikey", token)])
                return response.status == 402 ? response : nil
            }
            #expect(refused.body == #"{"message":"Payment required"}"#)
            #expect(refused.header("Content-Type")?.hasPrefix("application/json") == true)
            #expect(try await server.admin("GET", "/v1/subscriptions/\(subscription)").json()["status"] as? String == "suspended")
            let statuses = try await receiver.waitFor("subscription.updated to suspended") {
                let event = try $0.json()
                return event["type"] as? String == "subscription.updated" && (event["data"] as? [String: Any])?["status"] as? String == "suspended"
            }.compactMap { request -> String? in
                let event = try request.json()
                guard event["type"] as? String == "subscription.updated" else { return nil }
                return (event["data"] as? [String: Any])?["status"] as? String
            }
            #expect(statuses == ["past_due", "suspended"])

            // Paying by hand is refused while Stripe cannot collect: 402 with the reason, nothing changes.
            let declined = try await server.admin("POST", "/v1/invoices/\(invoices[0])/pay")
            #expect(declined.status == 402, "\(declined.body)")
            #expect(try declined.json()["message"] as? String != nil)
            #expect(!declined.body.contains(Localstripe.secretKey))
            #expect(try await server.proxy("/hooked/hello", headers: [("apikey", token)]).status == 402)

            try await stripe.attachCard("4242424242424242", to: stripeCustomer)
            let paid = try await server.admin("POST", "/v1/invoices/\(invoices[0])/pay")
            #expect(paid.status == 200, "\(paid.body)")
            #expect(try paid.json()["status"] as? String == "paid")
            #expect(((try paid.json()["provider"]) as? [String: Any])?["status"] as? String == "paid")
            // Active again at once: the very next call passes.
            #expect(try await server.proxy("/hooked/hello", headers: [("apikey", token)]).status == 200)
            #expect(try await server.admin("GET", "/v1/subscriptions/\(subscription)").json()["status"] as? String == "active")
            _ = try await receiver.waitFor("subscription.updated to active") {
                let event = try $0.json()
                return event["type"] as? String == "subscription.updated" && (event["data"] as? [String: Any])?["status"] as? String == "active"
            }
        }
        await receiver.stop()
    }

    /// Stripe's own webhook (localstripe signs it as Stripe does) marks the invoice paid; a bad
    /// signature, an old one, or a body that is not an event is 400 and changes nothing.
    @Test func stripeWebhooksAreVerifiedAndMarkInvoicesPaid() async throws {
        try await Self.withStripe { server, stripe in
            let (customer, stripeCustomer) = try await Self.linkedCustomer(server, stripe, card: nil)
            let (subscription, _) = try await Self.subscribe(server, customer: customer, plan: "shop-basic")
            let invoices = try await BillingTests.close(server)
            let invoice = try await Self.pushed(server, invoices[0])
            let stripeInvoice = try #require((invoice["provider"] as? [String: Any])?["invoice"] as? String)
            // No payment method: the collection failed.
            #expect(try await server.admin("GET", "/v1/subscriptions/\(subscription)").json()["status"] as? String == "past_due")

            let url = server.proxyURL + "/_webhooks/stripe"
            let body = #"{"id":"evt_x","type":"invoice.paid","data":{"object":{"id":"\#(stripeInvoice)","object":"invoice","status":"paid"}}}"#
            let now = Int(Date().timeIntervalSince1970)
            for header in [
                nil, "t=\(now),v1=00", WebhookSignature.sign(body: Array(body.utf8), secret: "whsec_other", timestamp: now),
                WebhookSignature.sign(body: Array(body.utf8), secret: Self.webhookSecret, timestamp: now - 600),
            ] {
                let refused = try await TestHTTP.request(
                    "POST", url, headers: header.map { [("Stripe-Signature", $0)] } ?? [], body: body)
                #expect(refused.status == 400)
                #expect(try refused.json()["message"] as? String == "invalid or missing Stripe-Signature")
            }
            let notAnEvent = "[1,2]"
            let garbled = try await TestHTTP.request("POST", url, headers: [
                ("Stripe-Signature", WebhookSignature.sign(body: Array(notAnEvent.utf8), secret: Self.webhookSecret, timestamp: now)),
            ], body: notAnEvent)
            #expect(garbled.status == 400)
            #expect(try garbled.json()["message"] as? String != nil)
            #expect(try await TestHTTP.request("GET", url).status == 405)
            #expect(try await server.admin("GET", "/v1/invoices/\(invoices[0])").json()["status"] as? String == "finalized")

            // localstripe's own webhook after the customer pays in Stripe.
            let registered = try await stripe.request("POST", "/_config/webhooks/tollgate", form: [
                ("url", url), ("secret", Self.webhookSecret), ("events[]", "invoice.payment_succeeded"), ("events[]", "invoice.payment_failed"),
            ])
            #expect(registered.status == 200)
            try await stripe.attachCard("4242424242424242", to: stripeCustomer)
            _ = try await stripe.object("POST", "/v1/invoices/\(stripeInvoice)/pay")
            try await waitUntil("the webhook to mark the invoice paid") {
                try await server.admin("GET", "/v1/invoices/\(invoices[0])").json()["status"] as? String == "paid"
            }
            #expect(try await server.admin("GET", "/v1/subscriptions/\(subscription)").json()["status"] as? String == "active")
        }
    }

    /// Without webhooks, the periodic sync finds the payment.
    @Test func aLostWebhookLosesNothing() async throws {
        try await Self.withStripe(sync: .milliseconds(200)) { server, stripe in
            let (customer, stripeCustomer) = try await Self.linkedCustomer(server, stripe, card: nil)
            _ = try await Self.subscribe(server, customer: customer, plan: "shop-basic")
            let invoices = try await BillingTests.close(server)
            let invoice = try await Self.pushed(server, invoices[0])
            let stripeInvoice = try #require((invoice["provider"] as? [String: Any])?["invoice"] as? String)
            try await stripe.attachCard("4242424242424242", to: stripeCustomer)
            _ = try await stripe.object("POST", "/v1/invoices/\(stripeInvoice)/pay")
            try await waitUntil("the sync to mark the invoice paid") {
                try await server.admin("GET", "/v1/invoices/\(invoices[0])").json()["status"] as? String == "paid"
            }
        }
    }
}
