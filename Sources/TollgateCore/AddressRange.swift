/// An IP address range in CIDR notation (`10.0.0.0/8`, `::1/128`, or one address), as the
/// trusted-proxy setting names load balancers. Parsing and matching are pure: no resolver, no
/// socket calls.
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// The range's first address: 4 bytes for IPv4, 16 for IPv6.
    let network: [UInt8]
    /// How many leading bits an address must share with `network`.
    let prefixLength: Int
    public let description: String

    /// Parses `ADDRESS[/BITS]`; nil when it is not an IPv4 or IPv6 range.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.parse(parts[0]) else { return nil }
        let bits = address.count * 8
        var length = bits
        if parts.count == 2 {
            guard let given = Int(parts[1]), given >= 0, given <= bits, parts[1].allSatisfy(\.isASCII) else { return nil }
            length = given
        }
        network = address
        prefixLength = length
        description = text
    }

    /// Whether `address` (in its textual form) lies in the range. An IPv4-mapped IPv6 address
    /// (`::ffff:10.1.2.3`) counts as its IPv4 address.
    public func contains(_ address: Substring) -> Bool {
        guard var bytes = Self.parse(address) else { return false }
        if bytes.count == 16, network.count == 4, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            bytes = Array(bytes[12...])
        }
        guard bytes.count == network.count else { return false }
        var remaining = prefixLength
        for (byte, expected) in zip(bytes, network) where remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - take))
            if byte & mask != expected & mask { return false }
            remaining -= take
        }
        return true
    }

    /// The bytes of an IPv4 (`a.b.c.d`) or IPv6 address (with `::` and an embedded IPv4 tail;
    /// brackets and a zone are refused).
    static func parse(_ text: Substring) -> [UInt8]? {
        guard text.contains(":") else { return parseIPv4(text) }
        let gaps = text.ranges(of: "::")
        guard gaps.count <= 1 else { return nil }
        let words: [UInt16]
        if let gap = gaps.first {
            guard let head = ipv6Words(text[..<gap.lowerBound], mayEndInIPv4: false),
                  let tail = ipv6Words(text[gap.upperBound...], mayEndInIPv4: true),
                  head.count + tail.count <= 7 else { return nil }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = ipv6Words(text, mayEndInIPv4: true), all.count == 8 else { return nil }
            words = all
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    /// The 16-bit groups of a run of `h:h:h` (empty for an empty run).
    private static func ipv6Words(_ text: Substring, mayEndInIPv4: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        var words: [UInt16] = []
        for (index, piece) in pieces.enumerated() {
            if mayEndInIPv4, index == pieces.count - 1, piece.contains(".") {
                guard let v4 = parseIPv4(piece) else { return nil }
                words += [UInt16(v4[0]) << 8 | UInt16(v4[1]), UInt16(v4[2]) << 8 | UInt16(v4[3])]
                continue
            }
            guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit), let value = UInt16(piece, radix: 16) else {
                return nil
            }
            words.append(value)
        }
        return words
    }

    private static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }
}
