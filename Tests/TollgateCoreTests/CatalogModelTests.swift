import Testing
import TollgateCore

@Suite("Catalog model")
struct CatalogModelTests {
    @Test("upstream URLs", arguments: [
        ("http://127.0.0.1:9000", "127.0.0.1", 9000, "", "http://127.0.0.1:9000", "127.0.0.1:9000"),
        ("http://example.com", "example.com", 80, "", "http://example.com:80", "example.com"),
        ("http://example.com:80/", "example.com", 80, "", "http://example.com:80", "example.com"),
        ("http://example.com/api/v1/", "example.com", 80, "/api/v1", "http://example.com:80/api/v1", "example.com"),
        ("HTTP://example.com:8080/x", "example.com", 8080, "/x", "http://example.com:8080/x", "example.com:8080"),
        ("http://[::1]:8080/base", "::1", 8080, "/base", "http://[::1]:8080/base", "[::1]:8080"),
        ("http://[::1]", "::1", 80, "", "http://[::1]:80", "[::1]"),
        ("http://h/a%20b", "h", 80, "/a%20b", "http://h:80/a%20b", "h"),
        ("https://api.example.com", "api.example.com", 443, "", "https://api.example.com:443", "api.example.com"),
        ("HTTPS://api.example.com:8443/v1", "api.example.com", 8443, "/v1", "https://api.example.com:8443/v1", "api.example.com:8443"),
    ])
    func upstream(text: String, host: String, port: Int, basePath: String, description: String, hostHeader: String) throws {
        let url = try #require(UpstreamURL(text))
        #expect(url.host == host)
        #expect(url.port == port)
        #expect(url.basePath == basePath)
        #expect(url.description == description)
        #expect(url.hostHeader == hostHeader)
        #expect(UpstreamURL(url.description) == url)
        #expect(url.isTLS == text.lowercased().hasPrefix("https"))
    }

    @Test("upstreams that are not http or https origins are refused", arguments: [
        "ftp://h", "https://", "https://user@h", "127.0.0.1:9000", "http://", "http:///path", "http://h?q=1", "http://h#f",
        "http://user@h", "http://user:pass@h", "", "not a url", "//h/x", "/path",
    ])
    func invalidUpstream(text: String) {
        #expect(UpstreamURL(text) == nil)
    }

    @Test("meter sources", arguments: [
        ("api_calls", MeterSource.apiCalls as MeterSource?),
        ("event:signup", .event("signup")),
        ("event:user.created", .event("user.created")),
        ("event:a:b", .event("a:b")),
        ("event:", nil),
        ("events:x", nil),
        ("API_CALLS", nil),
        ("", nil),
    ])
    func meterSource(text: String, expected: MeterSource?) {
        #expect(MeterSource(text) == expected)
        if let expected {
            #expect(expected.description == text)
        }
    }

    @Test("product ids are slugs", arguments: [
        ("invoices", true), ("invoices-v2", true), ("a", true), ("0", true), (String(repeating: "a", count: 64), true),
        (String(repeating: "a", count: 65), false), ("", false), ("-invoices", false), ("Invoices", false), ("in_voices", false),
        ("in.voices", false), ("_portal", false), ("inv oices", false), ("é", false),
    ])
    func productID(id: String, valid: Bool) {
        #expect(Identifier.isValidProductID(id) == valid)
    }

    @Test("other identifiers", arguments: [
        ("get-invoice", true), ("Get_Invoice.v2", true), ("a", true), (String(repeating: "A", count: 64), true),
        (String(repeating: "A", count: 65), false), ("", false), ("-a", false), (".a", false), ("_a", true), ("a b", false),
        ("a/b", false), ("a:b", false), ("é", false),
    ])
    func identifier(id: String, valid: Bool) {
        #expect(Identifier.isValid(id) == valid)
    }

