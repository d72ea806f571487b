import Foundation
import Yams

/// A parsed document (YAML catalog file or JSON request body) as a neutral tree that remembers
/// where each value came from, so that validation can name the line and path of every problem.
public struct DocumentNode: Sendable {
    /// The value of a node.
    public enum Value: Sendable {
        case map([(key: String, node: DocumentNode)])
        case list([DocumentNode])
        /// A string scalar (quoted in YAML, a JSON string).
        case string(String)
        /// A plain scalar that is not a string: its exact text (a YAML plain scalar, a JSON number).
        case number(String)
        case bool(Bool)
        case null
    }

    public var value: Value
    /// The line the value starts on, when the document came from a file (1-based).
    public var line: Int?

    public init(_ value: Value, line: Int? = nil) {
        self.value = value
        self.line = line
    }

    /// The entries of a map, or nil when this is not a map.
    public var entries: [(key: String, node: DocumentNode)]? {
        if case .map(let entries) = value { return entries }
        return nil
    }

    /// The value stored under `key` in a map.
    public subscript(key: String) -> DocumentNode? {
        entries?.first { $0.key == key }?.node
    }

    /// The value stored under `key` in a map, for a key cut out of a longer text.
    public func value(at key: Substring) -> DocumentNode? {
        entries?.first { $0.key.utf8.elementsEqual(key.utf8) }?.node
    }

    /// A copy of this map with the top-level entries of `patch` put over its own.
    public func merging(_ patch: DocumentNode) -> DocumentNode {
        guard var mine = entries, let theirs = patch.entries else { return patch }
        for (key, node) in theirs {
            if let index = mine.firstIndex(where: { $0.key == key }) {
                mine[index].node = node
            } else {
                mine.append((key, node))
            }
        }
        return DocumentNode(.map(mine), line: line)
    }

