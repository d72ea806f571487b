import Foundation
import Testing
import TollgateCore

/// Reads one catalog object back from a document, failing the test with the reader's problems.
private func readBack<T>(
    _ node: DocumentNode, _ read: (DocumentNode, String, DocumentReader) -> T?, sourceLocation: SourceLocation = #_sourceLocation
) -> T? {
    let reader = DocumentReader()
    let value = read(node, "", reader)
    #expect(reader.problems.isEmpty, "\(reader.problems)", sourceLocation: sourceLocation)
    return value
}

/// The same, after writing the document as JSON and parsing it again (how the store keeps them).
private func readBackThroughJSON<T>(
    _ node: DocumentNode, _ read: (DocumentNode, String, DocumentReader) -> T?, sourceLocation: SourceLocation = #_sourceLocation
) throws -> T? {
    readBack(try json(node.jsonText()), read, sourceLocation: sourceLocation)
}

@Suite("Catalog documents")
struct CatalogDocumentTests {
    static let products: [Product] = [
        Product(
            id: "invoices", name: "Invoices API", upstream: UpstreamURL("http://127.0.0.1:9000")!,
            upstreamHeader: HeaderField(name: "X-Upstream-Secret", value: "s3cr3t"),
            webhook: WebhookTarget(url: "http://127.0.0.1:9100/hooks", secret: "whsec_123"),
            unlistedEndpoints: .allow,
            endpoints: [
                Endpoint(identifier: "create-invoice", name: "Create invoice", method: "POST", path: PathTemplate("/invoice")!),
                Endpoint(
                    identifier: "get-invoice", name: "Get invoice", description: "One invoice, \"quoted\"\nand multi-line",
                    method: "GET", path: PathTemplate("/invoice/{id}")!),
                Endpoint(identifier: "old", name: "Old", method: "DELETE", path: PathTemplate("/old/")!, archived: true),
            ]),
        Product(id: "bare", name: "Bare", upstream: UpstreamURL("http://example.com")!, unlistedEndpoints: .deny),
        Product(id: "v6", name: "IPv6", upstream: UpstreamURL("http://[::1]:8081/base/path/")!),
    ]

    static let meters: [Meter] = [
        Meter(
            id: "invoice-reads", name: "Invoice reads", source: .apiCalls,
            filter: MeterFilter(endpoint: "get-invoice", status: StatusFilter("<500")), aggregation: .count),
        Meter(
            id: "seats", name: "Seats", source: .event("seat.changed"),
            filter: MeterFilter(method: "POST", status: StatusFilter("2xx"), properties: ["metadata.plan": "pro", "data.kind": "x"]),
            aggregation: .max, property: "data.seats"),
        Meter(id: "bytes", name: "Bytes", source: .apiCalls, aggregation: .sum, property: "response.bytes"),
        Meter(id: "users", name: "Users", source: .event("login"), aggregation: .uniqueCount, property: "user_id"),
        Meter(id: "last", name: "Last", source: .event("gauge"), aggregation: .latest, property: "data.value"),
    ]

    static let plans: [Plan] = [
        Plan(
            id: "starter", product: "invoices", name: "Starter", currency: "EUR", period: .month,
            prices: [
                .flat(amount: Amount("29.00")!),
                .setup(amount: Amount("100")!),
                .prepaid(PrepaidQuota(endpoint: "create-invoice", quota: 1000, window: .month)),
                .prepaid(PrepaidQuota(quota: 50, window: .billingPeriod, amount: Amount("4.99")!)),
                .usage(UsagePrice(meter: "invoice-reads", model: .graduated(tiers: [
                    Tier(upTo: Amount(1000), unit: Amount("0")!),
                    Tier(upTo: Amount("10000.5")!, unit: Amount("0.002")!, flat: Amount("5")!),
                    Tier(upTo: nil, unit: Amount("0.001")!),
                ]))),
                .usage(UsagePrice(meter: "bytes", model: .volume(tiers: [Tier(upTo: nil, unit: Amount("0.0000001")!, flat: Amount(1))]))),
                .usage(UsagePrice(meter: "seats", model: .perUnit(unit: Amount("12.50")!))),
                .usage(UsagePrice(meter: "users", model: .package(size: 100, amount: Amount("9")!, freeUnits: 0))),
                .usage(UsagePrice(meter: "last", model: .package(size: 10, amount: Amount("1.5")!, freeUnits: 25))),
            ]),
        Plan(id: "free", product: "bare", name: "Free", currency: "JPY", period: .day, prices: []),
        Plan(
            id: "yearly", product: "bare", name: "Yearly", currency: "KWD", period: .year,
            prices: [.prepaid(PrepaidQuota(quota: Int(Int32.max), window: .second))]),
    ]

