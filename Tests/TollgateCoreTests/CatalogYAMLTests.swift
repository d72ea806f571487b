import Foundation
import Testing
import TollgateCore

@Suite("The catalog written as YAML")
struct CatalogYAMLTests {
    @Test("the design example survives a trip through YAML text")
    func roundTrip() throws {
        var catalog = try Catalog.parse(yaml: designExampleCatalog)
        catalog.plans[0].isPublic = true
        let text = catalog.document().yamlText()
        #expect(try Catalog.parse(yaml: text) == catalog)
        #expect(text.contains("public: true"))
        // Amounts stay strings.
        #expect(text.contains("amount: \"29.00\""))
    }

    @Test("public is read, false by default, and must be a boolean")
    func publicKey() throws {
        let catalog = try Catalog.parse(yaml: designExampleCatalog)
        #expect(catalog.plans[0].isPublic == false)
        let withPublic = designExampleCatalog.replacingOccurrences(of: "    name: Starter\n", with: "    name: Starter\n    public: true\n")
        #expect(try Catalog.parse(yaml: withPublic).plans[0].isPublic)
        let wrong = designExampleCatalog.replacingOccurrences(of: "    name: Starter\n", with: "    name: Starter\n    public: maybe\n")
        #expect(throws: InvalidDocument.self) { try Catalog.parse(yaml: wrong) }
    }

    @Test("strings that look like other things are quoted")
    func quoting() throws {
        let node = DocumentNode.object([
            ("a", .text("true")), ("b", .text("1.50")), ("c", .text("line\nbreak \"quoted\"")), ("d", DocumentNode(.list([]))),
            ("on", .text("x")),
        ])
        let back = try DocumentNode.parseYAML(node.yamlText())
        #expect(back["a"]?.value.isString("true") == true)
        #expect(back["b"]?.value.isString("1.50") == true)
        #expect(back["c"]?.value.isString("line\nbreak \"quoted\"") == true)
        #expect(back["on"]?.value.isString("x") == true)
    }
}

extension DocumentNode.Value {
    func isString(_ text: String) -> Bool {
        if case .string(let value) = self { return value == text }
        return false
    }
}