    /// The plain text of a scalar (a string, a number's digits, `true`/`false`), nil for others.
    public var scalarText: String? {
        switch value {
        case .string(let text), .number(let text): text
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    /// A short name of the node's kind, for error messages.
    public var kindName: String {
        switch value {
        case .map: "an object"
        case .list: "a list"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

/// One thing wrong with a document: where (path and, for files, line) and what.
public struct DocumentProblem: Sendable, Equatable, CustomStringConvertible, Codable {
    /// The dotted path of the value, e.g. `plans[0].prices[1].amount`; empty for the whole document.
    public var path: String
    /// The 1-based line in the file, when known.
    public var line: Int?
    public var message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        var text = ""
        if let line { text += "line \(line): " }
        if !path.isEmpty { text += "\(path): " }
        return text + message
    }
}

/// A document that could not be read at all, or that was read and found invalid.
public struct InvalidDocument: Error, Sendable, CustomStringConvertible {
    public var problems: [DocumentProblem]

    public init(_ problems: [DocumentProblem]) {
        self.problems = problems
    }

    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}

extension DocumentNode {
    /// Parses YAML text. Scalars keep their exact text (no floating-point conversion).
    public static func parseYAML(_ text: String) throws(InvalidDocument) -> DocumentNode {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw InvalidDocument([Self.problem(from: error)])
        } catch {
            throw InvalidDocument([DocumentProblem(path: "", line: nil, message: "not valid YAML")])
        }
        guard let root else { return DocumentNode(.map([]), line: 1) }
        return convert(root)
    }

    private static func problem(from error: YamlError) -> DocumentProblem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            DocumentProblem(path: "", line: mark.line, message: "not valid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            DocumentProblem(
                path: "", line: context.mark.line,
                message: "duplicate keys: \(duplicates.joined(separator: ", "))")
        default:
            DocumentProblem(path: "", line: nil, message: "not valid YAML: \(error)")
        }
    }

    private static func convert(_ node: Node) -> DocumentNode {
        let line = node.mark?.line
        switch node {
        case .scalar(let scalar):
            if scalar.style == .singleQuoted || scalar.style == .doubleQuoted
                || scalar.style == .literal || scalar.style == .folded {
                return DocumentNode(.string(scalar.string), line: line)
            }
            let text = scalar.string
            switch text {
            case "", "~", "null", "Null", "NULL": return DocumentNode(.null, line: line)
            case "true", "True", "TRUE": return DocumentNode(.bool(true), line: line)
            case "false", "False", "FALSE": return DocumentNode(.bool(false), line: line)
            default: break
            }
            if text.first.map({ $0.isNumber || $0 == "-" || $0 == "+" }) == true, Double(text) != nil {
                return DocumentNode(.number(text), line: line)
            }
            return DocumentNode(.string(text), line: line)
        case .mapping(let mapping):
            let entries = mapping.map { pair in
                (key: pair.key.scalar?.string ?? "\(pair.key)", node: convert(pair.value))
            }
            return DocumentNode(.map(entries), line: line)
        case .sequence(let sequence):
            return DocumentNode(.list(sequence.map(convert)), line: line)
        case .alias:
            return DocumentNode(.null, line: line)
        }
    }

    /// Parses JSON. Numbers keep their exact digits (no floating-point conversion).
    public static func parseJSON(_ data: some DataProtocol) throws(InvalidDocument) -> DocumentNode {
        try parseJSONKeepingText(data, ofElements: false).document
    }

    /// Parses JSON and also hands back the text of each element of a top-level array (or of the
    /// whole document when it is not an array), without its insignificant whitespace, so that
    /// items can be stored as they arrived without being written out again.
    public static func parseJSONKeepingText(
        _ data: some DataProtocol, ofElements: Bool = true
    ) throws(InvalidDocument) -> (document: DocumentNode, texts: [KeptText]) {
        var parser = JSONScanner(bytes: Array(data), recordsElements: ofElements)
        do {
            let node = try parser.parseDocument()
            guard ofElements else { return (node, []) }
            let ranges = if case .list = node.value { parser.elementRanges } else { [parser.bytes.indices] }
            let texts = parser.bytes.withUnsafeBufferPointer { bytes in
                ranges.map { KeptText(text: JSONText.minified(UnsafeBufferPointer(rebasing: bytes[$0])), arrivedSize: $0.count) }
            }
            return (node, texts)
        } catch {
            throw InvalidDocument([DocumentProblem(path: "", line: nil, message: "malformed JSON: \(error.reason)")])
        }
    }

    /// The node as JSON text (keys in their order), used to store and echo documents.
    public func jsonText() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch value {
        case .map(let entries):
            out += "{"
            for (index, entry) in entries.enumerated() {
                if index > 0 { out += "," }
                JSONText.appendString(entry.key, to: &out)
                out += ":"
                entry.node.write(to: &out)
            }
            out += "}"
        case .list(let nodes):
            out += "["
            for (index, node) in nodes.enumerated() {
                if index > 0 { out += "," }
                node.write(to: &out)
            }
            out += "]"
        case .string(let text): JSONText.appendString(text, to: &out)
        case .number(let text): out += text
        case .bool(let flag): out += flag ? "true" : "false"
        case .null: out += "null"
        }
    }
}

/// A small strict JSON reader that keeps number text exact.
struct JSONScanner {
    struct Failure: Error { var reason: String }

    let bytes: [UInt8]
    var index = 0
    var depth = 0
    /// Whether to note where each element of a top-level array starts and ends.
    let recordsElements: Bool
    var elementRanges: [Range<Int>] = []

    init(bytes: [UInt8], recordsElements: Bool = false) {
        self.bytes = bytes
        self.recordsElements = recordsElements
    }

