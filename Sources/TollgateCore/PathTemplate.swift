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
        // A substring's own `withUTF8` (on a copy): through `withUTF8Bytes` this cost a call
        // about 3 retains and 7 releases more (counted with uprobes).
        var path = path
        return path.withUTF8 { matches($0[...], caseSensitive: caseSensitive) }
    }

    private func matches(_ path: Slice<UnsafeBufferPointer<UInt8>>, caseSensitive: Bool) -> Bool {
        // Segment by segment, on the path's bytes. Slashes are found byte by byte, as upstream
        // servers and `RequestPath` find them: a slash followed by a combining mark still
        // separates segments.
        let slash = UInt8(ascii: "/")
        // The leading slash, and a trailing one, are dropped.
        var remaining = path.dropFirst()
        if remaining.last == slash { remaining = remaining.dropLast() }
        if remaining.isEmpty { return segments.count == 1 && segments[0] == .literal("") }
        var index = 0
        while true {
            guard index < segments.count else { return false }
            let end = remaining.firstIndex(of: slash)
            let part = remaining[..<(end ?? remaining.endIndex)]
            switch segments[index] {
            case .literal(let literal):
                if !Self.segment(part, equals: literal, caseSensitive: caseSensitive) { return false }
            case .parameter: if part.isEmpty { return false }
            }
            index += 1
            guard let end else { return index == segments.count }
            remaining = remaining[(end + 1)...]
        }
    }

    /// Whether a segment of a path says a literal segment: byte for byte (ASCII letters in
    /// either case unless `caseSensitive`); when either has other than ASCII, as Swift strings
    /// compare (canonically equivalent spellings are equal), lower-cased unless `caseSensitive`.
    static func segment(_ part: Slice<UnsafeBufferPointer<UInt8>>, equals literal: String, caseSensitive: Bool) -> Bool {
        let (equalBytes, ascii) = literal.withUTF8Bytes { wanted -> (Bool, Bool) in
            let ascii = part.allSatisfy { $0 < 0x80 } && wanted.allSatisfy { $0 < 0x80 }
            guard part.count == wanted.count else { return (false, ascii) }
            let equal = caseSensitive
                ? part.elementsEqual(wanted)
                : zip(part, wanted).allSatisfy { asciiLowercased($0) == asciiLowercased($1) }
            return (equal, ascii)
        }
        if equalBytes { return true }
        if ascii { return false }
        let text = String(decoding: UnsafeBufferPointer(rebasing: part), as: UTF8.self)
        return caseSensitive ? text == literal : text.lowercased() == literal.lowercased()
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
        position(method: method, path: path).map { endpoints[$0] }
    }

    /// The identifier of the endpoint `endpoint(method:path:)` finds.
    public func identifier(method: String, path: Substring) -> String? {
        position(method: method, path: path).map { endpoints[$0].identifier }
    }

    private func position(method: String, path: Substring) -> Int? {
        // Searched by index: iterating would copy every endpoint tried, with all its strings.
        if let exact = position(exactly: method, path: path) { return exact }
        guard method == "HEAD" else { return nil }
        return position(exactly: "GET", path: path)
    }

    private func position(exactly method: String, path: Substring) -> Int? {
        endpoints.indices.first { endpoints[$0].method == method && endpoints[$0].path.matches(path, caseSensitive: caseSensitive) }
    }
}
