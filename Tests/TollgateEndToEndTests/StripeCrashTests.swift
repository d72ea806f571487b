import Foundation
import Testing
import TollgateCore
import TollgateTestSupport

/// `kill -9` at every point between the steps of a push to Stripe (DESIGN §4: "a crash mid-push
/// never pushes an invoice twice"), against localstripe, which ignores `Idempotency-Key`: only
/// Tollgate's own record of each step keeps Stripe exact.
@Suite("Stripe crashes", .serialized)
struct StripeCrashTests {
    @Test func aPushKilledAtAnyStepResumesAndStripeHoldsTheInvoiceOnce() async throws {
        let stripe = try await Localstripe.start()
        defer { stripe.stop() }
        var halts = 0
        for haltAt in 1... {
            try await stripe.reset()
            let directory = TemporaryDirectory.make()
            let catalog = directory.appendingPathComponent("catalog.yaml")
            try """
                products:
                  - { id: crashy, name: Crashy, upstream: "http://127.0.0.1:1" }
                plans:
                  - id: crashy-plan
                    product: crashy
                    name: Crashy
                    currency: EUR
                    period: month
                    prices: [ { kind: setup, amount: "2.50" }, { kind: flat, amount: "10.00" } ]
                """.write(to: catalog, atomically: true, encoding: .utf8)
            let arguments = [
                "serve", "--config", catalog.path, "--data-dir", directory.path, "--proxy-port", "0", "--admin-port", "0",
                "--billing-interval", "0",
            ]
            let environment = [
                "TOLLGATE_ADMIN_KEY": "crash-admin-key", "TOLLGATE_STRIPE_SECRET_KEY": Localstripe.secretKey,
                "TOLLGATE_STRIPE_API_BASE": stripe.url,
            ]
            let auth = [("Authorization", "Bearer crash-admin-key")]

            let first = try TollgateProcess.start(arguments, environment: environment.merging(["TOLLGATE_TEST_STRIPE_HALT_AT": "\(haltAt)"]) { $1 })
            let (_, admin) = try await first.waitUntilListening()
            let base = "http://127.0.0.1:\(admin)"
            #expect(try await TestHTTP.request("POST", base + "/v1/customers", headers: auth, body: #"{"id":"acme","name":"Acme","email":"ap@acme.example"}"#).status == 201)
            #expect(try await TestHTTP.request("POST", base + "/v1/subscriptions", headers: auth, body: #"{"customer":"acme","plan":"crashy-plan"}"#).status == 201)
            let closed = try await TestHTTP.request("POST", base + "/v1/billing/close", headers: auth, body: "{}").json()
            let invoice = try #require((closed["invoices"] as? [String])?.first)
            func provider(_ base: String) async throws -> [String: Any]? {
                try await TestHTTP.request("GET", base + "/v1/invoices/\(invoice)", headers: auth).json()["provider"] as? [String: Any]
            }
            // Either the hook kills the process, or this point lies past the last step and the push ends.
            let outcome = try await waitForValue(
                "tollgate to be killed at point \(haltAt) or to finish the push (\(first.diagnosis)); it printed:\n\(first.output)", timeout: .seconds(120),
                every: .milliseconds(100)
            ) {
                () async throws -> String? in
                if !first.isRunning { return "killed" }
                if let found = try? await provider(base), found["status"] as? String != "pushing" { return "finished" }
                return nil
            }
            if outcome == "finished" {
                try await Self.expectExactlyOnce(stripe)
                first.signal(SIGTERM)
                #expect(try await first.waitForExit() == 0)
                // Closing the same periods again pushes nothing: another customer's invoice, pushed
                // after the second close (by a process without the hook), marks that the pusher looked again.
                let third = try TollgateProcess.start(arguments, environment: environment)
                let (_, port) = try await third.waitUntilListening()
                let last = "http://127.0.0.1:\(port)"
                let reclosed = try await TestHTTP.request("POST", last + "/v1/billing/close", headers: auth, body: "{}").json()
                #expect((reclosed["invoices"] as? [String]) == [])
                #expect(try await TestHTTP.request("POST", last + "/v1/customers", headers: auth, body: #"{"id":"later","name":"Later"}"#).status == 201)
                #expect(try await TestHTTP.request("POST", last + "/v1/subscriptions", headers: auth, body: #"{"customer":"later","plan":"crashy-plan"}"#).status == 201)
                let marked = try await TestHTTP.request("POST", last + "/v1/billing/close", headers: auth, body: "{}").json()
                let mark = try #require((marked["invoices"] as? [String])?.first)
                try await waitUntil("the later customer's invoice to be pushed") {
                    let json = try await TestHTTP.request("GET", last + "/v1/invoices/\(mark)", headers: auth).json()
                    return (json["provider"] as? [String: Any])?["status"] as? String ?? "pushing" != "pushing"
                }
                try await Self.expectExactlyOnce(stripe, customers: 2)
                third.signal(SIGTERM)
                #expect(try await third.waitForExit() == 0)
                break
            }
            #expect(try await first.waitForExit() == SIGKILL)
            halts += 1

            let second = try TollgateProcess.start(arguments, environment: environment)
            let (_, again) = try await second.waitUntilListening()
            let restarted = "http://127.0.0.1:\(again)"
            try await waitUntil("the push of \(invoice) to finish after a kill at point \(haltAt)") {
                guard let found = try await provider(restarted) else { return false }
                return found["status"] as? String != "pushing" && found["invoice"] is String
            }
            try await Self.expectExactlyOnce(stripe, point: haltAt)
            // Closing the same periods again creates nothing, so pushes nothing.
            let reclosed = try await TestHTTP.request("POST", restarted + "/v1/billing/close", headers: auth, body: "{}").json()
            #expect((reclosed["invoices"] as? [String]) == [])
            second.signal(SIGTERM)
            #expect(try await second.waitForExit() == 0)
            // The secret key reaches no log line.
            #expect(!first.output.contains(Localstripe.secretKey) && !second.output.contains(Localstripe.secretKey))
        }
        // customer, two items, invoice, metadata, finalize, pay: three points each.
        #expect(halts >= 21)
    }

    /// Stripe holds one customer, one invoice with exactly the two items, and no stray item.
    static func expectExactlyOnce(_ stripe: Localstripe, point: Int = 0, customers expected: Int = 1) async throws {
        let customers = try await stripe.list("/v1/customers")
        #expect(customers.count == expected, "point \(point): \(customers.count) customers")
        let acme = customers.filter { ($0["metadata"] as? [String: Any])?["tollgate_customer"] as? String == "acme" }
        #expect(acme.count == 1, "point \(point): \(acme.count) Stripe customers for acme")
        let customer = try #require(acme.first?["id"] as? String)
        let invoices = try await stripe.list("/v1/invoices?customer=\(customer)")
        #expect(invoices.count == 1, "point \(point): \(invoices.count) invoices")
        // localstripe's line order follows its store, not creation: compare by Tollgate line.
        let lines = StripeTests.stripeLines(invoices.first ?? [:]).sorted { ($0.line ?? "") < ($1.line ?? "") }
        #expect(lines.map(\.amount) == [250, 1000] && lines.map(\.line) == ["0", "1"], "point \(point)")
        #expect(invoices.first?["total"] as? Int == 1250, "point \(point)")
        #expect(try await stripe.list("/v1/invoiceitems?customer=\(customer)").isEmpty, "point \(point): an item was left pending")
    }
}
