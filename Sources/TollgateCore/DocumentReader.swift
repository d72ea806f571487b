import Foundation

/// Collects every problem found while reading a document, so that all of them are reported at once.
public final class DocumentReader {
    public private(set) var problems: [DocumentProblem] = []

    public init() {}

    /// Records a problem at `path`, on the line of `node` when known.
    public func report(_ path: String, _ node: DocumentNode?, _ message: String) {
        problems.append(DocumentProblem(path: path, line: node?.line, message: message))
    }

    /// Starts reading `node` as an object at `path`; reports and returns nil when it is not one.
    public func object(_ node: DocumentNode, at path: String) -> ObjectReader? {
        guard node.entries != nil else {
            report(path, node, "must be an object, not \(node.kindName)")
            return nil
        }
        return ObjectReader(reader: self, node: node, path: path)
    }

    /// Throws every problem recorded so far, if any.
    public func throwIfProblems() throws(InvalidDocument) {
        if !problems.isEmpty { throw InvalidDocument(problems) }
    }
}

/// Reads the fields of one object, reporting missing, mistyped and unknown keys.
public final class ObjectReader {
    public let reader: DocumentReader
    public let node: DocumentNode
    public let path: String
    private var readKeys: Set<String> = []

    init(reader: DocumentReader, node: DocumentNode, path: String) {
        self.reader = reader
        self.node = node
        self.path = path
    }

    /// The path of a field of this object.
    public func path(of key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// The raw node under `key`; nil when absent or null (reports when required).
    public func field(_ key: String, required: Bool) -> DocumentNode? {
        readKeys.insert(key)
        guard let value = node[key], !isNull(value) else {
            if required { reader.report(path(of: key), node, "is required") }
            return nil
        }
        return value
    }

    private func isNull(_ node: DocumentNode) -> Bool {
        if case .null = node.value { return true }
        return false
    }

    /// Reports a problem with the field `key`.
    public func report(_ key: String, _ message: String) {
        reader.report(path(of: key), node[key] ?? node, message)
    }

    public func string(_ key: String, required: Bool = true) -> String? {
        guard let value = field(key, required: required) else { return nil }
        guard case .string(let text) = value.value else {
            reader.report(path(of: key), value, "must be a string, not \(value.kindName)")
            return nil
        }
        return text
    }

    /// A string that must be one of `allowed`.
    public func choice(_ key: String, of allowed: [String], required: Bool = true) -> String? {
        guard let text = string(key, required: required) else { return nil }
        guard allowed.contains(text) else {
            report(key, "must be one of \(allowed.joined(separator: ", ")), not \"\(text)\"")
            return nil
        }
        return text
    }

    /// A whole number in `range`.
    public func integer(_ key: String, required: Bool = true, in range: ClosedRange<Int> = 0...Int.max) -> Int? {
        guard let value = field(key, required: required) else { return nil }
        guard case .number(let text) = value.value, let number = Int(text) else {
            reader.report(path(of: key), value, "must be a whole number")
            return nil
        }
        guard range.contains(number) else {
            reader.report(path(of: key), value, "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return number
    }

    public func bool(_ key: String, required: Bool = true) -> Bool? {
        guard let value = field(key, required: required) else { return nil }
        guard case .bool(let flag) = value.value else {
            reader.report(path(of: key), value, "must be true or false")
            return nil
        }
        return flag
    }

    /// A non-negative decimal amount, written as a decimal string ("29.00"); a YAML plain number is
    /// accepted with its exact text.
    public func amount(_ key: String, required: Bool = true) -> Amount? {
        guard let value = field(key, required: required) else { return nil }
        let text: String
        switch value.value {
        case .string(let string): text = string
        case .number(let digits): text = digits
        default:
            reader.report(path(of: key), value, "must be a decimal string such as \"29.00\"")
            return nil
        }
        guard let amount = Amount(text) else {
            reader.report(path(of: key), value, "must be a decimal string such as \"29.00\", not \"\(text)\"")
            return nil
        }
        guard !amount.isNegative else {
            reader.report(path(of: key), value, "must not be negative")
            return nil
        }
        return amount
    }

    /// A nested object.
    public func object(_ key: String, required: Bool = true) -> ObjectReader? {
        guard let value = field(key, required: required) else { return nil }
        return reader.object(value, at: path(of: key))
    }

    /// A list; each element comes with its own path.
    public func list(_ key: String, required: Bool = true) -> [(path: String, node: DocumentNode)]? {
        guard let value = field(key, required: required) else { return nil }
        guard case .list(let nodes) = value.value else {
            reader.report(path(of: key), value, "must be a list, not \(value.kindName)")
            return nil
        }
        return nodes.enumerated().map { (path: "\(path(of: key))[\($0.offset)]", node: $0.element) }
    }

    /// Reports every key that no read asked for (unknown keys are usually typos).
    public func finish() {
        for entry in node.entries ?? [] where !readKeys.contains(entry.key) {
            reader.report(path(of: entry.key), entry.node, "unknown key")
        }
    }
}
