import Foundation
import PropertyBased
import Testing
import TollgateCore

/// The collector's JSON scanner over random documents and random damage to them, checked
/// against the generated value and against Foundation's `JSONSerialization`.
///
/// Intended differences from Foundation (documented in `ScannedJSON.scan`), where only the
/// scanner refuses: duplicate keys (Foundation keeps one of them), more than 64 levels of
/// nesting, a trailing comma (`[1,]`), NUL bytes around values and anything after a NUL byte, which
/// Foundation on Linux lets through (it stops reading at a NUL). Where only Foundation refuses: numbers beyond `Double` (the scanner keeps digits
/// as text). Any other disagreement fails.
@Suite("ScannedJSON: properties")
struct ScannedJSONPropertyTests {
    /// A JSON value as generated.
    indirect enum Value: CustomStringConvertible {
        case null, bool(Bool), number(String), string(String), array([Value]), object([(String, Value)])

        var description: String { String(decoding: Writer.text(self, style: 0), as: UTF8.self) }
    }

    /// Random values: small trees of every kind, strings from a hostile alphabet.
    struct Random {
        var rng: any SeededRandomNumberGenerator

        mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

        static let characters: [String] = [
            "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "e\u{301}", "日", "🙂", "\u{FFFF}",
            "\u{2028}", "{", "]", ":", ",",
        ]

        mutating func string() -> String {
            (0..<int(0...8)).map { _ in Self.characters[int(0...(Self.characters.count - 1))] }.joined()
        }

        mutating func number() -> String {
            var text = int(0...3) == 0 ? "-" : ""
            text += int(0...2) == 0 ? "0" : String(int(1...9)) + (0..<int(0...12)).map { _ in String(int(0...9)) }.joined()
            if int(0...2) == 0 { text += "." + (0..<int(1...8)).map { _ in String(int(0...9)) }.joined() }
            if int(0...3) == 0 { text += ["e", "E"][int(0...1)] + ["", "+", "-"][int(0...2)] + String(int(0...30)) }
            return text
        }

        mutating func value(depth: Int = 0) -> Value {
            switch int(depth > 4 ? 0...4 : 0...6) {
            case 0: return .null
            case 1: return .bool(int(0...1) == 1)
            case 2: return .number(number())
            case 3, 4: return .string(string())
            case 5: return .array((0..<int(0...5)).map { _ in value(depth: depth + 1) })
            default:
                var keys: Set<String> = []
                var members: [(String, Value)] = []
                // Sometimes more than 16 members: the scanner checks those for duplicates another way.
                for _ in 0..<(int(0...9) == 0 ? int(17...30) : int(0...5)) {
                    let key = string() + String(int(0...40))
                    if keys.insert(key).inserted { members.append((key, value(depth: depth + 1))) }
                }
                return .object(members)
            }
        }
    }

    /// JSON text of a value: insignificant whitespace and string escapes chosen by `style`.
    enum Writer {
        static func text(_ value: Value, style: Int) -> [UInt8] {
            var out: [UInt8] = []
            write(value, style: style, into: &out)
            return out
        }

        static func space(_ style: Int, _ out: inout [UInt8]) {
            if style % 3 == 1 { out += Array(" \n\t\r".utf8) }
        }

