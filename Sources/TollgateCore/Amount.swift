import Foundation

/// An exact decimal quantity of money or usage, never a floating-point number.
/// Encoded as a decimal string such as `"29.00"`.
public struct Amount: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var value: Decimal
    /// The text the amount was written as ("29.00" keeps its zeros), when it was parsed.
    private var writtenAs: String?

    public init(_ value: Decimal) {
        self.value = value
    }

    public init(_ integer: Int) {
        self.value = Decimal(integer)
    }

    /// Parses `-?[0-9]+(.[0-9]+)?`; nil for anything else (no exponents, no spaces).
    public init?(_ text: String) {
        var digits = text.utf8[...]
        if digits.first == UInt8(ascii: "-") { digits = digits.dropFirst() }
        let parts = digits.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (48...57).contains($0) } }),
              parts.reduce(0, { $0 + $1.count }) <= 34,
              let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else {
            return nil
        }
        self.value = decimal
        self.writtenAs = text
    }

    public static let zero = Amount(Decimal.zero)

    public var isNegative: Bool { value < 0 }

    public var description: String {
        writtenAs ?? value.description
    }

    public static func == (lhs: Amount, rhs: Amount) -> Bool { lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }

    public static func < (lhs: Amount, rhs: Amount) -> Bool { lhs.value < rhs.value }
    public static func + (lhs: Amount, rhs: Amount) -> Amount { Amount(lhs.value + rhs.value) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let amount = Amount(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a decimal string: \(text)")
        }
        self = amount
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