    mutating func parseDocument() throws(Failure) -> DocumentNode {
        skipWhitespace()
        let node = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw Failure(reason: "unexpected text after the value at byte \(index)") }
        return node
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(Failure) -> DocumentNode {
        guard index < bytes.count else { throw Failure(reason: "unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return DocumentNode(.string(try parseString()))
        case UInt8(ascii: "t"): try expectLiteral("true"); return DocumentNode(.bool(true))
        case UInt8(ascii: "f"): try expectLiteral("false"); return DocumentNode(.bool(false))
        case UInt8(ascii: "n"): try expectLiteral("null"); return DocumentNode(.null)
        default: return DocumentNode(.number(try parseNumber()))
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count,
              literal.withUTF8Buffer({ bytes[index..<index + count].elementsEqual($0) }) else {
            throw Failure(reason: "unexpected character at byte \(index)")
        }
        index += count
    }

    private mutating func enter() throws(Failure) {
        depth += 1
        if depth > 64 { throw Failure(reason: "nested too deeply") }
    }

    private mutating func parseObject() throws(Failure) -> DocumentNode {
        try enter()
        defer { depth -= 1 }
        index += 1
        var entries: [(key: String, node: DocumentNode)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return DocumentNode(.map(entries))
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw Failure(reason: "expected a key at byte \(index)")
            }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw Failure(reason: "expected ':' at byte \(index)")
            }
            index += 1
            skipWhitespace()
            let value = try parseValue()
            if entries.contains(where: { $0.key == key }) {
                throw Failure(reason: "duplicate key \"\(key)\"")
            }
            entries.append((key, value))
            skipWhitespace()
            guard index < bytes.count else { throw Failure(reason: "unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return DocumentNode(.map(entries)) }
            throw Failure(reason: "expected ',' or '}' at byte \(index)")
        }
    }

    private mutating func parseArray() throws(Failure) -> DocumentNode {
        try enter()
        defer { depth -= 1 }
        index += 1
        var nodes: [DocumentNode] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return DocumentNode(.list(nodes))
        }
        let recording = recordsElements && depth == 1
        while true {
            skipWhitespace()
            let start = index
            nodes.append(try parseValue())
            if recording { elementRanges.append(start..<index) }
            skipWhitespace()
            guard index < bytes.count else { throw Failure(reason: "unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return DocumentNode(.list(nodes)) }
            throw Failure(reason: "expected ',' or ']' at byte \(index)")
        }
    }

    private mutating func parseNumber() throws(Failure) -> String {
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits(_ scanner: inout JSONScanner) -> Int {
            let from = scanner.index
            while scanner.index < scanner.bytes.count, (48...57).contains(scanner.bytes[scanner.index]) {
                scanner.index += 1
            }
            return scanner.index - from
        }
        let integerStart = index
        guard digits(&self) > 0 else { throw Failure(reason: "unexpected character at byte \(start)") }
        if bytes[integerStart] == UInt8(ascii: "0"), index - integerStart > 1 {
            throw Failure(reason: "leading zero in a number at byte \(start)")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw Failure(reason: "bad number at byte \(start)") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard digits(&self) > 0 else { throw Failure(reason: "bad number at byte \(start)") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseString() throws(Failure) -> String {
        index += 1
        // Fast path: ASCII without escapes, the usual case, becomes a string in one copy.
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: bytes[start..<index - 1], as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { break }
            index += 1
        }
        var scalars = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: scalars, as: UTF8.self) else {
                    throw Failure(reason: "invalid UTF-8 in a string")
                }
                return text
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw Failure(reason: "unexpected end of input") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append(0x22)
                case UInt8(ascii: "\\"): scalars.append(0x5C)
                case UInt8(ascii: "/"): scalars.append(0x2F)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                              bytes[index + 1] == UInt8(ascii: "u") else {
                            throw Failure(reason: "unpaired surrogate in a string")
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw Failure(reason: "unpaired surrogate in a string") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw Failure(reason: "invalid \\u escape") }
                    scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw Failure(reason: "invalid escape in a string")
                }
            case 0x00..<0x20:
                throw Failure(reason: "control character in a string")
            default:
                scalars.append(byte)
            }
        }
        throw Failure(reason: "unterminated string")
    }

    private mutating func parseHex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count, bytes[index..<index + 4].allSatisfy(\.isASCIIHexDigit),
              let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else {
            throw Failure(reason: "invalid \\u escape")
        }
        index += 4
        return value
    }
}

/// A JSON value's text as kept for storage: without insignificant whitespace, with the number
/// of bytes it arrived in.
public struct KeptText: Sendable, Equatable {
    public var text: String
    public var arrivedSize: Int

    public init(text: String, arrivedSize: Int) {
        self.text = text
        self.arrivedSize = arrivedSize
    }
}

/// Writes JSON text: string literals, minified values.
public enum JSONText {
    /// Valid JSON text without the whitespace between its tokens (strings are kept as they are).
    public static func minified(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { out in
            var count = 0, inString = false, escaped = false
            for byte in bytes {
                if inString {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                } else if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                    continue
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                }
                out[count] = byte
                count += 1
            }
            return count
        }
    }

    /// Appends `text` as a quoted, escaped JSON string to UTF-8 bytes.
    public static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends `text` as a quoted, escaped JSON string.
    public static func appendString(_ text: String, to out: inout String) {
        out += "\""
        // Fast path: nothing to escape (the usual case for ids, methods and paths).
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            out += text
            out += "\""
            return
        }
        var escaped: [UInt8] = []
        appendString(text, to: &escaped)
        out += String(decoding: escaped.dropFirst(), as: UTF8.self)
    }
}
