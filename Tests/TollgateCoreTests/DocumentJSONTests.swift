import Testing
import TollgateCore

@Suite("DocumentNode JSON")
struct DocumentJSONTests {
    @Test("numbers keep their exact text", arguments: [
        "0", "-0", "0.1", "1e3", "1E+3", "2.5e-10", "-1.50", "29.00", "123456789012345678901234567890",
        "0.30000000000000004", "10",
    ])
    func numberText(text: String) throws {
        let node = try json(text)
        guard case .number(let digits) = node.value else {
            Issue.record("\(text) was read as \(node.kindName)")
            return
        }
        #expect(digits == text)
        #expect(node.scalarText == text)
        #expect(node.jsonText() == text)
        let inList = try json("[\(text)]")
        #expect(inList.jsonText() == "[\(text)]")
    }

    @Test("strings are decoded", arguments: [
        (#""plain""#, "plain"),
        (#""""#, ""),
        (#""a\"b""#, "a\"b"),
        (#""back\\slash""#, "back\\slash"),
        (#""\/""#, "/"),
        (#""\b\f\n\r\t""#, "\u{8}\u{c}\n\r\t"),
        (#""\u0041\u00e9""#, "Aé"),
        (#""\ud83d\ude00""#, "😀"),
        ("\"caf\u{e9}\"", "café"),
    ])
    func strings(text: String, expected: String) throws {
        let node = try json(text)
        guard case .string(let string) = node.value else {
            Issue.record("\(text) was read as \(node.kindName)")
            return
        }
        #expect(string == expected)
    }

    @Test("literals and containers")
    func kinds() throws {
        let node = try json(#"{"t":true,"f":false,"n":null,"l":[1,"x"],"o":{}}"#)
        #expect(node["t"]?.scalarText == "true")
        #expect(node["f"]?.scalarText == "false")
        #expect(node["n"]?.kindName == "null")
        #expect(node["n"]?.scalarText == nil)
        #expect(node["l"]?.kindName == "a list")
        #expect(node["o"]?.entries?.isEmpty == true)
        #expect(node["missing"] == nil)
        #expect(node.entries?.map(\.key) == ["t", "f", "n", "l", "o"])
        #expect(node.line == nil)
    }

    @Test("malformed JSON is refused with a reason", arguments: [
        "", " ", "{", "}", "[", "[1,]", "[,1]", #"{"a":1,}"#, #"{"a"}"#, #"{"a" 1}"#, "{a:1}", "{'a':1}", "[1 2]",
        "1.", ".5", "+1", "-", "1e", "1e+", "--1", "0x10", "01", "-01", "00", "tru", "nul", "True", "NaN", "Infinity",
        #""\x""#, #""unterminated"#, "\"tab\there\"", "\"line\nbreak\"", #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#,
        #""\u00zz""#, #""\u+041""#, #""\u-041""#, #""\u12""#, "[\"a\"", "{\"a\":", "nulll",
    ])
    func malformed(text: String) throws {
        let problems = try #require(jsonProblems(text))
        #expect(problems.count == 1)
        #expect(problems.first?.path == "")
        #expect(problems.first?.line == nil)
        #expect(problems.first?.message.hasPrefix("malformed JSON: ") == true)
    }

    @Test("invalid UTF-8 in a string is refused")
    func invalidUTF8() {
        #expect(throws: InvalidDocument.self) { try DocumentNode.parseJSON([0x22, 0xFF, 0x22]) }
        #expect(throws: InvalidDocument.self) { try DocumentNode.parseJSON([0x22, 0xC3, 0x22]) }
        #expect(throws: Never.self) { try DocumentNode.parseJSON([0x22, 0xC3, 0xA9, 0x22]) }
    }

    @Test("text after the value is refused", arguments: ["{} x", "1 2", "{}{}", "[]]", "null,", #""a""b""#, "true false"])
    func trailingText(text: String) throws {
        let problems = try #require(jsonProblems(text))
        #expect(problems.first?.message.contains("after the value") == true)
    }

    @Test("duplicate keys are refused, at any depth", arguments: [
        #"{"a":1,"a":2}"#, #"{"a":1,"b":2,"a":1}"#, #"{"x":{"k":true,"k":false}}"#, #"[{"k":1},{"k":2,"k":3}]"#,
    ])
    func duplicateKeys(text: String) throws {
        let problems = try #require(jsonProblems(text))
        #expect(problems.first?.message.contains("duplicate key") == true)
    }

    @Test("the same key in different objects is fine")
    func sameKeyInSiblings() throws {
        let node = try json(#"[{"k":1},{"k":2}]"#)
        #expect(node.jsonText() == #"[{"k":1},{"k":2}]"#)
    }

    @Test("nesting is limited to 64 levels")
    func depth() throws {
        let deep = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try json(deep).jsonText() == deep)
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(jsonProblems(tooDeep)?.first?.message.contains("nested too deeply") == true)
        let deepObjects = String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(jsonProblems(deepObjects) != nil)
    }

    @Test("compact JSON round-trips to the same text", arguments: [
        "{}", "[]", "null", "true", #""text""#, "-1.5e-3",
        #"{"b":1,"a":[true,false,null,"x\"y\\z\n",{"k":"0.10"}],"c":-1.5e-3}"#,
        #"{"control":"\u0001\u001f","tab":"\t","unicode":"é😀","slash":"/"}"#,
        #"[[[]],{"":""},0]"#,
    ])
    func roundTrip(text: String) throws {
        #expect(try json(text).jsonText() == text)
    }

    @Test("whitespace is dropped and key order kept")
    func whitespace() throws {
        let node = try json(" \n\t{ \"z\" : [ 1 , 2 ] ,\r\n \"a\" : { } }\r\n")
        #expect(node.jsonText() == #"{"z":[1,2],"a":{}}"#)
    }

    @Test("writing then reading gives the same document")
    func writeThenRead() throws {
        let original = DocumentNode.object([
            ("quote\"and\\", .text("line\nbreak\u{7}")),
            ("amount", .text("0.10")),
            ("count", .integer(-42)),
            ("nothing", .text(nil)),
            ("list", DocumentNode(.list([DocumentNode(.bool(true)), DocumentNode(.number("1e3"))]))),
        ])
        let text = original.jsonText()
        #expect(text == #"{"quote\"and\\":"line\nbreak\u0007","amount":"0.10","count":-42,"nothing":null,"list":[true,1e3]}"#)
        let reread = try json(text)
        #expect(reread.jsonText() == text)
        #expect(reread["quote\"and\\"]?.scalarText == "line\nbreak\u{7}")
        #expect(reread["count"]?.scalarText == "-42")
    }

    @Test("merging a patch replaces and adds top-level keys only")
    func merging() throws {
        let base = try json(#"{"a":1,"b":{"x":1,"y":2},"c":3}"#)
        let patch = try json(#"{"b":{"y":20},"d":4,"a":null}"#)
        #expect(base.merging(patch).jsonText() == #"{"a":null,"b":{"y":20},"c":3,"d":4}"#)
        #expect(base.merging(try json("{}")).jsonText() == base.jsonText())
        #expect(base.jsonText() == #"{"a":1,"b":{"x":1,"y":2},"c":3}"#)
    }

    @Test("merging with something that is not an object gives the patch")
    func mergingNonObjects() throws {
        #expect(try json(#"{"a":1}"#).merging(json("[1]")).jsonText() == "[1]")
        #expect(try json("[1]").merging(json(#"{"a":1}"#)).jsonText() == #"{"a":1}"#)
    }

    @Test("merging keeps the line of the original document")
    func mergingKeepsLine() throws {
        let base = try DocumentNode.parseYAML("\n\nname: a\n")
        let merged = base.merging(try json(#"{"name":"b","extra":true}"#))
        #expect(merged.line == base.line)
        #expect(merged.line == 3)
        #expect(merged["name"]?.scalarText == "b")
    }
}