        static func write(_ value: Value, style: Int, into out: inout [UInt8]) {
            space(style, &out)
            switch value {
            case .null: out += Array("null".utf8)
            case .bool(let flag): out += Array((flag ? "true" : "false").utf8)
            case .number(let digits): out += Array(digits.utf8)
            case .string(let text): string(text, style: style, into: &out)
            case .array(let elements):
                out.append(UInt8(ascii: "["))
                for (index, element) in elements.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    write(element, style: style, into: &out)
                }
                space(style, &out)
                out.append(UInt8(ascii: "]"))
            case .object(let members):
                out.append(UInt8(ascii: "{"))
                for (index, (key, element)) in members.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    space(style, &out)
                    string(key, style: style, into: &out)
                    space(style, &out)
                    out.append(UInt8(ascii: ":"))
                    write(element, style: style, into: &out)
                }
                space(style, &out)
                out.append(UInt8(ascii: "}"))
            }
            space(style, &out)
        }

        /// A string with the escapes JSON needs, and with `\u` escapes (surrogate pairs beyond
        /// the BMP) for every other character when `style` says so.
        static func string(_ text: String, style: Int, into out: inout [UInt8]) {
            out.append(UInt8(ascii: "\""))
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += Array(#"\""#.utf8)
                case "\\": out += Array(#"\\"#.utf8)
                case "\n": out += Array(#"\n"#.utf8)
                case "\t": out += Array(#"\t"#.utf8)
                case "/" where style % 2 == 1: out += Array(#"\/"#.utf8)
                default:
                    if scalar.value < 0x20 || style % 4 >= 2 {
                        for unit in String(scalar).utf16 {
                            let hex = String(unit, radix: 16)
                            out += Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
                        }
                    } else {
                        out += Array(String(scalar).utf8)
                    }
                }
            }
            out.append(UInt8(ascii: "\""))
        }
    }

    /// Damage to a document: truncation, inserted or replaced bytes, bad escapes, bad UTF-8, deep nesting.
    static func mutate(_ bytes: [UInt8], _ random: inout Random) -> [UInt8] {
        var bytes = bytes
        let hostile: [[UInt8]] = [
            Array(#"""#.utf8), Array(#"\"#.utf8), Array("{".utf8), Array("[".utf8), Array("]".utf8), Array(",".utf8), Array(":".utf8),
            [0x00], [0x80], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xE6, 0x97],
            Array(#"\x"#.utf8), Array(#"\u12"#.utf8), Array(#"\uD800"#.utf8), Array(#"\uDC00\uD800"#.utf8), Array(#"\u00e9"#.utf8),
            Array("-".utf8), Array("0".utf8), Array("1e".utf8), Array(".5".utf8), Array("tru".utf8), Array("nul".utf8), Array(" ".utf8),
        ]
        for _ in 0..<random.int(1...3) {
            let at = random.int(0...bytes.count)
            switch random.int(0...4) {
            case 0: bytes = Array(bytes[..<at])
            case 1: bytes.insert(contentsOf: hostile[random.int(0...(hostile.count - 1))], at: at)
            case 2 where at < bytes.count: bytes[at] = hostile[random.int(0...(hostile.count - 1))][0]
            case 3:
                let depth = random.int(1...80)
                let open = random.int(0...1) == 0 ? Array("[".utf8) : Array(#"{"k":"#.utf8)
                let close = open.count == 1 ? Array("]".utf8) : Array("}".utf8)
                bytes = Array(repeating: open, count: depth).flatMap { $0 } + bytes + Array(repeating: close, count: depth).flatMap { $0 }
            default: if at < bytes.count { bytes.remove(at: at) }
            }
        }
        return bytes
    }

    static var documents: Generator<(Value, Int), Shrink.None<(Value, Int)>> {
        Generator { rng in
            var random = Random(rng: rng)
            let value = random.value()
            let style = random.int(0...7)
            rng = random.rng
            return (value, style)
        }
    }

    static var damaged: Generator<[UInt8], Shrink.None<[UInt8]>> {
        Generator { rng in
            var random = Random(rng: rng)
            let bytes = mutate(Writer.text(random.value(), style: random.int(0...7)), &random)
            rng = random.rng
            return bytes
        }
    }

    // MARK: Comparing

    /// Whether the scanned value says what `value` says.
    static func same(_ scanned: ScannedJSON, _ value: Value) -> Bool {
        switch value {
        case .null: return scanned.kind == .null
        case .bool(let flag): return scanned.kind == (flag ? .true : .false)
        case .number(let digits): return scanned.kind == .number && scanned.scalarText == digits
        case .string(let text): return scanned.kind == .string && scanned.scalarText.map { Array($0.unicodeScalars) } == Array(text.unicodeScalars)
        case .array(let elements):
            let scannedElements = scanned.elements
            return scanned.kind == .array && scannedElements.count == elements.count && zip(scannedElements, elements).allSatisfy(same)
        case .object(let members):
            let scannedMembers = scanned.members
            return scanned.kind == .object && scannedMembers.count == members.count
                && zip(scannedMembers, members).allSatisfy { Array($0.key.unicodeScalars) == Array($1.0.unicodeScalars) && same($0.value, $1.1) }
                && members.allSatisfy { key, member in scanned[key].map { same($0, member) } ?? false }
        }
    }

    /// Where the scanned value differs from what Foundation read, or nil. Numbers are compared
    /// as `Double`s (what Foundation keeps of them); strings and keys as Swift strings.
    static func mismatch(_ scanned: ScannedJSON, _ foundation: Any, at path: String = "$") -> String? {
        let found = { "\(path): scanned \(scanned.text.prefix(80)), Foundation \(String(describing: foundation).prefix(80))" }
        switch scanned.kind {
        case .null: return foundation is NSNull ? nil : found()
        case .true, .false: return foundation as? Bool == (scanned.kind == .true) ? nil : found()
        case .number:
            guard let digits = scanned.scalarText, let expected = Double(digits) else { return found() }
            // Foundation keeps long numbers as `Decimal`: those are compared exactly.
            if let decimal = foundation as? Decimal {
                return Decimal(string: digits, locale: Locale(identifier: "en_US_POSIX")) == decimal ? nil : found()
            }
            let read = (foundation as? NSNumber)?.doubleValue
            return read == expected ? nil : found() + " (\(String(describing: read)) != \(expected))"
        case .string: return foundation as? String == scanned.scalarText ? nil : found()
        case .array:
            guard let elements = foundation as? [Any], elements.count == scanned.elements.count else { return found() }
            for (index, (element, read)) in zip(scanned.elements, elements).enumerated() {
                if let difference = mismatch(element, read, at: "\(path)[\(index)]") { return difference }
            }
            return nil
        case .object:
            guard let members = foundation as? [String: Any], members.count == scanned.members.count else { return found() }
            for (key, value) in scanned.members {
                guard let read = members[key] else { return found() + " (no key \(key.debugDescription))" }
                if let difference = mismatch(value, read, at: "\(path).\(key.debugDescription)") { return difference }
            }
            return nil
        }
    }

    static func foundation(_ bytes: [UInt8]) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    }

    /// The document without a comma before a closing bracket, which Foundation on Linux
    /// accepts and strict JSON (and so the scanner) does not: `[1,]`, `{"a":1,}`.
    static func withoutTrailingCommas(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for byte in bytes {
            if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}"),
               let comma = out.lastIndex(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }), out[comma] == UInt8(ascii: ",") {
                out.remove(at: comma)
            }
            out.append(byte)
        }
        return out
    }

    /// Whether a document has a number that `Double` cannot hold (Foundation refuses those).
    static func hasHugeNumber(_ scanned: ScannedJSON) -> Bool {
        switch scanned.kind {
        case .number: return !(Double(scanned.scalarText ?? "")?.isFinite ?? false)
        case .array: return scanned.elements.contains(where: hasHugeNumber)
        case .object: return scanned.members.contains { hasHugeNumber($0.value) }
        default: return false
        }
    }

    // MARK: Properties

    @Test func everyGeneratedDocumentIsAcceptedAndReadAsGenerated() async {
        await propertyCheck(count: 400, input: Self.documents) { value, style in
            let bytes = Writer.text(value, style: style)
            let text = String(decoding: bytes, as: UTF8.self)
            guard let scanned = try? ScannedJSON.scan(bytes) else {
                Issue.record("refused a valid document: \(text.prefix(300))")
                return
            }
            #expect(Self.same(scanned, value), "\(text.prefix(300))")
            // Whitespace is dropped and everything else kept: without optional escapes, the text is
            // the document written with no whitespace.
            if style % 4 < 2 && style % 2 == 0 {
                #expect(scanned.text == String(decoding: Writer.text(value, style: 0), as: UTF8.self), "\(text.prefix(300))")
            }
            guard let read = Self.foundation(bytes) else {
                #expect(Self.hasHugeNumber(scanned), "Foundation refused a valid document: \(text.prefix(300))")
                return
            }
            #expect(Self.mismatch(scanned, read) == nil)
        }
    }

    @Test func damagedDocumentsNeverCrashAndAgreeWithFoundationWhereBothAccept() async {
        await propertyCheck(count: 3000, input: Self.damaged) { bytes in
            let scanned = try? ScannedJSON.scan(bytes)
            let read = Self.foundation(bytes)
            let text = String(decoding: bytes, as: UTF8.self)
            switch (scanned, read) {
            case (let scanned?, let read?):
                #expect(Self.mismatch(scanned, read) == nil)
                // What was accepted reads back to the same value from its own text.
                let again = try? ScannedJSON.scan(Array(scanned.text.utf8))
                #expect(again.map { Self.mismatch($0, read) == nil } == true, "\(text.prefix(300))")
            case (let scanned?, nil):
                #expect(Self.hasHugeNumber(scanned), "only the scanner accepted: \(text.prefix(300))")
            case (nil, _?):
                // Only the scanner's documented refusals: duplicate keys, nesting past 64 levels,
                // text that is not UTF-8.
                do throws(InvalidDocument) {
                    _ = try ScannedJSON.scan(bytes)
                } catch {
                    let reason = error.problems.first?.message ?? ""
                    // Foundation reads a text whose first bytes hold NULs as UTF-16 or UTF-32
                    // (RFC 4627's detection); the scanner reads UTF-8 only.
                    let documented = reason.contains("duplicate key") || reason.contains("nested too deeply")
                        || bytes.prefix(4).contains(0)
                        || (try? ScannedJSON.scan(Self.withoutTrailingCommas(bytes.filter { $0 != 0 }))) != nil
                        || (try? ScannedJSON.scan(Self.withoutTrailingCommas(Array(bytes.prefix { $0 != 0 })))) != nil
                    #expect(documented, "only Foundation accepted: \(text.prefix(300)): \(reason)")
                }
            case (nil, nil):
                break
            }
        }
    }

    @Test func duplicateKeysAndDeepNestingAreRefused() throws {
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(Array(#"{"a":1,"a":2}"#.utf8)) }
        // Canonically equivalent spellings are one key, as Swift strings (and `DocumentNode`) see it.
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(Array(#"{"é":1,"e\u0301":2}"#.utf8)) }
        let keys = (0..<20).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        #expect(throws: InvalidDocument.self) { try ScannedJSON.scan(Array(("{" + keys + #","k7":0}"#).utf8)) }
        #expect(throws: Never.self) { try ScannedJSON.scan(Array((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8)) }
        #expect(throws: InvalidDocument.self) {
            try ScannedJSON.scan(Array((String(repeating: "[", count: 65) + String(repeating: "]", count: 65)).utf8))
        }
    }
}
