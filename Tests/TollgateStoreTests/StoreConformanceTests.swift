import Foundation
import Testing
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// One storage API, the same behaviour on SQLite and PostgreSQL.
@Suite("Store conformance")
struct StoreConformanceTests {
    static let product = Product(
        id: "maps", name: "Maps", upstream: UpstreamURL("http://127.0.0.1:9000/api")!,
        upstreamHeader: HeaderField(name: "X-Secret", value: "s3cr3t"),
        webhook: WebhookTarget(url: "http://127.0.0.1:9100/hooks", secret: "whsec_1"), unlistedEndpoints: .deny,
        endpoints: [Endpoint(identifier: "tile", name: "Tile", method: "GET", path: PathTemplate("/tiles/{z}")!)])
    static let meter = Meter(
        id: "tiles", name: "Tiles", source: .apiCalls, filter: MeterFilter(endpoint: "tile", status: StatusFilter("2xx")),
        aggregation: .count)
    static let plan = Plan(
        id: "maps-basic", product: "maps", name: "Basic", currency: "EUR", period: .month,
        prices: [.flat(amount: Amount("9.90")!), .prepaid(PrepaidQuota(endpoint: "tile", quota: 100, window: .day)),
                 .usage(UsagePrice(meter: "tiles", model: .graduated(tiers: [
                     Tier(upTo: Amount("100")!, unit: Amount("0")!), Tier(upTo: nil, unit: Amount("0.01")!, flat: Amount("1")!),
                 ])))])

    /// Stores the product, meter and plan above.
    static func seedCatalog(_ store: TollgateStore) async throws {
        try await store.saveProduct(product, mode: .create)
        try await store.saveMeter(meter, mode: .create)
        try await store.savePlan(plan, mode: .create)
    }

