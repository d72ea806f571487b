import Foundation

/// A meter's decimal value held exactly as whole units plus billionths, so that the database can
/// add and compare it as two 64-bit integers on both SQLite and PostgreSQL. Values with more than
/// nine fraction digits are rounded half-up to nine.
public struct MeterNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let nanosPerUnit: Int64 = 1_000_000_000

    /// The whole units, rounded down (towards minus infinity).
    public private(set) var units: Int64
    /// The billionths above `units`, in `0..<1_000_000_000` once normalized.
    public private(set) var nanos: Int64

    /// Sums may leave `nanos` above one unit; the value is normalized here.
    public init(units: Int64, nanos: Int64) {
        let carry = nanos >= 0 ? nanos / Self.nanosPerUnit : (nanos - Self.nanosPerUnit + 1) / Self.nanosPerUnit
        self.units = units + carry
        self.nanos = nanos - carry * Self.nanosPerUnit
    }

    public init(_ integer: Int) {
        self.init(units: Int64(integer), nanos: 0)
    }

    /// Parses a JSON number or a decimal string (`-12.5`, `3`, `1e3`); nil when it is not a
    /// finite number within ±9.2 × 10¹⁸.
    public init?(_ text: String) {
        if let exact = Self.plain(text) {
            self = exact
            return
        }
        guard !text.isEmpty, text.utf8.count <= 64,
              text.utf8.allSatisfy({ (48...57).contains($0) || $0 == 45 || $0 == 43 || $0 == 46 || $0 == 101 || $0 == 69 }),
              let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), decimal.isFinite
        else { return nil }
        self.init(decimal)
    }

    /// The common shapes, `-12` and `3.25` (at most 18 whole and 9 fraction digits), read
    /// without going through `Decimal`.
    private static func plain(_ text: String) -> MeterNumber? {
        var units: Int64 = 0, nanos: Int64 = 0
        var wholeDigits = 0, fractionDigits = 0, inFraction = false, negative = false
        for (offset, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "-") where offset == 0: negative = true
            case UInt8(ascii: ".") where !inFraction && wholeDigits > 0: inFraction = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let digit = Int64(byte - UInt8(ascii: "0"))
                if inFraction {
                    fractionDigits += 1
                    guard fractionDigits <= 9 else { return nil }
                    nanos = nanos * 10 + digit
                } else {
                    wholeDigits += 1
                    guard wholeDigits <= 18 else { return nil }
                    units = units * 10 + digit
                }
            default: return nil
            }
        }
        guard wholeDigits > 0, !inFraction || fractionDigits > 0 else { return nil }
        for _ in fractionDigits..<9 { nanos *= 10 }
        return negative ? MeterNumber(units: -units, nanos: -nanos) : MeterNumber(units: units, nanos: nanos)
    }

    public init?(_ decimal: Decimal) {
        guard decimal.magnitude < Decimal(Int64.max) else { return nil }
        var whole = Decimal()
        var value = decimal
        NSDecimalRound(&whole, &value, 0, .down)
        if whole > decimal { whole -= 1 }  // `.down` truncates towards zero; units round towards minus infinity
        var fraction = (decimal - whole) * Decimal(Self.nanosPerUnit)
        var rounded = Decimal()
        NSDecimalRound(&rounded, &fraction, 0, .plain)
        self.init(units: NSDecimalNumber(decimal: whole).int64Value, nanos: NSDecimalNumber(decimal: rounded).int64Value)
    }

    public static let zero = MeterNumber(units: 0, nanos: 0)

    public var decimal: Decimal {
        Decimal(units) + Decimal(nanos) / Decimal(Self.nanosPerUnit)
    }

    public var amount: Amount { Amount(decimal) }

    public var description: String { decimal.description }

    public static func + (lhs: MeterNumber, rhs: MeterNumber) -> MeterNumber {
        MeterNumber(units: lhs.units &+ rhs.units, nanos: lhs.nanos + rhs.nanos)
    }

    public static func < (lhs: MeterNumber, rhs: MeterNumber) -> Bool {
        (lhs.units, lhs.nanos) < (rhs.units, rhs.nanos)
    }
}
