/// An endpoint path such as `/invoice/{id}`: literal segments and `{name}` placeholders that
/// each match one non-empty segment.
public struct PathTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    public let description: String
    let segments: [Segment]

    /// Parses a template; nil when it does not start with `/` or has a malformed placeholder.
    public init?(_ text: String) {
        guard text.hasPrefix("/") else { return nil }
        var segments: [Segment] = []
        for part in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if part.hasPrefix("{") || part.hasSuffix("}") || part.contains("{") || part.contains("}") {
                guard part.hasPrefix("{"), part.hasSuffix("}"), part.count > 2 else { return nil }
                let name = part.dropFirst().dropLast()
                guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else { return nil }
                segments.append(.parameter(String(name)))
            } else {
                segments.append(.literal(String(part)))
            }
        }
        if segments.count > 1, segments.last == .literal("") { segments.removeLast() }
        self.segments = segments
        self.description = text
    }

    /// Whether a normalized path (without query) matches this template. A trailing slash is
    /// ignored on both sides.
    public func matches(_ path: Substring) -> Bool {
        // Segment by segment, without splitting the path into an array. In an ASCII path each
        // byte is a character, so slashes are found byte by byte; otherwise by character (a
        // slash with a combining mark is not a separator).
        let ascii = path.utf8.allSatisfy { $0 < 0x80 }
        func slash(in text: Substring) -> Substring.Index? {
            ascii ? text.utf8.firstIndex(of: UInt8(ascii: "/")) : text.firstIndex(of: "/")
        }
        func after(_ index: Substring.Index, in text: Substring) -> Substring.Index {
            ascii ? text.utf8.index(after: index) : text.index(after: index)
        }
        func lastIndex(of text: Substring) -> Substring.Index {
            ascii ? text.utf8.index(before: text.endIndex) : text.index(before: text.endIndex)
        }
        // The leading slash, and a trailing one, are dropped.
        var remaining = path.isEmpty ? path : path[after(path.startIndex, in: path)...]
        if !remaining.isEmpty, ascii ? remaining.utf8.last == UInt8(ascii: "/") : remaining.hasSuffix("/") {
            remaining = remaining[..<lastIndex(of: remaining)]
        }
        if remaining.isEmpty { return segments == [.literal("")] }
        var index = 0
        while true {
            guard index < segments.count else { return false }
            let end = slash(in: remaining)
            let part = end.map { remaining[..<$0] } ?? remaining
            switch segments[index] {
            case .literal(let literal): if part != literal { return false }
            case .parameter: if part.isEmpty { return false }
            }
            index += 1
            guard let end else { return index == segments.count }
            remaining = remaining[after(end, in: remaining)...]
        }
    }

    /// How specific the template is: literal segments count more than placeholders, so that
    /// `/invoice/latest` wins over `/invoice/{id}`.
    public var specificity: Int {
        segments.reduce(0) { total, segment in
            if case .literal = segment { total * 4 + 3 } else { total * 4 + 1 }
        }
    }
}

/// A product's live endpoints, ordered from the most specific, matched by method and path.
public struct EndpointTable: Sendable {
    public let endpoints: [Endpoint]

    public init(_ product: Product) {
        endpoints = product.endpoints.filter { !$0.archived }.sorted { $0.path.specificity > $1.path.specificity }
    }

    /// The endpoint a call matches, by method and the path below the product prefix.
    public func endpoint(method: String, path: Substring) -> Endpoint? {
        endpoints.first { $0.method == method && $0.path.matches(path) }
    }
}
