import Foundation
import Testing
import TollgateCore

/// How an invoice is pushed to Stripe (DESIGN §3.8), step by step and across crashes, in memory.
@Suite("Stripe push plan")
struct StripePushPlanTests {
    static func invoice(currency: String = "EUR", amounts: [String] = ["29.00", "1.50", "-2.25"]) -> Invoice {
        let span = TimeSpan(start: utc(2026, 1, 1), end: utc(2026, 2, 1))
        return Invoice(
            id: "inv_1", subscription: "sub_1", customer: "acme", product: "shop", currency: currency, period: span, status: .finalized,
            lines: amounts.enumerated().map { index, amount in
                InvoiceLine(
                    description: "line \(index)", plan: "p", price: index, quantity: 1, amount: Decimal(string: amount)!, span: span)
            },
            createdAt: utc(2026, 2, 1))
    }

    static let customer = Customer(id: "acme", name: "Acme Inc", email: "billing@acme.com", createdAt: utc(2026, 1, 1))

    /// Runs a plan to the end as a Stripe that creates what it is asked to; returns the steps posted.
    static func runToEnd(_ plan: inout StripePushPlan) -> [StripePushStep] {
        var posted: [StripePushStep] = []
        var made = 0
        while case .post(let step, _, _, _) = plan.next() {
            posted.append(step)
            made += 1
            plan.record(step, StripeStepRecord(state: .done, result: "obj_\(made)"))
        }
        return posted
    }

