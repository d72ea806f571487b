import Foundation

/// Rating (DESIGN §3.7): what a quantity costs under a pricing model, money rounding, proration.
/// Pure functions on exact decimals.
public enum Rating {
    /// The exact (unrounded) charge for `quantity` units under `model`.
    public static func charge(_ model: PricingModel, quantity: Decimal) -> Decimal {
        let quantity = max(quantity, 0)
        switch model {
        case .perUnit(let unit):
            return quantity * unit.value
        case .graduated(let tiers):
            var total = Decimal.zero
            var lower = Decimal.zero
            for (index, tier) in tiers.enumerated() {
                // A tier is entered when usage goes past the previous bound; the first tier always is.
                guard index == 0 || quantity > lower else { break }
                let upper = tier.upTo?.value
                let units = max(0, min(quantity, upper ?? quantity) - lower)
                total += units * tier.unit.value + (tier.flat?.value ?? 0)
                guard let upper else { break }
                lower = upper
            }
            return total
        case .volume(let tiers):
            guard let tier = volumeTier(tiers, quantity: quantity) else { return 0 }
            return quantity * tier.unit.value + (tier.flat?.value ?? 0)
        case .package(let size, let amount, let freeUnits):
            let billable = max(0, quantity - Decimal(freeUnits))
            return ceiling(billable / Decimal(size)) * amount.value
        }
    }

    /// The tier a volume-priced quantity falls in: the first whose bound holds the quantity's
    /// ceiling (`up_to` is inclusive).
    static func volumeTier(_ tiers: [Tier], quantity: Decimal) -> Tier? {
        let whole = ceiling(quantity)
        return tiers.first { tier in tier.upTo.map { whole <= $0.value } ?? true } ?? tiers.last
    }

    /// Rounds half up (away from zero) to the currency's minor unit: 0 digits for JPY, 2 for
    /// EUR and USD, 3 for KWD and BHD.
    public static func round(_ amount: Decimal, currency: String) -> Decimal {
        round(amount, scale: Currency.minorUnits(currency) ?? 2)
    }

    public static func round(_ amount: Decimal, scale: Int) -> Decimal {
        var value = amount
        var result = Decimal()
        NSDecimalRound(&result, &value, scale, .plain)
        return result
    }

    /// The smallest whole number not below `value` (quantities are never negative).
    public static func ceiling(_ value: Decimal) -> Decimal {
        var input = max(value, 0)
        var result = Decimal()
        NSDecimalRound(&result, &input, 0, .up)
        return result
    }

    /// `amount` for the part of `period` that `covered` spans, by the second.
    public static func prorate(_ amount: Decimal, covered: TimeSpan, of period: TimeSpan) -> Decimal {
        let whole = Decimal(Int(period.end.timeIntervalSince(period.start).rounded()))
        let start = max(covered.start, period.start)
        let end = min(covered.end, period.end)
        guard whole > 0, end > start else { return 0 }
        let part = Decimal(Int(end.timeIntervalSince(start).rounded()))
        return amount * part / whole
    }
}

extension Rating {
    /// The sum of rounded lines.
    public static func total(_ lines: [InvoiceLine]) -> Decimal {
        lines.reduce(Decimal.zero) { $0 + $1.amount }
    }

    /// `amount` rounded to `scale` digits and written with exactly that many (`"29.00"`, `"-3.50"`, `"1200"`).
    public static func text(_ amount: Decimal, scale: Int) -> String {
        let rounded = round(amount, scale: scale)
        var text = rounded.description
        guard scale > 0 else { return text }
        let digits = text.firstIndex(of: ".").map { text.distance(from: $0, to: text.endIndex) - 1 }
        if digits == nil { text += "." }
        text += String(repeating: "0", count: scale - (digits ?? 0))
        return text
    }
}
