import Testing
import TollgateCore

@Suite("DocumentNode YAML")
struct DocumentYAMLTests {
    @Test("plain scalars are typed, and keep their exact text", arguments: [
        ("1", "a number", "1"),
        ("-3", "a number", "-3"),
        ("+7", "a number", "+7"),
        ("0.10", "a number", "0.10"),
        ("29.00", "a number", "29.00"),
        ("1e3", "a number", "1e3"),
        (".5", "a string", ".5"),
        ("abc", "a string", "abc"),
        ("\"1\"", "a string", "1"),
        ("'0.10'", "a string", "0.10"),
        ("\"true\"", "a string", "true"),
        ("true", "a boolean", "true"),
        ("False", "a boolean", "false"),
        ("null", "null", nil as String?),
        ("~", "null", nil),
        ("", "null", nil),
        ("http://127.0.0.1:9000", "a string", "http://127.0.0.1:9000"),
        ("<500", "a string", "<500"),
    ])
    func scalars(yaml: String, kind: String, text: String?) throws {
        let root = try DocumentNode.parseYAML("value: \(yaml)\n")
        let value = try #require(root["value"])
        #expect(value.kindName == kind)
        #expect(value.scalarText == text)
    }

    @Test("every node knows its line")
    func lines() throws {
        let root = try DocumentNode.parseYAML("""
            # a comment
            first: 1
            list:
              - a
              - { k: v }

            last:
              nested: true
            """)
        #expect(root.line == 2)
        #expect(root["first"]?.line == 2)
        #expect(root["list"]?.line == 4)
        guard case .list(let items)? = root["list"]?.value else {
            Issue.record("list is not a list")
            return
        }
        #expect(items.map(\.line) == [4, 5])
        #expect(items[1]["k"]?.line == 5)
        #expect(root["last"]?["nested"]?.line == 8)
        #expect(root.entries?.map(\.key) == ["first", "list", "last"])
    }

    @Test("block scalars are strings")
    func blockScalars() throws {
        let root = try DocumentNode.parseYAML("a: |\n  12\nb: >\n  x\n  y\n")
        #expect(root["a"]?.kindName == "a string")
        #expect(root["a"]?.scalarText == "12\n")
        #expect(root["b"]?.scalarText == "x y\n")
    }

    @Test("an empty document is an empty object")
    func empty() throws {
        let root = try DocumentNode.parseYAML("")
        #expect(root.entries?.isEmpty == true)
        #expect(root.jsonText() == "{}")
    }

    @Test("YAML converts to the same JSON a client would send")
    func toJSON() throws {
        let root = try DocumentNode.parseYAML("""
            id: starter
            quota: 1000
            amount: "29.00"
            tiers: [ { up_to: 10, unit: "0" }, { up_to: null, unit: 0.002 } ]
            """)
        #expect(root.jsonText() == #"{"id":"starter","quota":1000,"amount":"29.00","tiers":[{"up_to":10,"unit":"0"},{"up_to":null,"unit":0.002}]}"#)
    }
}

@Suite("DocumentProblem")
struct DocumentProblemTests {
    @Test("description names the line and path when known", arguments: [
        (DocumentProblem(path: "plans[0].currency", line: 12, message: "bad"), "line 12: plans[0].currency: bad"),
        (DocumentProblem(path: "plans[0].currency", line: nil, message: "bad"), "plans[0].currency: bad"),
        (DocumentProblem(path: "", line: 3, message: "not valid YAML"), "line 3: not valid YAML"),
        (DocumentProblem(path: "", line: nil, message: "malformed JSON"), "malformed JSON"),
    ])
    func description(problem: DocumentProblem, expected: String) {
        #expect(problem.description == expected)
    }

    @Test("InvalidDocument lists every problem, one per line")
    func invalidDocument() {
        let error = InvalidDocument([
            DocumentProblem(path: "a", line: 1, message: "x"), DocumentProblem(path: "b", line: 2, message: "y"),
        ])
        #expect(error.description == "line 1: a: x\nline 2: b: y")
    }
}
