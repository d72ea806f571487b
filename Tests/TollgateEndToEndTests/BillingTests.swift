import Foundation
import Testing
import TollgateApp
import TollgateBilling
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// Periods close into invoices (DESIGN §3.7) against a real server: subscriptions started in the
/// past, usage through the collector, `POST /v1/billing/close`, invoices line by line.
@Suite("Billing")
struct BillingTests {
    /// The schedule stays out of the way: these tests close on demand.
    static func onDemand(_ options: inout ServeOptions) {
        options.billing.interval = nil
    }

    /// A whole-second time `offset` seconds from `base`.
    static func text(_ base: Date, _ offset: TimeInterval = 0) -> String {
        RFC3339.string(base.addingTimeInterval(offset))
    }

    static func close(_ server: RunningTollgate, at: String? = nil) async throws -> [String] {
        let response = try await server.admin("POST", "/v1/billing/close", body: at.map { #"{"at":"\#($0)"}"# })
        #expect(response.status == 200, "\(response.body)")
        return try #require(try response.json()["invoices"] as? [String])
    }

    static func invoices(_ server: RunningTollgate, _ subscription: String) async throws -> [[String: Any]] {
        let response = try await server.admin("GET", "/v1/invoices?subscription=\(subscription)")
        return try #require(try response.json()["data"] as? [[String: Any]])
    }

    static func lines(_ invoice: [String: Any]) -> [(description: String, quantity: String, amount: String)] {
        (invoice["lines"] as? [[String: Any]] ?? []).map {
            ($0["description"] as? String ?? "", $0["quantity"] as? String ?? "", $0["amount"] as? String ?? "")
        }
    }

    static func action(_ id: String, company: String, user: String, pages: Int, at time: String) -> String {
        #"{"action_name":"report-generated","user_id":"\#(user)","company_id":"\#(company)","transaction_id":"\#(id)","request":{"time":"\#(time)"},"metadata":{"pages":\#(pages)}}"#
    }

    static func read(_ id: String, company: String, at time: String, weight: Int = 1) -> String {
        #"{"request":{"time":"\#(time)","uri":"/items/1","verb":"GET","headers":{}},"response":{"time":"\#(time)","status":200},"company_id":"\#(company)","transaction_id":"\#(id)","weight":\#(weight)}"#
    }

    @Test(arguments: TestDatabase.allCases)
    func everyPeriodClosesIntoOneExactInvoice(database: TestDatabase) async throws {
        try await withTollgate(database: database, configure: Self.onDemand) { server in
            // Started ten days ago on a weekly plan: the first week has ended, the second runs.
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 10 * 86_400).rounded(.down))
            let (id, _) = try await server.subscribe(plan: "shop-metered", startedAt: Self.text(start))
            let company = try await CollectorTests.customer(of: id, server)

            let reads = try await CollectorTests.post(server, "/v1/events/batch", "[" + [
                Self.read("r1", company: company, at: Self.text(start, 3600)),
                Self.read("r2", company: company, at: Self.text(start, 7200), weight: 2),
                Self.read("r3", company: company, at: Self.text(start, 2 * 86_400)),
                Self.read("r4", company: company, at: Self.text(start, 6 * 86_400)),
                Self.read("r5", company: company, at: Self.text(Date(), -3600)),
            ].joined(separator: ",") + "]")
            #expect(try reads.json()["accepted"] as? Int == 5)
            let actions = try await CollectorTests.post(server, "/v1/actions/batch", "[" + [
                Self.action("a1", company: company, user: "u1", pages: 12, at: Self.text(start, 86_400)),
                Self.action("a2", company: company, user: "u2", pages: 7, at: Self.text(start, 2 * 86_400)),
                Self.action("a3", company: company, user: "u1", pages: 0, at: Self.text(start, 3 * 86_400)),
            ].joined(separator: ",") + "]")
            #expect(try actions.json()["accepted"] as? Int == 3)

            // A close before the start invoices nothing; a close in the future is refused.
            #expect(try await Self.close(server, at: Self.text(start, -60)).isEmpty)
            let future = try await server.admin("POST", "/v1/billing/close", body: #"{"at":"\#(Self.text(Date(), 3600))"}"#)
            #expect(future.status == 422)
            #expect(try future.json()["message"] as? String != nil)
            #expect(try await server.admin("POST", "/v1/billing/close", body: #"{"at":"yesterday"}"#).status == 422)

            let created = try await Self.close(server)
            #expect(created.count == 2)
            #expect(try await Self.close(server).isEmpty, "closing again invoices nothing twice")
            let invoices = try await Self.invoices(server, id)
            #expect(invoices.compactMap { $0["id"] as? String } == created)

            // The first invoice: the setup fee and the first week's fees, in advance.
            let opening = invoices[0]
            #expect(opening["period_start"] as? String == Self.text(start) && opening["period_end"] as? String == Self.text(start))
            #expect(opening["status"] as? String == "finalized", "\(opening)")
            #expect(opening["currency"] as? String == "EUR")
            #expect(opening["customer"] as? String == company)
            #expect(Self.lines(opening).map(\.description) == ["Metered: setup", "Metered (week)", "Metered: 1000 prepaid calls per month"])
            #expect(Self.lines(opening).map(\.amount) == ["5.00", "20.00", "3.00"])
            #expect(opening["total"] as? String == "28.00" && opening["subtotal"] as? String == "28.00")

            // The first week: usage in arrears, the second week's fees in advance.
            let week = invoices[1]
            #expect(week["period_start"] as? String == Self.text(start) && week["period_end"] as? String == Self.text(start, 7 * 86_400))
            let lines = Self.lines(week)
            #expect(lines.map(\.description) == [
                "Metered: item-reads (graduated)", "Metered: report-pages (package)", "Metered: report-users (volume)",
                "Metered (week)", "Metered: 1000 prepaid calls per month",
            ])
            // 5 reads: 2 free, 3 × 0.015 + the tier's flat 1 = 1.045 → 1.05 (half up).
            // 19 pages: 14 beyond the 5 free → 2 packages of 10 × 2.50. 2 users: both at the second tier's 0.50.
            #expect(lines.map(\.quantity) == ["5", "19", "2", "1", "1"])
            #expect(lines.map(\.amount) == ["1.05", "5.00", "1.00", "20.00", "3.00"])
            #expect(week["total"] as? String == "30.05")
            let one = try await server.admin("GET", "/v1/invoices/\(created[1])")
            #expect(one.status == 200)
            #expect(try one.json()["total"] as? String == "30.05")

            // A late event for the invoiced week is stored, reported, listed, and not re-rated.
            let late = try await CollectorTests.post(
                server, "/v1/actions", Self.action("a4", company: company, user: "u3", pages: 40, at: Self.text(start, 4 * 86_400)))
            #expect(late.status == 201)
            let reported = try #require(try late.json()["late"] as? [[String: Any]])
            #expect(reported.count == 1 && reported.first?["invoice"] as? String == created[1])
            let listed = try await server.admin("GET", "/v1/subscriptions/\(id)/late-events").json()
            let lateRows = try #require(listed["data"] as? [[String: Any]])
            #expect(lateRows.map { $0["invoice"] as? String } == [created[1]])
            #expect(lateRows.first?["name"] as? String == "report-generated")
            #expect(try await Self.close(server).isEmpty)
            #expect(try await server.admin("GET", "/v1/invoices/\(created[1])").json()["total"] as? String == "30.05")
            let current = try await CollectorTests.post(server, "/v1/events", Self.read("r6", company: company, at: Self.text(Date(), -60)))
            #expect((try current.json()["late"] as? [Any])?.isEmpty == true)

            // Statuses: finalized → paid; void only from draft or finalized.
            #expect(try await server.admin("POST", "/v1/invoices/\(created[0])/pay").json()["status"] as? String == "paid")
            let voidPaid = try await server.admin("POST", "/v1/invoices/\(created[0])/void")
            #expect(voidPaid.status == 409)
            #expect(try voidPaid.json()["message"] as? String == "invoice \"\(created[0])\" is paid; it cannot become void")
            #expect(try await server.admin("POST", "/v1/invoices/\(created[1])/void").json()["status"] as? String == "void")
            #expect(try await server.admin("POST", "/v1/invoices/\(created[1])/pay").status == 409)
            #expect(try await server.admin("POST", "/v1/invoices/inv_nope/void").status == 404)
            let voided = try await server.admin("GET", "/v1/invoices?status=void").json()
            #expect((voided["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [created[1]])
            #expect(try await server.admin("GET", "/v1/invoices?status=lost").status == 422)
            #expect(try await Self.close(server).isEmpty, "a voided period is not invoiced again")

            // Moving to a plan in another currency or with another period is refused.
            let yen = try await server.admin("POST", "/v1/subscriptions/\(id)/change-plan", body: #"{"plan":"shop-yen"}"#)
            #expect(yen.status == 422 && yen.body.contains("JPY"))
            let monthly = try await server.admin("POST", "/v1/subscriptions/\(id)/change-plan", body: #"{"plan":"shop-basic"}"#)
            #expect(monthly.status == 422 && monthly.body.contains("month"))

            // A change mid-week prorates the fees; terminating closes the week early with usage so far.
            #expect(try await server.admin("POST", "/v1/subscriptions/\(id)/change-plan", body: #"{"plan":"shop-metered-plus"}"#).status == 200)
            #expect(try await server.admin("POST", "/v1/subscriptions/\(id)/terminate").status == 200)
            let final = try await Self.close(server)
            #expect(final.count == 1)
            let last = try await server.admin("GET", "/v1/invoices/\(try #require(final.first))").json()
            let terminated = try await server.admin("GET", "/v1/subscriptions/\(id)").json()
            #expect(last["period_start"] as? String == Self.text(start, 7 * 86_400))
            #expect(last["period_end"] as? String == terminated["terminated_at"] as? String)
            let finalLines = Self.lines(last)
            #expect(finalLines.count == 4)
            // Two reads this week at the new plan's 0.01 each.
            #expect(finalLines.first?.description == "Metered Plus: item-reads (per_unit)")
            #expect(finalLines.first?.quantity == "2" && finalLines.first?.amount == "0.02")
            // About four of seven days remain: each fee's share, credited for the old plan, charged for the new.
            let share = try #require(Decimal(string: finalLines[3].quantity))
            #expect(share > Decimal(string: "0.5")! && share < Decimal(string: "0.6")!)
            #expect(finalLines[1].description.hasPrefix("Metered (week), unused time from "))
            #expect(finalLines[1].quantity == "-" + finalLines[3].quantity)
            for (index, fee) in [(1, Decimal(-20)), (2, Decimal(-3)), (3, Decimal(34))] {
                let amount = try #require(Decimal(string: finalLines[index].amount))
                #expect(abs(amount - fee * share) <= Decimal(string: "0.01")!)
            }
            let total = finalLines.reduce(Decimal.zero) { $0 + Decimal(string: $1.amount)! }
            #expect(last["total"] as? String == Rating.text(total, scale: 2))
            #expect(try await Self.close(server).isEmpty)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func racingClosesInvoiceEachPeriodOnce(database: TestDatabase) async throws {
        try await withTollgate(database: database, configure: Self.onDemand) { server in
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 22 * 86_400).rounded(.down))
            var subscriptions: [String] = []
            for _ in 0..<6 { subscriptions.append(try await server.subscribe(plan: "shop-metered", startedAt: Self.text(start)).id) }
            // Eight closes at once, over the HTTP API and the command line: 6 × (first + 3 weeks) invoices, once each.
            let arguments = ["billing", "close", "--data-dir", server.dataDirectory, "--database", server.database.connectionString]
            let created = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<6 { group.addTask { try await Self.close(server) } }
                for _ in 0..<2 {
                    group.addTask {
                        let process = try TollgateProcess.start(arguments)
                        let code = try await process.waitForExit(timeout: .seconds(60))
                        let output = process.output
                        #expect(code == 0, "\(output)")
                        let json = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") })
                        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
                        return try #require(parsed?["invoices"] as? [String])
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(created.count == 24)
            #expect(Set(created).count == 24)
            for id in subscriptions {
                let invoices = try await Self.invoices(server, id)
                #expect(invoices.count == 4)
                #expect(Set(invoices.compactMap { $0["period_end"] as? String }).count == 4)
            }
            #expect(try await Self.close(server).isEmpty)
        }
    }

    @Test func theScheduleClosesPeriodsOnceTheirGraceHasPassed() async throws {
        try await withTollgate(configure: { options in
            options.billing.interval = .milliseconds(100)
            options.billing.grace = .seconds(2 * 86_400)
        }) { server in
            // The first week ended a day ago: within its two days' grace, only the first invoice is due.
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 8 * 86_400).rounded(.down))
            let (waiting, _) = try await server.subscribe(plan: "shop-metered", startedAt: Self.text(start))
            // This one's first week ended three days ago.
            let (due, _) = try await server.subscribe(plan: "shop-metered", startedAt: Self.text(start, -2 * 86_400))
            try await waitUntil("the scheduled closes of both subscriptions") {
                [try await Self.invoices(server, waiting).count, try await Self.invoices(server, due).count] == [1, 2]
            }
            // A later pass of the schedule (it invoices a subscription that is due only now) still
            // leaves the waiting period alone: one pass closes everything due, so it saw that one too.
            let (later, _) = try await server.subscribe(plan: "shop-metered", startedAt: Self.text(start, -2 * 86_400))
            try await waitUntil("the scheduled close of a subscription added later") {
                try await Self.invoices(server, later).count == 2
            }
            #expect(try await Self.invoices(server, waiting).count == 1)
            #expect(try await Self.invoices(server, due).count == 2)
            // On demand, no grace: the ended week is closed now.
            #expect(try await Self.close(server).count == 1)
        }
    }

