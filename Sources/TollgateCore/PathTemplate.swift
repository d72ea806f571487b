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
    /// ignored on both sides. Literal segments match regardless of case unless `caseSensitive`:
    /// most upstream frameworks route `/INVOICE` to the handler of `/invoice`, so a billed
    /// endpoint must not have a free spelling.
    public func matches(_ path: Substring, caseSensitive: Bool = false) -> Bool {
        // Segment by segment, without splitting the path into an array. Slashes are found byte
        // by byte, as upstream servers and `RequestPath` find them: a slash followed by a
        // combining mark still separates segments.
        let slash = UInt8(ascii: "/")
        // The leading slash, and a trailing one, are dropped.
        var remaining = path.isEmpty ? path : path[path.utf8.index(after: path.startIndex)...]
        if remaining.utf8.last == slash {
            remaining = remaining[..<remaining.utf8.index(before: remaining.endIndex)]
        }
        if remaining.isEmpty { return segments == [.literal("")] }
        var index = 0
        while true {
            guard index < segments.count else { return false }
            let end = remaining.utf8.firstIndex(of: slash)
            let part = end.map { remaining[..<$0] } ?? remaining
            switch segments[index] {
            case .literal(let literal):
                if caseSensitive ? part != literal : !Self.equalIgnoringCase(part, literal) { return false }
            case .parameter: if part.isEmpty { return false }
            }
            index += 1
            guard let end else { return index == segments.count }
            remaining = remaining[remaining.utf8.index(after: end)...]
        }
    }

    /// Whether two segments are equal when case is ignored: byte by byte for ASCII, otherwise
    /// by their lower-cased forms.
    static func equalIgnoringCase(_ lhs: Substring, _ rhs: String) -> Bool {
        if lhs.utf8.count == rhs.utf8.count,
           zip(lhs.utf8, rhs.utf8).allSatisfy({ asciiLowercased($0) == asciiLowercased($1) }) {
            return true
        }
        let ascii = lhs.utf8.allSatisfy { $0 < 0x80 } && rhs.utf8.allSatisfy { $0 < 0x80 }
        return !ascii && lhs.lowercased() == rhs.lowercased()
    }

    private static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
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
    /// Whether literal segments must match in their exact case (the product's setting).
    public let caseSensitive: Bool

    public init(_ product: Product) {
        endpoints = product.endpoints.filter { !$0.archived }.sorted { $0.path.specificity > $1.path.specificity }
        caseSensitive = product.caseSensitivePaths
    }

    /// The endpoint a call matches, by method and the path below the product prefix (with its
    /// `;` parameters already removed, see `RequestPath.withoutParameters`). A `HEAD` without
    /// an endpoint of its own is the `GET` endpoint of the same path: upstream frameworks answer
    /// it with the `GET` handler, so it is metered as that call.
    public func endpoint(method: String, path: Substring) -> Endpoint? {
        if let exact = endpoints.first(where: { $0.method == method && $0.path.matches(path, caseSensitive: caseSensitive) }) {
            return exact
        }
        guard method == "HEAD" else { return nil }
        return endpoints.first { $0.method == "GET" && $0.path.matches(path, caseSensitive: caseSensitive) }
    }
}
