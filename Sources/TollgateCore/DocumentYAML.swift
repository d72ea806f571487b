/// Writing a document as block-style YAML that `DocumentNode.parseYAML` reads back to the same
/// tree: strings are always double-quoted (JSON escapes are valid YAML), so amounts such as
/// `"29.00"` stay strings and no text is mistaken for a number, a boolean or null.
extension DocumentNode {
    /// The document as YAML text, ending with a newline.
    public func yamlText() -> String {
        var out = ""
        switch value {
        case .map(let entries) where !entries.isEmpty:
            Self.writeEntries(entries, indent: 0, to: &out)
        case .list(let items) where !items.isEmpty:
            Self.writeItems(items, indent: 0, to: &out)
        default:
            out += scalarYAML() + "\n"
        }
        return out
    }

    private static func writeEntries(_ entries: [(key: String, node: DocumentNode)], indent: Int, to out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for (key, node) in entries {
            out += pad + yamlKey(key) + ":"
            writeValue(node, indent: indent, to: &out)
        }
    }

    private static func writeItems(_ items: [DocumentNode], indent: Int, to out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for item in items {
            switch item.value {
            case .map(let entries) where !entries.isEmpty:
                // The first entry on the dash's line, the others aligned under it.
                var body = ""
                writeEntries(entries, indent: indent + 2, to: &body)
                out += pad + "- " + body.dropFirst(indent + 2)
            default:
                out += pad + "-"
                writeValue(item, indent: indent, to: &out)
            }
        }
    }

    /// What follows `key:` or `-`: a scalar on the same line, or a nested block below.
    private static func writeValue(_ node: DocumentNode, indent: Int, to out: inout String) {
        switch node.value {
        case .map(let entries) where !entries.isEmpty:
            out += "\n"
            writeEntries(entries, indent: indent + 2, to: &out)
        case .list(let items) where !items.isEmpty:
            out += "\n"
            writeItems(items, indent: indent + 2, to: &out)
        default:
            out += " " + node.scalarYAML() + "\n"
        }
    }

    private func scalarYAML() -> String {
        switch value {
        case .map: return "{}"
        case .list: return "[]"
        case .string(let text):
            var out = ""
            JSONText.appendString(text, to: &out)
            return out
        case .number(let text): return text
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        }
    }

    /// A key plain when it is a simple word, else double-quoted.
    private static func yamlKey(_ key: String) -> String {
        let plain = !key.isEmpty && key.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        } && !["true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"].contains(key.lowercased())
        if plain { return key }
        var out = ""
        JSONText.appendString(key, to: &out)
        return out
    }
}

extension Catalog {
    /// The catalog as the catalog file writes it (secrets included: this is the vendor's own file).
    public func document() -> DocumentNode {
        .object([
            ("products", DocumentNode(.list(products.map { $0.document(secrets: true) }))),
            ("meters", DocumentNode(.list(meters.map { $0.document() }))),
            ("plans", DocumentNode(.list(plans.map { $0.document() }))),
        ])
    }
}
