import Testing
import TollgateCore

@Suite("PathTemplate")
struct PathTemplateTests {
    @Test("matches normalized paths", arguments: [
        // Literals.
        ("/invoice", "/invoice", true),
        ("/invoice", "/invoices", false),
        ("/invoice", "/Invoice", false),
        ("/invoice", "/", false),
        ("/invoice", "/invoice/1", false),
        ("/v1/invoice", "/v1/invoice", true),
        ("/v1/invoice", "/v2/invoice", false),
        ("/v1/invoice", "/v1", false),
        // The root.
        ("/", "/", true),
        ("/", "/a", false),
        // A trailing slash is tolerated on either side.
        ("/invoice", "/invoice/", true),
        ("/invoice/", "/invoice", true),
        ("/invoice/", "/invoice/", true),
        ("/invoice/{id}", "/invoice/42/", true),
        // A placeholder matches exactly one non-empty segment.
        ("/invoice/{id}", "/invoice/42", true),
        ("/invoice/{id}", "/invoice/latest", true),
        ("/invoice/{id}", "/invoice/a%2Fb", true),
        ("/invoice/{id}", "/invoice", false),
        ("/invoice/{id}", "/invoice/", false),
        ("/invoice/{id}", "/invoice/42/lines", false),
        ("/invoice/{id}", "/invoices/42", false),
        ("/{id}", "/", false),
        ("/{id}", "/x", true),
        ("/{a}/{b}", "/x/y", true),
        ("/{a}/{b}", "/x", false),
        ("/{a}/{b}", "/x/y/z", false),
        ("/invoice/{id}/lines/{line}", "/invoice/1/lines/2", true),
        ("/invoice/{id}/lines/{line}", "/invoice/1/items/2", false),
        ("/invoice/{id}/lines/{line}", "/invoice/1/lines", false),
        ("/invoice/{id}/lines/{line}", "/invoice/1/lines/2/3", false),
        ("/{org}/invoice", "/acme/invoice", true),
        ("/{org}/invoice", "/acme/invoices", false),
        // An empty segment in the middle matches neither a placeholder nor a literal.
        ("/{a}/{b}", "/x//y", false),
        ("/x/{b}", "/x//", false),
        ("/x//y", "/x//y", true),
        // A slash followed by a combining mark still separates, as upstream servers split by bytes.
        ("/items/{id}", "/items/\u{301}5", true),
        ("/items", "/items/\u{301}5", false),
        ("/café/{id}", "/café/1/", true),
        ("/café/{id}", "/cafe\u{301}/1", true),
        ("/café/{id}", "/café//", false),
    ])
    func matches(template: String, path: String, expected: Bool) throws {
        let parsed = try #require(PathTemplate(template))
        #expect(parsed.matches(path[...], caseSensitive: true) == expected)
    }

    @Test("literal segments ignore case unless the product says otherwise, for any script", arguments: [
        ("/Invoice/{id}", "/INVOICE/7", true, false),
        ("/items", "/ITEMS/", true, false),
        ("/items", "/itemz", false, false),
        ("/café/{id}", "/CAFÉ/1", true, false),
        ("/café/{id}", "/CAFE\u{301}/1", true, false),
        ("/café/{id}", "/CAFE/1", false, false),
        ("/Invoice/{id}", "/invoice/7", false, true),
        ("/café/{id}", "/CAFÉ/1", false, true),
    ])
    func caseOfLiterals(template: String, path: String, ignoringCase: Bool, caseSensitive: Bool) throws {
        let parsed = try #require(PathTemplate(template))
        #expect(parsed.matches(path[...], caseSensitive: caseSensitive) == ignoringCase)
    }

    @Test("valid templates keep their text", arguments: [
        "/", "/invoice", "/invoice/", "/invoice/{id}", "/v1/{org}/invoice/{invoice_id}", "/{kebab-id}", "/{x1}",
    ])
    func valid(template: String) throws {
        let parsed = try #require(PathTemplate(template))
        #expect(parsed.description == template)
    }

    @Test("invalid templates are refused", arguments: [
        "", "invoice", "invoice/{id}", "/invoice/{}", "/invoice/{id", "/invoice/id}", "/invoice/{id}x",
        "/invoice/x{id}", "/{a b}", "/{a/b}", "/{{id}}", "/{a.b}", "/}{",
    ])
    func invalid(template: String) {
        #expect(PathTemplate(template) == nil)
    }

    @Test("a literal segment is more specific than a placeholder at the same place", arguments: [
        ("/invoice/latest", "/invoice/{id}", "/invoice/latest"),
        ("/a/{b}/c", "/a/{b}/{c}", "/a/x/c"),
        ("/a/b/{c}", "/a/{b}/c", "/a/b/c"),
        ("/a/b/c", "/a/b/{c}", "/a/b/c"),
        ("/a/{b}", "/{a}/{b}", "/a/b"),
    ])
    func specificity(specific: String, general: String, path: String) throws {
        let specificTemplate = try #require(PathTemplate(specific))
        let generalTemplate = try #require(PathTemplate(general))
        #expect(specificTemplate.matches(path[...]))
        #expect(generalTemplate.matches(path[...]))
        #expect(specificTemplate.specificity > generalTemplate.specificity)
    }

    @Test("routing by best specificity picks the expected template", arguments: [
        ("/invoice/latest", "/invoice/latest"),
        ("/invoice/42", "/invoice/{id}"),
        ("/invoice/42/lines", "/invoice/{id}/lines"),
        ("/invoice/latest/lines", "/invoice/latest/lines"),
        ("/invoice/42/lines/7", "/invoice/{id}/lines/{line}"),
        ("/invoice", "/invoice"),
        ("/other", nil as String?),
    ])
    func routing(path: String, expected: String?) throws {
        let templates = try [
            "/invoice/{id}/lines/{line}", "/invoice/{id}", "/invoice/{id}/lines", "/invoice",
            "/invoice/latest/lines", "/invoice/latest",
        ].map { try #require(PathTemplate($0)) }
        let best = templates.filter { $0.matches(path[...]) }.max { $0.specificity < $1.specificity }
        #expect(best?.description == expected)
    }
}
