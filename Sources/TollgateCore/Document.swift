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
    public static func parseJSON(_ data: some Collection<UInt8>) throws(InvalidDocument) -> DocumentNode {
        DocumentNode(try ScannedJSON.scan(data))
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

/// Writes JSON string literals.
public enum JSONText {
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
