import Testing
import TollgateCore

/// The catalog of DESIGN §3.2, verbatim.
let designExampleCatalog = """
    products:
      - id: invoices                     # route prefix: http://HOST:8000/invoices/...
        name: Invoices API
        upstream: http://127.0.0.1:9000  # never shown to consumers
        upstream_header: { name: X-Upstream-Secret, value: s3cr3t }
        webhook: { url: http://127.0.0.1:9100/hooks, secret: whsec_123 }
        unlisted_endpoints: allow        # allow (proxied, not billed) | deny (404)
        endpoints:
          - { identifier: create-invoice, name: Create invoice, method: POST, path: /invoice }
          - { identifier: get-invoice, name: Get invoice, method: GET, path: "/invoice/{id}" }
    meters:
      - id: invoice-reads
        name: Invoice reads
        source: api_calls                # api_calls | event:<type or action name>
        filter: { endpoint: get-invoice, status: "<500" }
        aggregation: count               # count | unique_count | sum | max | latest (+ property:)
    plans:
      - id: starter
        product: invoices
        name: Starter
        currency: EUR
        period: month                    # day | week | month | year, anchored at subscription start
        prices:
          - { kind: flat, amount: "29.00" }
          - { kind: prepaid, endpoint: create-invoice, quota: 1000, window: month }
          - { kind: usage, meter: invoice-reads, model: graduated,
              tiers: [ { up_to: 1000, unit: "0" }, { up_to: null, unit: "0.002", flat: "5" } ] }
    """

@Suite("Catalog.parse(yaml:)")
struct CatalogParsingTests {
    @Test("the example of DESIGN §3.2 parses with every value")
    func designExample() throws {
        let catalog = try Catalog.parse(yaml: designExampleCatalog)
        #expect(catalog.products.count == 1)
        #expect(catalog.meters.count == 1)
        #expect(catalog.plans.count == 1)

        let product = try #require(catalog.products.first)
        #expect(product.id == "invoices")
        #expect(product.name == "Invoices API")
        #expect(product.upstream.host == "127.0.0.1")
        #expect(product.upstream.port == 9000)
        #expect(product.upstream.basePath == "")
        #expect(product.upstreamHeader == HeaderField(name: "X-Upstream-Secret", value: "s3cr3t"))
        #expect(product.webhook == WebhookTarget(url: "http://127.0.0.1:9100/hooks", secret: "whsec_123"))
        #expect(product.unlistedEndpoints == .allow)
        #expect(product.endpoints.map(\.identifier) == ["create-invoice", "get-invoice"])
        #expect(product.endpoints.map(\.name) == ["Create invoice", "Get invoice"])
        #expect(product.endpoints.map(\.method) == ["POST", "GET"])
        #expect(product.endpoints.map(\.path.description) == ["/invoice", "/invoice/{id}"])
        #expect(product.endpoints.map(\.description) == ["", ""])
        #expect(product.endpoints.allSatisfy { !$0.archived })
        #expect(product.endpoints[1].path.matches("/invoice/42"))

        let meter = try #require(catalog.meters.first)
        #expect(meter.id == "invoice-reads")
        #expect(meter.name == "Invoice reads")
        #expect(meter.source == .apiCalls)
        #expect(meter.filter.endpoint == "get-invoice")
        #expect(meter.filter.method == nil)
        #expect(meter.filter.status == StatusFilter("<500"))
        #expect(meter.filter.status?.description == "<500")
        #expect(meter.filter.properties.isEmpty)
        #expect(meter.aggregation == .count)
        #expect(meter.property == nil)

        let plan = try #require(catalog.plans.first)
        #expect(plan.id == "starter")
        #expect(plan.product == "invoices")
        #expect(plan.name == "Starter")
        #expect(plan.currency == "EUR")
        #expect(plan.period == .month)
        #expect(plan.prices.map(\.kind) == ["flat", "prepaid", "usage"])

        guard case .flat(let fee) = plan.prices[0] else {
            Issue.record("first price is \(plan.prices[0].kind)")
            return
        }
        #expect(fee.description == "29.00")
        #expect(fee == Amount(29))

        #expect(plan.prices[1] == .prepaid(PrepaidQuota(endpoint: "create-invoice", quota: 1000, window: .month)))
        #expect(plan.prepaidQuotas == [PrepaidQuota(endpoint: "create-invoice", quota: 1000, window: .month, amount: nil)])

        guard case .usage(let usage) = plan.prices[2], case .graduated(let tiers) = usage.model else {
            Issue.record("third price is not a graduated usage price: \(plan.prices[2])")
            return
        }
        #expect(usage.meter == "invoice-reads")
        #expect(tiers.count == 2)
        #expect(tiers[0].upTo == Amount(1000))
        #expect(tiers[0].upTo?.description == "1000")
        #expect(tiers[0].unit.description == "0")
        #expect(tiers[0].flat == nil)
        #expect(tiers[1].upTo == nil)
        #expect(tiers[1].unit.description == "0.002")
        #expect(tiers[1].flat?.description == "5")
    }