    @Test("a product reads back equal from its document", arguments: products)
    func productRoundTrip(product: Product) throws {
        #expect(readBack(product.document(secrets: true), Product.read) == product)
        #expect(try readBackThroughJSON(product.document(secrets: true), Product.read) == product)
    }

    @Test("a meter reads back equal from its document", arguments: meters)
    func meterRoundTrip(meter: Meter) throws {
        #expect(readBack(meter.document(), Meter.read) == meter)
        #expect(try readBackThroughJSON(meter.document(), Meter.read) == meter)
    }

    @Test("a plan reads back equal from its document", arguments: plans)
    func planRoundTrip(plan: Plan) throws {
        let read = try #require(readBack(plan.document(), Plan.read))
        #expect(read == plan)
        #expect(try readBackThroughJSON(plan.document(), Plan.read) == plan)
        // Amounts keep their written text ("29.00" stays "29.00").
        #expect(read.document().jsonText() == plan.document().jsonText())
    }

    @Test("an endpoint reads back equal from its document", arguments: products.flatMap(\.endpoints))
    func endpointRoundTrip(endpoint: Endpoint) {
        #expect(readBack(endpoint.document(), Endpoint.read) == endpoint)
    }

    @Test("the DESIGN §3.2 catalog survives document() and read()")
    func designCatalogRoundTrip() throws {
        let catalog = try Catalog.parse(yaml: designExampleCatalog)
        for product in catalog.products {
            #expect(try readBackThroughJSON(product.document(secrets: true), Product.read) == product)
        }
        for meter in catalog.meters {
            #expect(try readBackThroughJSON(meter.document(), Meter.read) == meter)
        }
        for plan in catalog.plans {
            #expect(try readBackThroughJSON(plan.document(), Plan.read) == plan)
        }
        #expect(catalog.plans.first?.document().jsonText().contains(#""amount":"29.00""#) == true)
    }

    @Test("the plan document has the catalog's shape")
    func planShape() throws {
        let plan = try #require(Catalog.parse(yaml: designExampleCatalog).plans.first)
        #expect(plan.document().jsonText() == """
            {"id":"starter","product":"invoices","name":"Starter","currency":"EUR","period":"month","prices":[\
            {"kind":"flat","amount":"29.00"},\
            {"kind":"prepaid","endpoint":"create-invoice","quota":1000,"window":"month"},\
            {"kind":"usage","meter":"invoice-reads","model":"graduated","tiers":[{"up_to":"1000","unit":"0"},\
            {"up_to":null,"unit":"0.002","flat":"5"}]}]}
            """)
    }

    @Test("without secrets, a product document omits the header value and webhook secret")
    func secretsOmitted() throws {
        let product = Self.products[0]
        let hidden = product.document(secrets: false)
        #expect(hidden["upstream_header"]?["name"]?.scalarText == "X-Upstream-Secret")
        #expect(hidden["upstream_header"]?["value"] == nil)
        #expect(hidden["webhook"]?["url"]?.scalarText == "http://127.0.0.1:9100/hooks")
        #expect(hidden["webhook"]?["secret"] == nil)
        #expect(!hidden.jsonText().contains("s3cr3t"))
        #expect(!hidden.jsonText().contains("whsec_123"))
        #expect(hidden["endpoints"] != nil)

        let shown = product.document(secrets: true)
        #expect(shown["upstream_header"]?["value"]?.scalarText == "s3cr3t")
        #expect(shown["webhook"]?["secret"]?.scalarText == "whsec_123")
    }

    @Test("a product document can leave out the endpoints")
    func withoutEndpoints() {
        let document = Self.products[0].document(secrets: false, endpoints: false)
        #expect(document["endpoints"] == nil)
        #expect(document.entries?.map(\.key) == ["id", "name", "upstream", "upstream_header", "webhook", "unlisted_endpoints", "case_sensitive_paths"])
        #expect(Self.products[1].document(secrets: true).entries?.map(\.key) == ["id", "name", "upstream", "unlisted_endpoints", "case_sensitive_paths", "endpoints"])
    }

    @Test("a document without secrets does not read back silently")
    func withoutSecretsIsNotReadable() {
        let reader = DocumentReader()
        let product = Product.read(Self.products[0].document(secrets: false), at: "product", reader)
        #expect(reader.problems.map(\.path) == ["product.upstream_header.value", "product.webhook.secret"])
        #expect(reader.problems.allSatisfy { $0.message == "is required" })
        #expect(product?.upstreamHeader == nil)
        #expect(product?.webhook == nil)
    }

    @Test("a merged patch updates a document that reads back")
    func patchThenRead() throws {
        let product = Self.products[0]
        let patch = try json(#"{"name":"Renamed","unlisted_endpoints":"deny"}"#)
        var expected = product
        expected.name = "Renamed"
        expected.unlistedEndpoints = .deny
        #expect(readBack(product.document(secrets: true).merging(patch), Product.read) == expected)
    }
}
