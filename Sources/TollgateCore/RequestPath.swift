/// The one normalized form of a request path that the gateway matches, meters and forwards.
///
/// Normalizing percent-decodes unreserved characters (`A-Z a-z 0-9 - . _ ~`), upper-cases the
/// hex digits of the escapes it keeps (so `%2F` stays encoded and is never a separator),
/// merges repeated slashes and resolves `.` and `..` segments. A `..` above the root is refused.
public enum RequestPath {
    /// The reasons a path is refused.
    public enum Failure: Error, Sendable, Equatable {
        case notAbsolute
        case malformedEscape
        case escapesRoot
    }

    /// Splits a request target into its normalized path and its raw query (without `?`).
    public static func split(target: String) throws(Failure) -> (path: String, query: String?) {
        let pathPart: Substring
        var query: String?
        // Found as a byte: a `?` followed by a combining mark is not a `Character` of its own.
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            pathPart = target[..<mark]
            query = String(target[target.utf8.index(after: mark)...])
        } else {
            pathPart = target[...]
        }
        return (try normalize(pathPart), query)
    }

    /// Normalizes a path (see the type's description).
    ///
    /// Segments are cut and compared as UTF-8 bytes, never as `Character`s: a `/` followed by a
    /// combining mark is one extended grapheme cluster, and cutting by characters would leave
    /// such a `/` (and a `..` before it) in the path unresolved, for the upstream to resolve.
    public static func normalize(_ raw: Substring) throws(Failure) -> String {
        guard raw.utf8.first == UInt8(ascii: "/") else { throw .notAbsolute }
        if isNormal(raw.utf8) { return String(raw) }
        let decoded = try decodeUnreserved(raw.utf8)
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        var output: [ArraySlice<UInt8>] = []
        for part in decoded.split(separator: slash, omittingEmptySubsequences: true) {
            if part.count == 1, part.first == dot { continue }
            if part.count == 2, part.allSatisfy({ $0 == dot }) {
                guard !output.isEmpty else { throw .escapesRoot }
                output.removeLast()
                continue
            }
            output.append(part)
        }
        // A path that ended in `/`, `/.` or `/..` names a directory: it keeps a trailing slash.
        let trailingSlash = decoded.last == slash || decoded.suffix(2).elementsEqual([slash, dot])
            || decoded.suffix(3).elementsEqual([slash, dot, dot])
        var bytes: [UInt8] = [slash]
        bytes.reserveCapacity(decoded.count)
        for (index, part) in output.enumerated() {
            if index > 0 { bytes.append(slash) }
            bytes.append(contentsOf: part)
        }
        if trailingSlash, !output.isEmpty { bytes.append(slash) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether an absolute path is its own normal form: nothing escaped, and no empty, `.` or
    /// `..` segment (a trailing `/` aside). Most request paths are, and need no rebuilding.
    private static func isNormal(_ path: Substring.UTF8View) -> Bool {
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        var segmentBytes = 0
        var segmentDots = 0
        var atStart = true
        for byte in path {
            if byte == UInt8(ascii: "%") { return false }
            if byte == slash {
                if !atStart, segmentBytes == 0 || (segmentBytes <= 2 && segmentDots == segmentBytes) { return false }
                atStart = false
                segmentBytes = 0
                segmentDots = 0
            } else {
                segmentBytes += 1
                if byte == dot { segmentDots += 1 }
            }
        }
        return !(segmentBytes > 0 && segmentBytes <= 2 && segmentDots == segmentBytes)
    }

    /// The path with the `;` parameters of every segment removed (`/invoice;v=1/7;x` becomes
    /// `/invoice/7`). Servlet containers, Spring and others ignore them when routing, so the
    /// gateway matches and meters the path without them (and forwards it as it came).
    public static func withoutParameters(_ path: Substring) -> Substring {
        guard path.utf8.contains(UInt8(ascii: ";")) else { return path }
        var output = ""
        output.reserveCapacity(path.utf8.count)
        var inParameter = false
        for character in path.unicodeScalars {
            switch character {
            case ";": inParameter = true
            case "/":
                inParameter = false
                output.unicodeScalars.append(character)
            default:
                if !inParameter { output.unicodeScalars.append(character) }
            }
        }
        return Substring(output)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func decodeUnreserved(_ bytes: Substring.UTF8View) throws(Failure) -> [UInt8] {
        // Fast path: nothing escaped.
        if !bytes.contains(UInt8(ascii: "%")) { return Array(bytes) }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                output.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                  let highValue = hexValue(high), let lowValue = hexValue(low) else {
                throw .malformedEscape
            }
            let value = highValue << 4 | lowValue
            if isUnreserved(value) {
                output.append(value)
            } else {
                output.append(UInt8(ascii: "%"))
                output.append(contentsOf: String(value, radix: 16, uppercase: true).leftPadded(to: 2).utf8)
            }
        }
        return output
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