    /// A catalog with many mistakes, each on a known line. Line numbers are in the comments.
    static let invalidCatalog = """
        products:
          - id: invoices
            name: Invoices API
            upstream: http://127.0.0.1:9000
            unlisted_endpont: deny
            endpoints:
              - { identifier: create-invoice, name: Create invoice, method: POST, path: /invoice }
          - id: invoices
            name: Invoices again
            upstream: http://127.0.0.1:9001
          - id: secure
            name: Secure API
            upstream: ftp://api.example.com
        meters:
          - id: reads
            name: Reads
            source: api_calls
            aggregation: count
        plans:
          - id: starter
            product: invoices
            name: Starter
            currency: EURO
            period: month
            prices:
              - { kind: flat, amount: "abc" }
          - id: pro
            product: invoices
            name: Pro
            currency: EUR
            period: month
            prices:
              - { kind: bonus, amount: "1" }
          - id: tiered
            product: invoices
            currency: EUR
            period: month
            prices:
              - kind: usage
                meter: reads
                model: graduated
                tiers:
                  - { up_to: 10, unit: "0" }
                  - { up_to: 100, unit: "0.01" }
          - id: quota
            product: invoices
            name: Quota
            currency: EUR
            period: month
            prices:
              - { kind: prepaid, endpoint: delete-invoice, quota: 10, window: day }
              - { kind: usage, meter: writes, model: per_unit, unit: "0.1" }
        """

    static let invalidCatalogProblems: [ExpectedProblem] = [
        ExpectedProblem(5, "products[0].unlisted_endpont", "unknown key"),
        ExpectedProblem(8, "products[1].id", "duplicate product id \"invoices\""),
        ExpectedProblem(13, "products[2].upstream", "http://"),
        ExpectedProblem(23, "plans[0].currency", "ISO 4217"),
        ExpectedProblem(26, "plans[0].prices[0].amount", "not \"abc\""),
        ExpectedProblem(33, "plans[1].prices[0].kind", "must be one of flat, setup, prepaid, usage, not \"bonus\""),
        ExpectedProblem(34, "plans[2].name", "is required"),
        ExpectedProblem(44, "plans[2].prices[0].tiers[1].up_to", "must be null on the last tier"),
        ExpectedProblem(51, "plans[3].prices[0].endpoint", "unknown endpoint \"delete-invoice\""),
        ExpectedProblem(52, "plans[3].prices[1].meter", "unknown meter \"writes\""),
    ]