    @Test func aNewCustomerIsCreatedThenOneItemPerLineTheInvoiceItsMetadataFinalizeAndPay() throws {
        var plan = StripePushPlan(invoice: Self.invoice(), customer: Self.customer)
        guard case .post(.customer, let path, let form, let key) = plan.next() else { Issue.record("no customer step"); return }
        #expect(path == "/v1/customers")
        #expect(form == StripeForm([("name", "Acme Inc"), ("email", "billing@acme.com"), ("metadata[tollgate_customer]", "acme")]))
        #expect(key == "tollgate-customer-acme")
        plan.record(.customer, StripeStepRecord(state: .done, result: "cus_X"))
        guard case .post(.item(0), "/v1/invoiceitems", let item, "tollgate-inv_1-item-0") = plan.next() else {
            Issue.record("no item step"); return
        }
        #expect(item == StripeForm([
            ("customer", "cus_X"), ("amount", "2900"), ("currency", "eur"), ("description", "line 0"),
            ("metadata[tollgate_invoice]", "inv_1"), ("metadata[tollgate_line]", "0"),
        ]))
        let rest = Self.runToEnd(&plan)
        #expect(rest == [.item(0), .item(1), .item(2), .invoice, .metadata, .finalize, .pay])
        #expect(plan.next() == .done)
    }

    @Test func aLinkedCustomerIsNotCreatedAndTheInvoiceIncludesPendingItems() throws {
        var customer = Self.customer
        customer.stripeCustomer = "cus_linked"
        var plan = StripePushPlan(invoice: Self.invoice(), customer: customer)
        let steps = Self.runToEnd(&plan)
        #expect(steps.first == .item(0))
        var fresh = StripePushPlan(invoice: Self.invoice(), customer: customer)
        for line in 0..<3 { fresh.record(.item(line), StripeStepRecord(state: .done, result: "ii_\(line)")) }
        guard case .post(.invoice, "/v1/invoices", let form, _) = fresh.next() else { Issue.record("no invoice step"); return }
        #expect(form["customer"] == "cus_linked")
        #expect(form["pending_invoice_items_behavior"] == "include")
        // Only parameters Stripe documents and localstripe accepts: the metadata comes afterwards.
        #expect(Set(form.fields.map(\.key)) == ["customer", "pending_invoice_items_behavior", "description"])
        fresh.record(.invoice, StripeStepRecord(state: .done, result: "in_1"))
        guard case .post(.metadata, "/v1/invoices/in_1", let metadata, _) = fresh.next() else { Issue.record("no metadata"); return }
        #expect(metadata["metadata[tollgate_invoice]"] == "inv_1")
    }

    @Test(arguments: [
        ("EUR", "12.34", 1234), ("JPY", "500", 500), ("KWD", "1.234", 1234), ("BHD", "0.005", 5), ("EUR", "-2.25", -225), ("usd", "0.10", 10),
    ])
    func amountsAreWholeMinorUnitsOfTheCurrency(currency: String, amount: String, minor: Int) {
        #expect(Currency.minorAmount(Decimal(string: amount)!, currency: currency) == minor)
    }

    @Test func amountsFinerThanTheMinorUnitOrUnknownCurrenciesAreRefused() {
        #expect(Currency.minorAmount(Decimal(string: "1.5")!, currency: "JPY") == nil)
        #expect(Currency.minorAmount(Decimal(string: "1.001")!, currency: "EUR") == nil)
        #expect(Currency.minorAmount(1, currency: "XXX") == nil)
        let plan = StripePushPlan(invoice: Self.invoice(currency: "JPY", amounts: ["1.5"]), customer: Self.customer)
        var linked = Self.customer
        linked.stripeCustomer = "cus_1"
        if case .fail = StripePushPlan(invoice: plan.invoice, customer: linked).next() {} else { Issue.record("a fraction of a yen was pushed") }
    }

    @Test func anInvoiceWithoutATotalAboveZeroIsNotPushed() {
        #expect(StripePushPlan(invoice: Self.invoice(amounts: ["0"]), customer: Self.customer).next() == .skip)
        #expect(StripePushPlan(invoice: Self.invoice(amounts: ["5", "-5"]), customer: Self.customer).next() == .skip)
    }

    /// A crash can stop a push anywhere: before a step's request (recorded `started`), after it
    /// (Stripe has the object, Tollgate only `started`) or after `done`. At every such point the
    /// plan, resumed from what was recorded and what Stripe holds, creates each object once.
    @Test func aPushResumedAfterACrashAtAnyPointCreatesEveryObjectOnce() {
        let invoice = Self.invoice()
        for crashAt in 0..<30 {
            for reachedStripe in [false, true] {
                var stripe: [String: StripePushStep] = [:]  // id -> step that made it
                var records: [StripePushStep: StripeStepRecord] = [:]
                var points = 0
                var crashed = false
                func run() {
                    var plan = StripePushPlan(invoice: invoice, customer: Self.customer, records: records)
                    loop: while true {
                        let action = plan.next()
                        switch action {
                        case .post(let step, _, _, _):
                            records[step] = StripeStepRecord(state: .started)
                            plan.record(step, records[step])
                            let creates = [StripePushStep.customer, .invoice].contains(step) || { if case .item = step { true } else { false } }()
                            let id = "obj_\(stripe.count)"
                            if points == crashAt, !crashed {
                                crashed = true
                                if reachedStripe, creates { stripe[id] = step }
                                return
                            }
                            points += 1
                            if creates { stripe[id] = step }
                            records[step] = StripeStepRecord(state: .done, result: creates ? id : "ok")
                            plan.record(step, records[step])
                        case .findCustomer:
                            let found = stripe.first { $0.value == .customer }?.key
                            records[.customer] = found.map { StripeStepRecord(state: .done, result: $0) }
                            plan.record(.customer, records[.customer])
                        case .findItem(let line, _):
                            let found = stripe.first { $0.value == .item(line) }?.key
                            records[.item(line)] = found.map { StripeStepRecord(state: .done, result: $0) }
                            plan.record(.item(line), records[.item(line)])
                        case .findInvoice:
                            let found = stripe.first { $0.value == .invoice }?.key
                            records[.invoice] = found.map { StripeStepRecord(state: .done, result: $0) }
                            plan.record(.invoice, records[.invoice])
                        case .done, .skip, .fail:
                            break loop
                        }
                    }
                }
                run()
                run()
                let made = stripe.values.map(\.name).sorted()
                #expect(made == ["customer", "invoice", "item-0", "item-1", "item-2"], "crash at \(crashAt), reached Stripe: \(reachedStripe)")
                #expect(StripePushPlan(invoice: invoice, customer: Self.customer, records: records).next() == .done)
            }
        }
    }

    @Test func stepNamesRoundTrip() {
        for step in [StripePushStep.customer, .item(0), .item(12), .invoice, .metadata, .finalize, .pay] {
            #expect(StripePushStep(name: step.name) == step)
        }
        #expect(StripePushStep(name: "item-x") == nil)
        #expect(StripePushStep(name: "nothing") == nil)
    }

    @Test func formsAreEncodedAsStripeReadsThem() {
        let form = StripeForm([("metadata[tollgate_invoice]", "inv_1"), ("description", "Pro (month): 5 × 0.10€ & more"), ("email", "a+b@c.de")])
        #expect(form.encoded == "metadata[tollgate_invoice]=inv_1&description=Pro+%28month%29%3A+5+%C3%97+0.10%E2%82%AC+%26+more&email=a%2Bb%40c.de")
    }
}

