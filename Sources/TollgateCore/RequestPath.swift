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
        if let mark = target.firstIndex(of: "?") {
            pathPart = target[..<mark]
            query = String(target[target.index(after: mark)...])
        } else {
            pathPart = target[...]
        }
        return (try normalize(pathPart), query)
    }

    /// Normalizes a path (see the type's description).
    public static func normalize(_ raw: Substring) throws(Failure) -> String {
        guard raw.first == "/" else { throw .notAbsolute }
        let decoded = try decodeUnreserved(raw.utf8)
        var output: [Substring] = []
        let parts = decoded.split(separator: "/", omittingEmptySubsequences: true)
        for part in parts {
            switch part {
            case ".": continue
            case "..":
                guard !output.isEmpty else { throw .escapesRoot }
                output.removeLast()
            default: output.append(part)
            }
        }
        let trailingSlash = decoded.hasSuffix("/") || decoded.hasSuffix("/.") || decoded.hasSuffix("/..")
        var result = "/" + output.joined(separator: "/")
        if trailingSlash, !output.isEmpty { result += "/" }
        return result
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

    private static func decodeUnreserved(_ bytes: Substring.UTF8View) throws(Failure) -> String {
        // Fast path: nothing escaped.
        if !bytes.contains(UInt8(ascii: "%")) { return String(Substring(bytes)) }
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
        return String(decoding: output, as: UTF8.self)
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