    @Test("meter filters", arguments: [
        (MeterFilter(), "get-invoice" as String?, "GET", 200, true),
        (MeterFilter(), nil, "POST", 500, true),
        (MeterFilter(endpoint: "get-invoice"), "get-invoice", "GET", 200, true),
        (MeterFilter(endpoint: "get-invoice"), "create-invoice", "GET", 200, false),
        (MeterFilter(endpoint: "get-invoice"), nil, "GET", 200, false),
        (MeterFilter(method: "POST"), nil, "POST", 201, true),
        (MeterFilter(method: "POST"), nil, "GET", 201, false),
        (MeterFilter(status: StatusFilter("<500")), nil, "GET", 499, true),
        (MeterFilter(status: StatusFilter("<500")), nil, "GET", 500, false),
        (MeterFilter(endpoint: "a", method: "GET", status: StatusFilter("2xx")), "a", "GET", 204, true),
        (MeterFilter(endpoint: "a", method: "GET", status: StatusFilter("2xx")), "a", "GET", 404, false),
        (MeterFilter(endpoint: "a", method: "GET", status: StatusFilter("2xx")), "a", "PUT", 204, false),
    ])
    func meterFilter(filter: MeterFilter, endpoint: String?, method: String, status: Int, expected: Bool) {
        #expect(filter.matches(endpoint: endpoint, method: method, status: status) == expected)
    }

    @Test("an empty filter is empty")
    func filterIsEmpty() {
        #expect(MeterFilter().isEmpty)
        #expect(!MeterFilter(endpoint: "a").isEmpty)
        #expect(!MeterFilter(method: "GET").isEmpty)
        #expect(!MeterFilter(status: StatusFilter("2xx")).isEmpty)
        #expect(!MeterFilter(properties: ["a": "b"]).isEmpty)
    }

    @Test("a plan lists its prepaid quotas in order")
    func prepaidQuotas() {
        let first = PrepaidQuota(endpoint: "a", quota: 10, window: .day)
        let second = PrepaidQuota(quota: 100, window: .month, amount: Amount(5))
        let plan = Plan(
            id: "p", product: "x", name: "P", currency: "EUR", period: .month,
            prices: [.flat(amount: Amount(1)), .prepaid(first), .usage(UsagePrice(meter: "m", model: .perUnit(unit: Amount(1)))), .prepaid(second)])
        #expect(plan.prepaidQuotas == [first, second])
        #expect(plan.prices.map(\.kind) == ["flat", "prepaid", "usage", "prepaid"])
    }

    @Test("pricing model names", arguments: [
        (PricingModel.perUnit(unit: Amount(1)), "per_unit"),
        (.graduated(tiers: []), "graduated"),
        (.volume(tiers: []), "volume"),
        (.package(size: 1, amount: Amount(1), freeUnits: 0), "package"),
    ])
    func modelNames(model: PricingModel, name: String) {
        #expect(model.name == name)
    }

    @Test("references: unknown products, endpoints and meters")
    func references() throws {
        let product = Product(
            id: "invoices", name: "I", upstream: try #require(UpstreamURL("http://h")),
            endpoints: [Endpoint(identifier: "get-invoice", name: "G", method: "GET", path: try #require(PathTemplate("/i/{id}")))])
        let meter = Meter(id: "reads", name: "R", source: .apiCalls, aggregation: .count)
        let references = CatalogReferences(products: [product], meters: [meter])

        let good = Plan(
            id: "p", product: "invoices", name: "P", currency: "EUR", period: .month,
            prices: [.prepaid(PrepaidQuota(endpoint: "get-invoice", quota: 1, window: .day)), .usage(UsagePrice(meter: "reads", model: .perUnit(unit: Amount(1))))])
        #expect(references.problems(in: good).isEmpty)

        var bad = good
        bad.prices = [
            .flat(amount: Amount(1)),
            .prepaid(PrepaidQuota(endpoint: "nope", quota: 1, window: .day)),
            .prepaid(PrepaidQuota(quota: 1, window: .day)),
            .usage(UsagePrice(meter: "nothing", model: .perUnit(unit: Amount(1)))),
        ]
        #expect(references.problems(in: bad).map(\.path) == ["prices[1].endpoint", "prices[3].meter"])

        var orphan = good
        orphan.product = "other"
        #expect(references.problems(in: orphan).map(\.path) == ["product"])

        #expect(references.problems(in: meter).isEmpty)
        let filtered = Meter(id: "m", name: "M", source: .apiCalls, filter: MeterFilter(endpoint: "get-invoice"), aggregation: .count)
        #expect(references.problems(in: filtered).isEmpty)
        let dangling = Meter(id: "m", name: "M", source: .apiCalls, filter: MeterFilter(endpoint: "gone"), aggregation: .count)
        #expect(references.problems(in: dangling).map(\.path) == ["filter.endpoint"])
    }
}
