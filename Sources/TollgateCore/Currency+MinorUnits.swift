import Foundation

extension Currency {
    /// An amount as a whole number of the currency's minor unit (cents for EUR, yen for JPY, fils
    /// for KWD): `12.34` EUR is `1234`, `500` JPY is `500`, `1.234` KWD is `1234`. Nil when the
    /// currency is unknown, or the amount has more digits than the minor unit or does not fit.
    /// Exact: decimal arithmetic only, never floating point.
    public static func minorAmount(_ amount: Decimal, currency: String) -> Int? {
        guard let digits = minorUnits(currency.uppercased()) else { return nil }
        var scaled = amount
        for _ in 0..<digits { scaled *= 10 }
        var rounded = Decimal()
        var copy = scaled
        NSDecimalRound(&rounded, &copy, 0, .plain)
        guard rounded == scaled, rounded.magnitude < Decimal(Int64.max) else { return nil }
        return Int(NSDecimalNumber(decimal: rounded).int64Value)
    }
}