    @Test func draftsWaitForFinalizingAndFinalizedInvoicesReachTheWebhook() async throws {
        let receiver = try await WebhookReceiver.start { _, _ in (204, []) }
        try await withTollgate(configure: { options in
            Self.onDemand(&options)
            options.billing.drafts = true
            WebhookTests.fastRetries(&options)
        }) { server in
            try await WebhookTests.addHookedProduct(server, receiver: receiver)
            #expect(try await server.admin("POST", "/v1/plans", body: """
                {"id":"hooked-kwd","product":"hooked","name":"Dinar","currency":"KWD","period":"day","prices":[{"kind":"flat","amount":"1.2345"}]}
                """).status == 201)
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 86_400 - 600).rounded(.down))
            let (id, _) = try await server.subscribe(plan: "hooked-kwd", startedAt: Self.text(start))
            let created = try await Self.close(server)
            #expect(created.count == 2)
            let drafts = try await Self.invoices(server, id)
            #expect(drafts.allSatisfy { $0["status"] as? String == "draft" && $0["finalized_at"] is NSNull })
            // KWD has three minor digits: 1.2345 → 1.235 (half up).
            #expect(drafts.map { $0["total"] as? String } == ["1.235", "1.235"])

            let finalized = try await server.admin("POST", "/v1/invoices/\(created[0])/finalize").json()
            #expect(finalized["status"] as? String == "finalized")
            let events = try await receiver.waitFor(2)
            let invoiceEvent = try #require(try events.map { try $0.json() }.first { $0["type"] as? String == "invoice.finalized" })
            let data = try #require(invoiceEvent["data"] as? [String: Any])
            #expect(data["id"] as? String == created[0])
            #expect(data["total"] as? String == "1.235" && data["subscription"] as? String == id)
            #expect(events.allSatisfy(WebhookTests.verify))
            // Finalizing again changes nothing and sends nothing more: finalizing the other invoice
            // afterwards sends its event after anything the first call could have queued (one
            // subscription's deliveries keep their order).
            #expect(try await server.admin("POST", "/v1/invoices/\(created[0])/finalize").status == 200)
            #expect(try await server.admin("POST", "/v1/invoices/\(created[1])/finalize").status == 200)
            let all = try await receiver.waitFor("the second invoice's invoice.finalized") {
                let event = try $0.json()
                return event["type"] as? String == "invoice.finalized" && (event["data"] as? [String: Any])?["id"] as? String == created[1]
            }
            let finalizedFirst = try all.map { try $0.json() }.filter {
                $0["type"] as? String == "invoice.finalized" && ($0["data"] as? [String: Any])?["id"] as? String == created[0]
            }
            #expect(finalizedFirst.count == 1)
        }
    }
}
