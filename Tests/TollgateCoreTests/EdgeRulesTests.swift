import Foundation
import Testing
import TollgateCore

/// The matching and address rules that close the gateway's free paths (docs/security.md).
@Suite("Edge rules")
struct EdgeRulesTests {
    @Test("literal segments match regardless of case by default", arguments: [
        ("/invoice", "/INVOICE", true),
        ("/invoice", "/Invoice/", true),
        ("/invoice/{id}", "/INVOICE/ABC", true),
        ("/invoice/{id}", "/INVOICES/1", false),
        ("/café/{id}", "/CAFÉ/1", true),
        ("/straße", "/STRASSE", false),
        ("/v1/invoice", "/V1/iNvOiCe", true),
        ("/invoice", "/invoicf", false),
    ])
    func caseInsensitive(template: String, path: String, expected: Bool) throws {
        let parsed = try #require(PathTemplate(template))
        #expect(parsed.matches(path[...]) == expected)
        if path != template { #expect(!parsed.matches(path[...], caseSensitive: true) || path.lowercased() == template) }
    }

    @Test("; parameters are removed from every segment", arguments: [
        ("/invoice;x=1", "/invoice"),
        ("/invoice/7;jsessionid=abc/lines", "/invoice/7/lines"),
        ("/a;b;c/d;", "/a/d"),
        ("/;x/y", "//y"),
        ("/plain/path", "/plain/path"),
        ("/caf\u{E9};v=1", "/caf\u{E9}"),
    ])
    func withoutParameters(path: String, expected: String) {
        #expect(RequestPath.withoutParameters(path[...]) == expected[...])
    }

    @Test func meteredPathsAreShortAndWithoutParameters() {
        #expect(UsageEvent.meteredPath("/shop/invoice;x=1") == "/shop/invoice")
        let long = "/" + String(repeating: "é", count: 600)
        let metered = UsageEvent.meteredPath(long)
        #expect(metered.utf8.count <= UsageEvent.maxStoredPath)
        #expect(metered.utf8.count >= UsageEvent.maxStoredPath - 1)
        #expect(long.hasPrefix(metered))
        #expect(UsageEvent.meteredPath("/short") == "/short")
    }

    static let product = Product(
        id: "shop", name: "Shop", upstream: UpstreamURL("http://127.0.0.1:9")!,
        endpoints: [
            Endpoint(identifier: "get-invoice", name: "Get", method: "GET", path: PathTemplate("/invoice/{id}")!),
            Endpoint(identifier: "head-report", name: "Head report", method: "HEAD", path: PathTemplate("/report")!),
            Endpoint(identifier: "get-report", name: "Get report", method: "GET", path: PathTemplate("/report")!),
            Endpoint(identifier: "create-invoice", name: "Create", method: "POST", path: PathTemplate("/invoice")!),
        ])

    @Test func headIsTheGetEndpointUnlessItHasItsOwn() {
        let table = EndpointTable(Self.product)
        #expect(table.endpoint(method: "HEAD", path: "/invoice/7")?.identifier == "get-invoice")
        #expect(table.endpoint(method: "HEAD", path: "/report")?.identifier == "head-report")
        #expect(table.endpoint(method: "HEAD", path: "/invoice") == nil)
        #expect(table.endpoint(method: "OPTIONS", path: "/invoice/7") == nil)
        #expect(table.endpoint(method: "POST", path: "/INVOICE")?.identifier == "create-invoice")
        // The identifier alone (the gateway's and the collector's question) is the same endpoint's.
        #expect(table.identifier(method: "HEAD", path: "/invoice/7") == "get-invoice")
        #expect(table.identifier(method: "HEAD", path: "/report") == "head-report")
        #expect(table.identifier(method: "OPTIONS", path: "/invoice/7") == nil)
        var exact = Self.product
        exact.caseSensitivePaths = true
        #expect(EndpointTable(exact).endpoint(method: "POST", path: "/INVOICE") == nil)
        #expect(EndpointTable(exact).endpoint(method: "POST", path: "/invoice")?.identifier == "create-invoice")
    }

    @Test func caseSensitivePathsIsReadAndWrittenByTheCatalog() throws {
        let yaml = """
            products:
              - { id: shop, name: Shop, upstream: "http://127.0.0.1:9", case_sensitive_paths: true, endpoints: [] }
              - { id: other, name: Other, upstream: "http://127.0.0.1:9", endpoints: [] }
            """
        let catalog = try Catalog.parse(yaml: yaml)
        #expect(catalog.products.map(\.caseSensitivePaths) == [true, false])
        #expect(catalogProblems(yaml.replacingOccurrences(of: "case_sensitive_paths: true", with: "case_sensitive_paths: 1"))
            .contains { $0.message == "must be true or false" })
    }

    @Test("address ranges", arguments: [
        ("127.0.0.0/8", "127.0.0.1", true),
        ("127.0.0.0/8", "128.0.0.1", false),
        ("10.1.2.3", "10.1.2.3", true),
        ("10.1.2.3", "10.1.2.4", false),
        ("10.0.0.0/9", "10.127.255.255", true),
        ("10.0.0.0/9", "10.128.0.0", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("::1/128", "::1", true),
        ("::1", "::2", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("fe80::/10", "febf::1", true),
        ("127.0.0.0/8", "::ffff:127.0.0.5", true),
        ("::ffff:0:0/96", "::ffff:1.2.3.4", true),
        ("127.0.0.0/8", "not-an-ip", false),
        ("127.0.0.0/8", "127.0.0.1.5", false),
    ])
    func addressRanges(range: String, address: String, expected: Bool) throws {
        let parsed = try #require(AddressRange(range))
        #expect(parsed.contains(address[...]) == expected)
    }

    @Test("invalid ranges are refused", arguments: [
        "", "1.2.3", "1.2.3.4/33", "256.0.0.1", "1.2.3.4/-1", "::1/129", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1",
        "1.2.3.4/", "[::1]", "::1%eth0", ":1", "1:",
    ])
    func invalidRanges(text: String) {
        #expect(AddressRange(text) == nil)
    }

    @Test func quotaGivenBackIsCountedAgain() {
        let limit = AppliedLimit(
            endpoint: "hello", window: .month, quota: 2, span: TimeSpan(start: utc(2026, 11, 1), end: utc(2026, 12, 1)))
        var book = QuotaBook()
        guard case .admitted = book.admit([limit], at: utc(2026, 11, 27)) else { Issue.record("not admitted"); return }
        guard case .admitted = book.admit([limit], at: utc(2026, 11, 27)) else { Issue.record("not admitted"); return }
        guard case .refused = book.admit([limit], at: utc(2026, 11, 27)) else { Issue.record("not refused"); return }
        book.giveBack([limit])
        #expect(book.states([limit]).first?.used == 1)
        guard case .admitted = book.admit([limit], at: utc(2026, 11, 27)) else { Issue.record("not admitted after a give-back"); return }
        book.giveBack([limit])
        book.giveBack([limit])
        book.giveBack([limit])
        #expect(book.states([limit]).first?.used == 0)
    }
}
