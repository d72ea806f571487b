import Testing
import TollgateCore

@Suite("ScannedJSON")
struct ScannedJSONTests {
    @Test("a batch's elements keep their text without insignificant whitespace, and their size as it arrived")
    func elementTexts() throws {
        let elements = ["{\"a\" : 1,  \"b\": \"x y\\\" \\\\\"}", "\"caf\u{e9} \\u00e9\"", "[ 1 ,\t2 ]", "null"]
        let text = "[ " + elements.joined(separator: " ,\n") + " ]"
        let scanned = try ScannedJSON.scan(text.utf8)
        #expect(scanned.kind == .array)
        #expect(scanned.elements.map(\.text) == [#"{"a":1,"b":"x y\" \\"}"#, "\"caf\u{e9} \\u00e9\"", "[1,2]", "null"])
        #expect(scanned.elements.map(\.arrivedSize) == elements.map(\.utf8.count))
        #expect(scanned.elements.map(\.byteCount) == scanned.elements.map(\.text.utf8.count))
        #expect(scanned.text == #"[{"a":1,"b":"x y\" \\"},"café \u00e9",[1,2],null]"#)
        #expect(scanned.arrivedSize == text.utf8.count)
        let single = try ScannedJSON.scan(#" {"l":[1, 2]} "#.utf8)
        #expect(single.text == #"{"l":[1,2]}"#)
        #expect(single.arrivedSize == 12)
        #expect(try ScannedJSON.scan("[]".utf8).elements.isEmpty)
    }

    @Test("members are found by key and by dotted path, without building a tree")
    func lookups() throws {
        let event = try ScannedJSON.scan(#"""
            {"request": {"verb": "GET", "headers": {"a": "1", "verb": "no"}, "time": "2026-11-21T21:26:39.123"},
             "metadata": {"cost": 2.50, "tags": ["x"], "nested": {"deep": true}}, "weight": 3, "none": null}
            """#.utf8)
        #expect(event.isObject)
        #expect(event["request"]?["verb"]?.scalarText == "GET")
        #expect(event.value(atPath: "request.time")?.scalarText == "2026-11-21T21:26:39.123")
        #expect(event.value(atPath: "metadata.cost")?.scalarText == "2.50")
        #expect(event.value(atPath: "metadata.cost")?.kind == .number)
        #expect(event.value(atPath: "metadata.nested.deep")?.scalarText == "true")
        #expect(event.value(atPath: "metadata.tags")?.kind == .array)
        #expect(event.value(atPath: "metadata.tags")?.scalarText == nil)
        #expect(event.value(atPath: "metadata.tags.0") == nil)
        #expect(event.value(atPath: "metadata.missing") == nil)
        #expect(event.value(atPath: "weight.more") == nil)
        #expect(event["none"]?.kind == .null)
        #expect(event["none"]?.scalarText == nil)
        #expect(event["verb"] == nil)
        #expect(event["request"]?["headers"]?.members.map(\.key) == ["a", "verb"])
        #expect(event.members.map(\.key) == ["request", "metadata", "weight", "none"])
        #expect(event["weight"]?.elements.isEmpty == true)
        #expect(event["weight"]?["x"] == nil)
    }

    @Test("escaped keys and strings are decoded where they are read")
    func escapes() throws {
        let scanned = try ScannedJSON.scan(#"{"a\u0062":"x\ty","pl\"ain":"\ud83d\ude00\/"}"#.utf8)
        #expect(scanned["ab"]?.scalarText == "x\ty")
        #expect(scanned["pl\"ain"]?.scalarText == "😀/")
        #expect(scanned.members.map(\.key) == ["ab", "pl\"ain"])
        #expect(scanned["a\\u0062"] == nil)
        // The kept text keeps the escapes as they were sent.
        #expect(scanned["ab"]?.text == #""x\ty""#)
    }

    @Test("a key written twice is refused, escaped or not, in small and large objects")
    func duplicateKeys() throws {
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(#"{"ab":1,"a\u0062":2}"#.utf8) }
        let keys = (0..<40).map { "\"k\($0)\":\($0)" }
        let large = "{" + keys.joined(separator: ",") + "}"
        #expect(try ScannedJSON.scan(large.utf8).members.count == 40)
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(("{" + (keys + [#""k3":0"#]).joined(separator: ",") + "}").utf8) }
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(("{" + (keys + [#""k\u0033":0"#]).joined(separator: ",") + "}").utf8) }
        // Canonically equivalent spellings are one key, in small and large objects alike, as in
        // DocumentNode: "é" precomposed (C3 A9) and decomposed (65 CC 81), raw or escaped.
        let precomposed = "\u{E9}", decomposed = "e\u{301}"
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan("{\"\(precomposed)\":1,\"\(decomposed)\":2}".utf8) }
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan("{\"\\u00e9\":1,\"\(decomposed)\":2}".utf8) }
        #expect(throws: InvalidDocument.self) {
            try ScannedJSON.scan(("{" + (keys + ["\"\(precomposed)\":1", "\"\(decomposed)\":2"]).joined(separator: ",") + "}").utf8)
        }
        let accented = try ScannedJSON.scan("{\"\(precomposed)\":1}".utf8)
        #expect(accented[decomposed]?.scalarText == "1")
        #expect(DocumentNode(accented)[decomposed]?.scalarText == "1")
        // Keys of one length and the same first, middle and last bytes are told apart by the rest.
        let alike = try ScannedJSON.scan(#"{"aXbcd":1,"aYbcd":2,"":3}"#.utf8)
        #expect(alike["aXbcd"]?.scalarText == "1" && alike["aYbcd"]?.scalarText == "2" && alike[""]?.scalarText == "3")
        #expect(alike["aZbcd"] == nil && alike["aXbc"] == nil)
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(#"{"aXbcd":1,"aYbcd":2,"aXbcd":3}"#.utf8) }
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(#"{"":1,"":2}"#.utf8) }
        // Thousands of keys are checked in one pass, not pair by pair.
        let many = "{" + (0..<20_000).map { "\"k\($0)\":0" }.joined(separator: ",") + "}"
        #expect(try ScannedJSON.scan(many.utf8).members.count == 20_000)
    }

    @Test("UTF-8 is checked: overlong forms, surrogates and cut sequences are refused", arguments: [
        [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xE0, 0x80, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22], [0x22, 0xF0, 0x9F, 0x98], [0x22, 0x80, 0x22],
    ] as [[UInt8]])
    func invalidUTF8(bytes: [UInt8]) {
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(bytes) }
    }

    @Test("well-formed UTF-8 of every length is kept as it is")
    func validUTF8() throws {
        let text = "\"é € 😀 \u{10FFFF} \u{FFFD}\""
        let scanned = try ScannedJSON.scan(text.utf8)
        #expect(scanned.text == text)
        #expect(scanned.scalarText == "é € 😀 \u{10FFFF} \u{FFFD}")
    }

    @Test("the tree of a scanned value is the document it says")
    func tree() throws {
        let text = #"{"b":1,"a":[true,false,null,"x\"y\\z\n",{"k":"0.10"}],"c":-1.5e-3}"#
        #expect(DocumentNode(try ScannedJSON.scan(text.utf8)).jsonText() == text)
    }

    @Test("every byte at every place of a long string: printable ASCII is kept, anything else is read as JSON says")
    func everyByteInALongString() {
        // Strings are read eight bytes at a time: a byte missed or stopped at by mistake, in any
        // lane of the word or in the bytes after the last whole word, changes the answer.
        for length in [7, 8, 9, 16, 23] {
            for place in 0..<length {
                for byte in UInt8.min...UInt8.max {
                    var text = Array("\"".utf8) + Array(repeating: UInt8(ascii: "a"), count: length) + Array("\"".utf8)
                    text[1 + place] = byte
                    let scanned = try? ScannedJSON.scan(text)
                    let plain = byte >= 0x20 && byte < 0x80 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
                    #expect(scanned?.text == (plain ? String(decoding: text, as: UTF8.self) : nil), "byte \(byte) at \(place) of \(length)")
                }
            }
        }
    }
}