    @Test("an invalid catalog reports every problem, each with its line and path")
    func everyProblem() {
        let problems = catalogProblems(Self.invalidCatalog)
        for expected in Self.invalidCatalogProblems {
            #expect(problems.contains(where: expected.matches), "missing \(expected) in:\n\(problems.map(\.description).joined(separator: "\n"))")
        }
        #expect(
            problems.count == Self.invalidCatalogProblems.count,
            "unexpected problems:\n\(problems.filter { problem in !Self.invalidCatalogProblems.contains { $0.matches(problem) } })")
    }

    @Test("each problem in the invalid catalog is on the line it names")
    func problemLinesPointAtTheirText() {
        let lines = Self.invalidCatalog.split(separator: "\n", omittingEmptySubsequences: false)
        for problem in catalogProblems(Self.invalidCatalog) {
            guard let line = problem.line, lines.indices.contains(line - 1) else {
                Issue.record("no usable line: \(problem)")
                continue
            }
            // The last component of the path, without an index, is the key written on that line
            // (or, for a missing key, the line starts the object that lacks it).
            let key = problem.path.split(separator: ".").last.map { String($0.prefix { $0 != "[" }) } ?? ""
            let text = lines[line - 1]
            #expect(text.contains(key + ":") || problem.message == "is required", "line \(line) is \"\(text)\" for \(problem)")
        }
    }

    /// A valid catalog that each case below breaks by adding one section.
    static let base = """
        products:
          - id: invoices
            name: Invoices API
            upstream: http://127.0.0.1:9000
            endpoints:
              - { identifier: create-invoice, name: Create invoice, method: POST, path: /invoice }
              - { identifier: get-invoice, name: Get invoice, method: GET, path: "/invoice/{id}" }
        meters:
          - { id: calls, name: Calls, source: api_calls, aggregation: count }

        """
    static let baseLines = 10

    static let singleMistakes: [(yaml: String, line: Int, path: String, message: String)] = [
        // Product mistakes (in a second product).
        ("products2:\n", 1, "products2", "unknown key"),
        ("other: 1\n", 1, "other", "unknown key"),
        // Meters.
        ("  - { id: m, name: M, source: api_calls, aggregation: sum }\n", 1, "meters[1].property", "is required for the sum aggregation"),
        ("  - { id: m, name: M, source: calls, aggregation: count }\n", 1, "meters[1].source", "api_calls or event:<name>"),
        ("  - { id: m, name: M, source: \"event:\", aggregation: count }\n", 1, "meters[1].source", "api_calls or event:<name>"),
        ("  - { id: m, name: M, source: api_calls, aggregation: average }\n", 1, "meters[1].aggregation", "not \"average\""),
        ("  - { id: m, name: M, source: api_calls, aggregation: count, filter: { status: \"2xxx\" } }\n", 1,
         "meters[1].filter.status", "2xx, 404, <500 or >=400"),
        ("  - { id: m, name: M, source: api_calls, aggregation: count, filter: { method: FETCH } }\n", 1,
         "meters[1].filter.method", "must be one of GET"),
        ("  - { id: m, name: M, source: api_calls, aggregation: count, filter: { endpoint: nope } }\n", 1,
         "meters[1].filter.endpoint", "unknown endpoint \"nope\""),
        ("  - { id: m, name: M, source: api_calls, aggregation: count, filter: { endpoit: get-invoice } }\n", 1,
         "meters[1].filter.endpoit", "unknown key"),
        ("  - { id: calls, name: Again, source: api_calls, aggregation: count }\n", 1, "meters[1].id", "duplicate meter id \"calls\""),
        ("  - { id: \"bad id\", name: M, source: api_calls, aggregation: count }\n", 1, "meters[1].id", "letters, digits"),
        ("  - { id: m, name: \"  \", source: api_calls, aggregation: count }\n", 1, "meters[1].name", "must not be empty"),
        ("  - { id: m, name: 5, source: api_calls, aggregation: count }\n", 1, "meters[1].name", "must be a string, not a number"),
    ]

    @Test("one mistake in a meter or at the top level gives one problem, on its line", arguments: singleMistakes)
    func singleMeterMistake(yaml: String, line: Int, path: String, message: String) {
        let problems = catalogProblems(Self.base + yaml)
        let expected = ExpectedProblem(Self.baseLines + line - 1, path, message)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.contains(where: expected.matches), "expected \(expected), got \(problems)")
    }

    static let planMistakes: [(prices: String, line: Int, path: String, message: String)] = [
        ("  - { kind: flat, amount: \"-1\" }\n", 1, "plans[0].prices[0].amount", "must not be negative"),
        ("  - { kind: flat, amount: 1e3 }\n", 1, "plans[0].prices[0].amount", "not \"1e3\""),
        ("  - { kind: flat, amount: .5 }\n", 1, "plans[0].prices[0].amount", "not \".5\""),
        ("  - { kind: flat, amount: true }\n", 1, "plans[0].prices[0].amount", "must be a decimal string"),
        ("  - { kind: flat }\n", 1, "plans[0].prices[0].amount", "is required"),
        ("  - { kind: setup, amount: \"10\", unit: \"1\" }\n", 1, "plans[0].prices[0].unit", "unknown key"),
        ("  - { kind: prepaid, quota: 0, window: day }\n", 1, "plans[0].prices[0].quota", "between 1 and"),
        ("  - { kind: prepaid, quota: \"10\", window: day }\n", 1, "plans[0].prices[0].quota", "whole number"),
        ("  - { kind: prepaid, quota: 1.5, window: day }\n", 1, "plans[0].prices[0].quota", "whole number"),
        ("  - { kind: prepaid, quota: 10, window: week }\n", 1, "plans[0].prices[0].window", "not \"week\""),
        ("  - { kind: prepaid, endpoint: get-invoice, quota: 10 }\n", 1, "plans[0].prices[0].window", "is required"),
        ("  - { kind: usage, meter: calls, model: per_unit }\n", 1, "plans[0].prices[0].unit", "is required"),
        ("  - { kind: usage, meter: calls, model: tiered, unit: \"1\" }\n", 1, "plans[0].prices[0].model", "not \"tiered\""),
        ("  - { kind: usage, meter: calls, model: volume, tiers: [] }\n", 1, "plans[0].prices[0].tiers", "at least one tier"),
        ("  - { kind: usage, meter: calls, model: package, package_size: 0, amount: \"1\" }\n", 1,
         "plans[0].prices[0].package_size", "between 1 and"),
        ("  - { kind: usage, meter: calls, model: package, package_size: 10 }\n", 1, "plans[0].prices[0].amount", "is required"),
        ("  - kind: usage\n    meter: calls\n    model: volume\n    tiers:\n      - { up_to: 100, unit: \"1\" }\n"
            + "      - { up_to: 50, unit: \"1\" }\n      - { up_to: null, unit: \"1\" }\n",
         6, "plans[0].prices[0].tiers[1].up_to", "greater than the previous"),
        ("  - kind: usage\n    meter: calls\n    model: graduated\n    tiers:\n      - { up_to: null, unit: \"1\" }\n"
            + "      - { up_to: null, unit: \"1\" }\n",
         5, "plans[0].prices[0].tiers[0].up_to", "only the last tier may be open"),
        ("  - kind: usage\n    meter: calls\n    model: graduated\n    tiers:\n      - { unit: \"1\" }\n",
         5, "plans[0].prices[0].tiers[0].up_to", "null for the last, open tier"),
        ("  - kind: usage\n    meter: calls\n    model: graduated\n    tiers:\n      - { up_to: null, unit: \"1\", flat: x }\n",
         5, "plans[0].prices[0].tiers[0].flat", "not \"x\""),
        ("  - { kind: usage, meter: nothing, model: per_unit, unit: \"1\" }\n", 1, "plans[0].prices[0].meter", "unknown meter \"nothing\""),
        ("  - { kind: prepaid, endpoint: nothing, quota: 1, window: day }\n", 1, "plans[0].prices[0].endpoint",
         "unknown endpoint \"nothing\" of product \"invoices\""),
        ("  - \"flat\"\n", 1, "plans[0].prices[0]", "must be an object, not a string"),
    ]

    @Test("one mistake in a price gives one problem, on its line", arguments: planMistakes)
    func singlePriceMistake(prices: String, line: Int, path: String, message: String) {
        let text = Self.base + """
            plans:
              - id: p
                product: invoices
                name: P
                currency: EUR
                period: month
                prices:

            """ + prices.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n") + "\n"
        let problems = catalogProblems(text)
        let expected = ExpectedProblem(Self.baseLines + 7 + line - 1, path, message)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.contains(where: expected.matches), "expected \(expected), got \(problems)")
    }

    static let productMistakes: [(product: String, line: Int, path: String, message: String)] = [
        ("  - { id: Invoices, name: X, upstream: \"http://h\" }\n", 1, "products[1].id", "must be a slug"),
        ("  - { id: _portal, name: X, upstream: \"http://h\" }\n", 1, "products[1].id", "must be a slug"),
        ("  - { id: x, name: X, upstream: \"http://h?q=1\" }\n", 1, "products[1].upstream", "without query"),
        ("  - { id: x, name: X, upstream: \"127.0.0.1:9000\" }\n", 1, "products[1].upstream", "absolute http://"),
        ("  - { id: x, name: X, upstream: \"http://h\", upstream_ca: /etc/ca.pem }\n", 1, "products[1].upstream_ca", "https:// upstreams only"),
        ("  - { id: x, name: X, upstream: \"https://h\", upstream_ca: \"\" }\n", 1, "products[1].upstream_ca", "must not be empty"),
        ("  - { id: x, name: X, upstream: \"http://h\", unlisted_endpoints: block }\n", 1,
         "products[1].unlisted_endpoints", "must be one of allow, deny"),
        ("  - { id: x, name: X, upstream: \"http://h\", upstream_header: { name: X-Secret } }\n", 1,
         "products[1].upstream_header.value", "is required"),
        ("  - { id: x, name: X, upstream: \"http://h\", upstream_header: { name: \"X Secret\", value: v } }\n", 1,
         "products[1].upstream_header.name", "valid header name"),
        ("  - { id: x, name: X, upstream: \"http://h\", webhook: { url: \"ftp://h/x\", secret: s } }\n", 1,
         "products[1].webhook.url", "http:// or https://"),
        ("  - { id: x, name: X, upstream: \"http://h\", webhook: { url: \"https://h/x\" } }\n", 1,
         "products[1].webhook.secret", "is required"),
        ("  - id: x\n    name: X\n    upstream: \"http://h\"\n    endpoints:\n"
            + "      - { identifier: a, name: A, method: FETCH, path: /a }\n", 5, "products[1].endpoints[0].method", "must be one of"),
        ("  - id: x\n    name: X\n    upstream: \"http://h\"\n    endpoints:\n"
            + "      - { identifier: a, name: A, method: GET, path: a }\n", 5, "products[1].endpoints[0].path", "must start with '/'"),
        ("  - id: x\n    name: X\n    upstream: \"http://h\"\n    endpoints:\n"
            + "      - { identifier: a, name: A, method: GET, path: /a }\n      - { identifier: a, name: B, method: GET, path: /b }\n",
         6, "products[1].endpoints[1].identifier", "duplicate endpoint identifier \"a\""),
        ("  - id: x\n    name: X\n    upstream: \"http://h\"\n    endpoints:\n"
            + "      - { identifier: a, name: A, method: GET, path: /a, verb: GET }\n", 5, "products[1].endpoints[0].verb", "unknown key"),
        ("  - id: x\n    name: X\n    endpoints: []\n", 1, "products[1].upstream", "is required"),
    ]

    @Test("one mistake in a product gives one problem, on its line", arguments: productMistakes)
    func singleProductMistake(product: String, line: Int, path: String, message: String) {
        // Insert the product after the base's products (line 8 of the file).
        var lines = Self.base.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.insert(contentsOf: product.split(separator: "\n").map(String.init), at: 7)
        let problems = catalogProblems(lines.joined(separator: "\n"))
        let expected = ExpectedProblem(7 + line, path, message)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.contains(where: expected.matches), "expected \(expected), got \(problems)")
    }

    @Test("a plan for an unknown product is reported on the plan's product line")
    func unknownProduct() {
        let text = Self.base + """
            plans:
              - id: p
                product: nothing
                name: P
                currency: EUR
                period: month
                prices: []

            """
        let problems = catalogProblems(text)
        #expect(problems == [DocumentProblem(path: "plans[0].product", line: Self.baseLines + 2, message: "unknown product \"nothing\"")])
    }

    @Test("a YAML syntax error is one problem with its line", arguments: [
        ("products: []\nmeters: x: y\n", 2),
        ("products:\n  - id: a\n    name: \"unterminated\n", 4),
        ("products:\n  - id: a\n  name: b\n", 3),
        ("products: [a, b\n", 2),
    ])
    func yamlSyntaxError(yaml: String, line: Int) {
        let problems = catalogProblems(yaml)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.line == line, "\(problems)")
        #expect(problems.first?.message.hasPrefix("not valid YAML") == true, "\(problems)")
    }

    @Test("duplicate YAML keys are refused with the first one's line")
    func duplicateYAMLKeys() {
        let problems = catalogProblems("products: []\nmeters: []\nproducts: []\n")
        #expect(problems.count == 1)
        #expect(problems.first?.line == 1, "\(problems)")
        #expect(problems.first?.message == "duplicate keys: products")
    }

    @Test("a document that is not an object is refused")
    func notAnObject() {
        #expect(catalogProblems("- a\n- b\n") == [DocumentProblem(path: "", line: 1, message: "must be an object, not a list")])
        #expect(catalogProblems("products: 3\n") == [DocumentProblem(path: "products", line: 1, message: "must be a list, not a number")])
    }

    @Test("an empty file is an empty catalog")
    func empty() throws {
        #expect(try Catalog.parse(yaml: "") == Catalog())
        #expect(try Catalog.parse(yaml: "# nothing yet\n") == Catalog())
        #expect(try Catalog.parse(yaml: "products: []\nmeters: []\nplans: []\n") == Catalog())
    }

    @Test("a catalog with every kind of price parses")
    func everyPriceKind() throws {
        let catalog = try Catalog.parse(yaml: Self.base + """
            plans:
              - id: all
                product: invoices
                name: All
                currency: JPY
                period: year
                prices:
                  - { kind: setup, amount: "100" }
                  - { kind: prepaid, quota: 5, window: billing_period, amount: "3.50" }
                  - { kind: usage, meter: calls, model: per_unit, unit: "0.25" }
                  - { kind: usage, meter: calls, model: volume, tiers: [ { up_to: 10, unit: "1" }, { up_to: ~, unit: "0.5" } ] }
                  - { kind: usage, meter: calls, model: package, package_size: 100, amount: "2", free_units: 50 }
                  - { kind: usage, meter: calls, model: package, package_size: 7, amount: 2.5 }

            """)
        let plan = try #require(catalog.plans.first)
        let quarter = try #require(Amount("0.25"))
        let half = try #require(Amount("0.5"))
        let twoAndAHalf = try #require(Amount("2.5"))
        #expect(plan.currency == "JPY")
        #expect(plan.period == .year)
        #expect(plan.prices == [
            .setup(amount: Amount(100)),
            .prepaid(PrepaidQuota(endpoint: nil, quota: 5, window: .billingPeriod, amount: Amount("3.5"))),
            .usage(UsagePrice(meter: "calls", model: .perUnit(unit: quarter))),
            .usage(UsagePrice(meter: "calls", model: .volume(tiers: [
                Tier(upTo: Amount(10), unit: Amount(1)), Tier(upTo: nil, unit: half),
            ]))),
            .usage(UsagePrice(meter: "calls", model: .package(size: 100, amount: Amount(2), freeUnits: 50))),
            .usage(UsagePrice(meter: "calls", model: .package(size: 7, amount: twoAndAHalf, freeUnits: 0))),
        ])
        #expect(plan.prepaidQuotas.map(\.window) == [.billingPeriod])
        guard case .prepaid(let quota) = plan.prices[1] else { return }
        #expect(quota.amount?.description == "3.50")
    }

    @Test("method names are upper-cased and meters may count named events")
    func normalizedValues() throws {
        let catalog = try Catalog.parse(yaml: """
            products:
              - id: api
                name: API
                upstream: "http://[::1]:8080/base/"
                unlisted_endpoints: deny
                endpoints:
                  - { identifier: a, name: A, description: The A, method: get, path: /a, archived: true }
            meters:
              - id: signups
                name: Signups
                source: "event:user.signup"
                filter: { method: post, properties: { metadata.plan: pro, metadata.seats: 3, metadata.trial: false } }
                aggregation: unique_count
                property: user_id
            """)
        let product = try #require(catalog.products.first)
        #expect(product.unlistedEndpoints == .deny)
        #expect(product.upstream.host == "::1")
        #expect(product.upstream.port == 8080)
        #expect(product.upstream.basePath == "/base")
        #expect(product.endpoints.first?.method == "GET")
        #expect(product.endpoints.first?.description == "The A")
        #expect(product.endpoints.first?.archived == true)
        let meter = try #require(catalog.meters.first)
        #expect(meter.source == .event("user.signup"))
        #expect(meter.filter.method == "POST")
        #expect(meter.filter.properties == ["metadata.plan": "pro", "metadata.seats": "3", "metadata.trial": "false"])
        #expect(meter.aggregation == .uniqueCount)
        #expect(meter.property == "user_id")
    }
}