    @Test(arguments: TestDatabase.allCases)
    func catalogObjectsRoundTripWithTheirSecrets(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedCatalog(store)
            #expect(try await store.product("maps")?.value == Self.product)
            #expect(try await store.meter("tiles")?.value == Self.meter)
            #expect(try await store.plan("maps-basic")?.value == Self.plan)
            #expect(try await store.product("nope") == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func saveModesAreEnforced(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await store.saveProduct(Self.product, mode: .create)
            await #expect(throws: StoreError.conflict("product \"maps\" already exists")) {
                try await store.saveProduct(Self.product, mode: .create)
            }
            var renamed = Self.product
            renamed.id = "other"
            await #expect(throws: StoreError.notFound("no product \"other\"")) {
                try await store.saveProduct(renamed, mode: .update)
            }
            var updated = Self.product
            updated.name = "Maps v2"
            try await store.saveProduct(updated, mode: .update)
            try await store.saveProduct(renamed, mode: .upsert)
            #expect(try await store.product("maps")?.value.name == "Maps v2")
            #expect(try await store.allProducts().map(\.value.id) == ["maps", "other"])
            try await store.setProductArchived("other", true)
            #expect(try await store.product("other")?.archived == true)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func listsArePagedInIdOrder(database: TestDatabase) async throws {
        try await database.withStore { store in
            for index in [3, 1, 4, 0, 2] {
                try await store.saveCustomer(Customer(id: "c\(index)", name: "C\(index)", createdAt: Date()), mode: .create)
            }
            let first = try await store.customers(limit: 2)
            #expect(first.items.map(\.value.id) == ["c0", "c1"])
            #expect(first.nextCursor == "c1")
            let second = try await store.customers(after: first.nextCursor, limit: 2)
            #expect(second.items.map(\.value.id) == ["c2", "c3"])
            let last = try await store.customers(after: second.nextCursor, limit: 2)
            #expect(last.items.map(\.value.id) == ["c4"])
            #expect(last.nextCursor == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func subscriptionsKeepOnlyTheTokenHash(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedCatalog(store)
            try await store.saveCustomer(Customer(id: "acme", name: "Acme", createdAt: Date()), mode: .create)
            let token = APIToken.generate()
            let started = Date(timeIntervalSince1970: 1_790_000_000)
            let subscription = Subscription(
                id: "sub_1", customer: "acme", plan: "maps-basic", product: "maps", status: .active,
                startedAt: started, createdAt: started)
            try await store.createSubscription(subscription, tokenHash: APIToken.hash(token))
            #expect(try await store.subscription("sub_1") == subscription)
            let credentials = try await store.activeCredentials()
            #expect(credentials.count == 1)
            #expect(credentials.first?.tokenHash == APIToken.hash(token))

            let newHash = APIToken.hash(APIToken.generate())
            _ = try await store.updateSubscription("sub_1", newTokenHash: newHash) { _ in }
            #expect(try await store.activeCredentials().first?.tokenHash == newHash)

            let ended = try await store.updateSubscription("sub_1") { subscription in
                subscription.status = .terminated
                subscription.terminatedAt = started.addingTimeInterval(60)
            }
            #expect(ended.status == .terminated)
            #expect(try await store.activeCredentials().isEmpty)
            #expect(try await store.subscriptions(customer: "acme", limit: 10).items.map(\.id) == ["sub_1"])
            #expect(try await store.subscriptions(customer: "nobody", limit: 10).items.isEmpty)

            struct Refused: Error {}
            await #expect(throws: Refused.self) {
                try await store.updateSubscription("sub_1") { subscription in
                    subscription.plan = "changed"
                    throw Refused()
                }
            }
            #expect(try await store.subscription("sub_1")?.plan == "maps-basic")
            await #expect(throws: StoreError.self) {
                try await store.createSubscription(subscription, tokenHash: APIToken.hash(token))
            }
        }
    }

    /// A subscription to the seeded plan that started 100 s before `base`, so that its billing
    /// periods start at 14:11:40 and buckets are cut there as well as at each hour.
    static let base = Date(timeIntervalSince1970: 1_790_000_000)  // 2026-09-21T14:13:20Z

    static func seedSubscription(_ store: TollgateStore) async throws {
        try await seedCatalog(store)
        try await store.saveCustomer(Customer(id: "acme", name: "Acme", createdAt: base), mode: .upsert)
        try await store.createSubscription(
            Subscription(id: "sub_1", customer: "acme", plan: "maps-basic", product: "maps", status: .active,
                         startedAt: base.addingTimeInterval(-100), createdAt: base),
            tokenHash: APIToken.hash(APIToken.generate()))
    }

    static func call(
        _ id: String, _ offset: TimeInterval, endpoint: String?, status: Int = 200, billable: Bool = true, weight: Int = 1,
        subscription: String = "sub_1"
    ) -> UsageEvent {
        UsageEvent(
            id: id, source: .gateway, occurredAt: base.addingTimeInterval(offset), timeFromSender: true, subscription: subscription,
            customer: "acme",
            product: "maps", endpoint: endpoint, method: "GET", path: "/maps/tiles/1", status: status,
            latencyMicroseconds: 120, requestBytes: 0, responseBytes: 10, billable: billable, weight: weight)
    }

    static func action(_ id: String, _ offset: TimeInterval, _ properties: String, name: String = "report") -> UsageEvent {
        UsageEvent(
            id: id, source: .action, name: name, occurredAt: base.addingTimeInterval(offset), timeFromSender: true, subscription: "sub_1",
            customer: "acme", product: nil, endpoint: nil, method: nil, path: nil, status: nil, latencyMicroseconds: nil,
            requestBytes: nil, responseBytes: nil, billable: true, properties: try! ScannedJSON.scan(properties.utf8))
    }

    static func summary(_ store: TollgateStore, from: TimeInterval, to: TimeInterval, meters: [Meter]) async throws -> UsageSummary {
        let span = TimeSpan(start: base.addingTimeInterval(from), end: base.addingTimeInterval(to))
        let rows = try await store.meterRows(subscription: "sub_1", from: span.start, to: span.end)
        return UsageSummary.summarize(rows, span: span, endpoints: ["tile"], meters: meters)
    }

    @Test(arguments: TestDatabase.allCases)
    func eventsAreDeduplicatedAndAggregatedWithTheirWeights(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedSubscription(store)
            let first = try await store.insertEvents([
                Self.call("e1", 0, endpoint: "tile"), Self.call("e2", 10, endpoint: "tile"),
                Self.call("e3", 3600, endpoint: "tile", status: 500), Self.call("e4", 20, endpoint: nil, billable: false),
                Self.call("e5", 30, endpoint: "tile", weight: 5), Self.call("e5", 30, endpoint: "tile", weight: 5),
            ])
            #expect(first.ids == ["e1", "e2", "e3", "e4", "e5"] && first.late.isEmpty)
            let again = try await store.insertEvents([Self.call("e1", 0, endpoint: "tile"), Self.call("e6", 40, endpoint: "tile")])
            #expect(again.ids == ["e6"])
            #expect(try await store.eventCount() == 6)

            // The "tiles" meter counts 2xx calls of the tile endpoint, weights summed; duplicates count once.
            let day = try await Self.summary(store, from: -100, to: 86_400, meters: [Self.meter])
            #expect(day.endpoints == ["tile": 1 + 1 + 1 + 5 + 1])
            #expect(day.meters == ["tiles": Amount(1 + 1 + 5 + 1)])
            // Buckets are cut at the period start (base - 100 s) and at every hour.
            let rows = try await store.meterRows(subscription: "sub_1", from: Self.base.addingTimeInterval(-3600), to: Self.base.addingTimeInterval(7200))
            let buckets = Set(rows.aggregates.map(\.bucket))
            #expect(buckets == [Micros.of(Self.base.addingTimeInterval(-100)), Micros.of(Date(timeIntervalSince1970: 1_790_002_800))])
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func everyAggregationIsExactOverAPeriodAndSurvivesReopening(database: TestDatabase) async throws {
        let url = try database.makeURL()
        let meters = [
            Meter(id: "pages", name: "Pages", source: .event("report"), aggregation: .sum, property: "metadata.pages"),
            Meter(id: "largest", name: "Largest", source: .event("report"), aggregation: .max, property: "metadata.pages"),
            Meter(id: "last-seats", name: "Seats", source: .event("report"), aggregation: .latest, property: "metadata.seats"),
            Meter(id: "users", name: "Users", source: .event("report"), aggregation: .uniqueCount, property: "user_id"),
            Meter(id: "pro-reports", name: "Pro", source: .event("report"),
                  filter: MeterFilter(properties: ["metadata.tier": "pro"]), aggregation: .count),
        ]
        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            try await store.migrate()
            try await Self.seedSubscription(store)
            for meter in meters { try await store.saveMeter(meter, mode: .create) }
            try await store.insertEvents([
                Self.action("a1", 0, #"{"user_id":"u1","metadata":{"pages":1.25,"seats":3,"tier":"pro"}}"#),
                Self.action("a2", 4000, #"{"user_id":"u2","metadata":{"pages":"2.5","seats":7}}"#),
                Self.action("a3", 8000, #"{"user_id":"u1","metadata":{"pages":0.000000001,"seats":5,"tier":"pro"}}"#),
                Self.action("a4", 9000, #"{"user_id":"u3","metadata":{"tier":"basic"}}"#, name: "other"),
            ])
        }
        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            try await store.migrate()
            let period = try await Self.summary(store, from: -100, to: 86_400, meters: meters)
            #expect(period.meters["pages"] == Amount("3.750000001"))
            #expect(period.meters["largest"] == Amount("2.5"))
            #expect(period.meters["last-seats"] == Amount(5))
            // u1 in two different hours counts once over the period.
            #expect(period.meters["users"] == Amount(2))
            #expect(period.meters["pro-reports"] == Amount(2))
            // Rating reads the same values, aggregated by the database instead.
            let span = TimeSpan(start: Self.base.addingTimeInterval(-100), end: Self.base.addingTimeInterval(86_400))
            let rated = try await store.meterValues(subscription: "sub_1", span: span, meters: meters)
            #expect(rated.mapValues { Amount($0) } == period.meters)
            let early = TimeSpan(start: span.start, end: Self.base.addingTimeInterval(1))
            let firstHour = try await store.meterValues(subscription: "sub_1", span: early, meters: meters)
            #expect(firstHour == ["pages": Decimal(string: "1.25")!, "largest": Decimal(string: "1.25")!, "last-seats": 3, "users": 1,
                                  "pro-reports": 1])

            // A meter created after its events is built from the ledger.
            let late = Meter(id: "reports", name: "Reports", source: .event("report"), aggregation: .count)
            try await store.saveMeter(late, mode: .create)
            let rebuilt = try await Self.summary(store, from: -100, to: 86_400, meters: [late])
            #expect(rebuilt.meters["reports"] == Amount(3))
            // Changing a meter rebuilds it; saving it unchanged does not count twice.
            try await store.saveMeter(late, mode: .upsert)
            #expect(try await Self.summary(store, from: -100, to: 86_400, meters: [late]).meters["reports"] == Amount(3))
            var narrowed = late
            narrowed.filter = MeterFilter(properties: ["metadata.tier": "pro"])
            try await store.saveMeter(narrowed, mode: .update)
            #expect(try await Self.summary(store, from: -100, to: 86_400, meters: [narrowed]).meters["reports"] == Amount(2))
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func eventsAreStoredAsTheyArrivedAndMetersRebuildFromThem(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedSubscription(store)
            let texts = [
                "{ \"user_id\" : \"Zo\u{eb} \\\"the\\\" admin\",\n  \"metadata\": {\"pages\": 2.5, \"note\": \"a  b\\tc \u{1F600}\"} }",
                #"{"user_id":"Zoë \"the\" admin","metadata":{"pages":1,"note":"other"}}"#,
                "\t{\"user_id\":\"u2\" , \"metadata\":{\"pages\":4,\"note\":\"a  b\\tc \u{1F600}\"}}\n",
            ]
            try await store.insertEvents(try texts.enumerated().map { index, text in
                var event = Self.action("s\(index)", Double(index), "{}")
                event.properties = try ScannedJSON.scan(text.utf8)
                return event
            })
            // A meter created after its events reads the stored bodies, escapes and all.
            let meter = Meter(
                id: "zoe-pages", name: "Zoë's pages", source: .event("report"),
                filter: MeterFilter(properties: ["user_id": "Zoë \"the\" admin", "metadata.note": "a  b\tc \u{1F600}"]),
                aggregation: .sum, property: "metadata.pages")
            try await store.saveMeter(meter, mode: .create)
            #expect(try await Self.summary(store, from: -100, to: 86_400, meters: [meter]).meters["zoe-pages"] == Amount("2.5"))
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func anEventIsKeyedByItsIdAndItsSendersTime(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedSubscription(store)
            func untimed(_ id: String, arrivedAt offset: TimeInterval) -> UsageEvent {
                var event = Self.call(id, offset, endpoint: "tile")
                event.timeFromSender = false
                return event
            }
            #expect(try await store.insertEvents([Self.call("k", 10, endpoint: "tile"), untimed("n", arrivedAt: 30)]).ids == ["k", "n"])
            // A retry repeats the id and the sender's time: a duplicate. The same id at another
            // time is another event. Without a sender's time, the id alone is the key.
            let again = try await store.insertEvents([
                Self.call("k", 10, endpoint: "tile"), Self.call("k", 20, endpoint: "tile"), untimed("n", arrivedAt: 40),
            ])
            #expect(again.inserted == [UsageEvent.Key(id: "k", time: Micros.of(Self.base.addingTimeInterval(20)))])
            #expect(try await store.eventCount() == 3)
            let summary = try await Self.summary(store, from: -100, to: 86_400, meters: [Self.meter])
            #expect(summary.meters["tiles"] == Amount(3))
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func concurrentBatchesStoreEachEventOnce(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedSubscription(store)
            // 16 batches of 100 calls written at once; each shares 50 ids with the next.
            let outcomes = try await withThrowingTaskGroup(of: EventInsertion.self) { group in
                for batch in 0..<16 {
                    group.addTask {
                        try await store.insertEvents((0..<100).map { Self.call("c\(batch * 50 + $0)", Double(batch * 50 + $0), endpoint: "tile") })
                    }
                }
                return try await group.reduce(into: [EventInsertion]()) { $0.append($1) }
            }
            let inserted = outcomes.flatMap(\.inserted)
            #expect(inserted.count == 850 && Set(inserted).count == 850)
            #expect(try await store.eventCount() == 850)
            let summary = try await Self.summary(store, from: -100, to: 86_400, meters: [Self.meter])
            #expect(summary.meters["tiles"] == Amount(850) && summary.endpoints["tile"] == 850)
        }
    }

    /// A finalized invoice of sub_1 for [base + from, base + to).
    static func invoice(_ id: String, from: TimeInterval, to: TimeInterval) -> Invoice {
        let span = TimeSpan(start: base.addingTimeInterval(from), end: base.addingTimeInterval(to))
        return Invoice(
            id: id, subscription: "sub_1", customer: "c1", product: "p1", currency: "EUR", period: span, status: .finalized,
            lines: [InvoiceLine(description: "Flat", plan: "plan", price: 0, quantity: 1, amount: Decimal(string: "9.99")!, span: span)],
            createdAt: base)
    }

    @Test(arguments: TestDatabase.allCases)
    func aBatchWithStoredLateAndNewEventsStoresEachAsItShould(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedSubscription(store)
            try await store.insertEvents([Self.call("old", 10, endpoint: "tile")])
            _ = try await store.insertInvoices([(Self.invoice("inv_a", from: 0, to: 60), nil), (Self.invoice("inv_b", from: 60, to: 120), nil)])
            let result = try await store.insertEvents([
                Self.call("old", 10, endpoint: "tile"), Self.call("l1", 30, endpoint: "tile"), Self.call("n1", 500, endpoint: "tile"),
                Self.call("l2", 90, endpoint: "tile"), Self.call("n2", 600, endpoint: "tile"),
            ])
            #expect(result.ids == ["l1", "n1", "l2", "n2"])
            #expect(Dictionary(uniqueKeysWithValues: result.late.map { ($0.key.id, $0.value) }) == ["l1": "inv_a", "l2": "inv_b"])
            #expect(try await store.eventCount() == 5)
            let late = try await store.lateEvents(subscription: "sub_1", limit: 10).items
            #expect(late.map(\.id) == ["l1", "l2"] && late.map(\.invoice) == ["inv_a", "inv_b"])
            #expect(late.map(\.occurredAt) == [Self.base.addingTimeInterval(30), Self.base.addingTimeInterval(90)])
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func onlyTheInvoicedSubscriptionsEventsBeforeItsLastInvoicedEndAreLate(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedSubscription(store)
            func other(_ id: String, _ offset: TimeInterval) -> UsageEvent { Self.call(id, offset, endpoint: "tile", subscription: "sub_2") }
            // Both subscriptions' last invoiced ends are read (none yet), then sub_1's first period is invoiced.
            _ = try await store.insertEvents([Self.call("a0", 5, endpoint: "tile"), other("b0", 5)])
            _ = try await store.insertInvoices([(Self.invoice("inv_a", from: 0, to: 60), nil)])
            let result = try await store.insertEvents([
                Self.call("a1", 30, endpoint: "tile"), other("b1", 30), Self.call("a2", 60, endpoint: "tile"), other("b2", 90),
            ])
            #expect(result.ids == ["a1", "b1", "a2", "b2"])
            #expect(Dictionary(uniqueKeysWithValues: result.late.map { ($0.key.id, $0.value) }) == ["a1": "inv_a"])
            // Later batches find the same.
            let again = try await store.insertEvents([Self.call("a3", 59, endpoint: "tile"), other("b3", 59)])
            #expect(Dictionary(uniqueKeysWithValues: again.late.map { ($0.key.id, $0.value) }) == ["a3": "inv_a"])
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func lateEventsArePagedByIdThenTimeAsOneIdMayBeTwoEvents(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedSubscription(store)
            _ = try await store.insertInvoices([(Self.invoice("inv_a", from: 0, to: 60), nil)])
            let stored = try await store.insertEvents([
                Self.call("same", 20, endpoint: "tile"), Self.call("same", 10, endpoint: "tile"), Self.call("other", 30, endpoint: "tile"),
            ])
            #expect(stored.late.count == 3)
            var listed: [(id: String, at: Date)] = []
            var cursor: String?
            repeat {
                let page = try await store.lateEvents(subscription: "sub_1", after: cursor, limit: 1)
                listed += page.items.map { ($0.id, $0.occurredAt) }
                cursor = page.nextCursor
            } while cursor != nil
            #expect(listed.map(\.id) == ["other", "same", "same"])
            #expect(listed.map(\.at) == [30, 10, 20].map { Self.base.addingTimeInterval($0) })
            // A bare id (a cursor from before events were keyed by time) goes on after that id.
            #expect(try await store.lateEvents(subscription: "sub_1", after: "other", limit: 5).items.count == 2)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func theDatabaseKeepsOneInvoicePerSubscriptionAndPeriod(database: TestDatabase) async throws {
        try await database.withStore { store in
            try await Self.seedSubscription(store)
            func invoice(_ id: String, end: TimeInterval) -> Invoice { Self.invoice(id, from: 0, to: end) }
            #expect(try await store.insertInvoices([(invoice("inv_a", end: 60), nil), (invoice("inv_b", end: 120), nil)]) == ["inv_a", "inv_b"])
            // Another id for a period already invoiced (a racing or repeated close) is refused by the database.
            #expect(try await store.insertInvoices([(invoice("inv_c", end: 60), nil), (invoice("inv_d", end: 180), nil)]) == ["inv_d"])
            let stored = try await store.invoices(subscription: "sub_1", limit: 10).items
            #expect(stored.map(\.id) == ["inv_a", "inv_b", "inv_d"])
            #expect(stored[0].lines == invoice("inv_a", end: 60).lines)
            #expect(try await store.invoice("inv_c") == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func migrationsRunOnceAndDataSurvivesReopening(database: TestDatabase) async throws {
        let url = try database.makeURL()
        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            try await store.migrate()
            try await store.migrate()
            try await store.saveCustomer(Customer(id: "kept", name: "Kept", createdAt: Date()), mode: .create)
        }
        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            try await store.migrate()
            #expect(try await store.customer("kept")?.value.name == "Kept")
        }
    }
}

extension EventInsertion {
    /// The ids of the events stored.
    var ids: Set<String> { Set(inserted.map(\.id)) }
}
