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
        guard !text.isEmpty, text.utf8.count <= 64,
              text.utf8.allSatisfy({ (48...57).contains($0) || $0 == 45 || $0 == 43 || $0 == 46 || $0 == 101 || $0 == 69 }),
              let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), decimal.isFinite
        else { return nil }
        self.init(decimal)
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