/// Stripe's events and signatures, and what non-payment does to a subscription.
@Suite("Stripe events and dunning")
struct StripeEventTests {
    @Test func signaturesAreCheckedWithAFiveMinuteTolerance() {
        let body = Array(#"{"type":"invoice.paid"}"#.utf8)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let header = WebhookSignature.sign(body: body, secret: "whsec_x", timestamp: 1_800_000_000)
        #expect(StripeSignature.verify(header: header, body: body, secret: "whsec_x", now: now))
        #expect(StripeSignature.verify(header: header, body: body, secret: "whsec_x", now: now.addingTimeInterval(299)))
        #expect(!StripeSignature.verify(header: header, body: body, secret: "whsec_x", now: now.addingTimeInterval(301)))
        #expect(!StripeSignature.verify(header: header, body: body, secret: "whsec_y", now: now))
        #expect(!StripeSignature.verify(header: header, body: body + [32], secret: "whsec_x", now: now))
        #expect(!StripeSignature.verify(header: "t=1800000000", body: body, secret: "whsec_x", now: now))
    }

    @Test func invoiceEventsAreRead() throws {
        let paid = try #require(StripeEvent(json: Array("""
            {"id":"evt_1","type":"invoice.payment_succeeded","data":{"object":{"id":"in_1","object":"invoice","status":"paid",
            "attempted":true,"charge":{"id":"ch_1"},"metadata":{"tollgate_invoice":"inv_1"},
            "lines":{"data":[{"invoice_item":"ii_1","metadata":{"tollgate_invoice":"inv_1"}}]}}}}
            """.utf8)))
        #expect(paid.kind == .invoicePaid)
        #expect(paid.invoice?.id == "in_1" && paid.invoice?.status == "paid" && paid.invoice?.tollgateInvoice == "inv_1")
        #expect(paid.invoice?.belongs(to: "inv_2", items: ["ii_1"]) == true)
        #expect(StripeEvent(json: Array(#"{"type":"invoice.paid","data":{"object":{"id":"in_2"}}}"#.utf8))?.kind == .invoicePaid)
        #expect(StripeEvent(json: Array(#"{"type":"invoice.payment_failed","data":{"object":{"id":"in_2"}}}"#.utf8))?.kind == .invoicePaymentFailed)
        #expect(StripeEvent(json: Array(#"{"type":"customer.created","data":{"object":{"id":"cus_1"}}}"#.utf8))?.kind == .ignored)
        #expect(StripeEvent(json: Array(#"{"type":"invoice.paid","data":{"object":{"id":"cus_1"}}}"#.utf8)) == nil)
        #expect(StripeEvent(json: Array("not json".utf8)) == nil)
    }

    @Test func aFailedPaymentMakesPastDueThenSuspendedAfterTheGraceAndPaymentMakesActive() {
        let failedAt = utc(2026, 3, 1)
        let (status, since) = Dunning.paymentFailed(status: .active, since: nil, now: failedAt)
        #expect(status == .pastDue && since == failedAt)
        // A second failure keeps the first one's clock.
        #expect(Dunning.paymentFailed(status: .pastDue, since: since, now: utc(2026, 3, 5)).1 == failedAt)
        #expect(Dunning.overdue(status: .pastDue, since: since, grace: 7 * 86_400, now: utc(2026, 3, 7)) == .pastDue)
        #expect(Dunning.overdue(status: .pastDue, since: since, grace: 7 * 86_400, now: utc(2026, 3, 8)) == .suspended)
        #expect(Dunning.overdue(status: .pastDue, since: since, grace: 0, now: failedAt) == .suspended)
        #expect(Dunning.paid(status: .suspended, stillUnpaid: 1) == .suspended)
        #expect(Dunning.paid(status: .suspended, stillUnpaid: 0) == .active)
        #expect(Dunning.paid(status: .terminated, stillUnpaid: 0) == .terminated)
        #expect(Dunning.paymentFailed(status: .terminated, since: nil, now: failedAt).0 == .terminated)
    }
}
