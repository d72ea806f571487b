import Foundation
import PropertyBased
import Testing
import TollgateCore

func decimal(_ text: String) -> Decimal { Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))! }
func amount(_ text: String) -> Amount { Amount(text)! }

/// Worked examples from public pricing documentation, and the boundary cases of DESIGN §3.7.
@Suite("Rating: worked examples")
struct RatingExampleTests {
    struct Example: Sendable, CustomTestStringConvertible {
        var name: String
        var model: PricingModel
        var quantity: String
        var expected: String
        var testDescription: String { name }
    }

    // https://zuplo.com/docs/articles/monetization/pricing-models: 0–1,000 at $0.10,
    // 1,001–10,000 at $0.05, 10,001+ at $0.01.
    static let zuploTiers = [
        Tier(upTo: amount("1000"), unit: amount("0.10")), Tier(upTo: amount("10000"), unit: amount("0.05")),
        Tier(upTo: nil, unit: amount("0.01")),
    ]
    // https://getlago.com/docs/guide/plans/charges/charge-models/volume: four tiers, each with a $10 fee.
    static let lagoVolume = [
        Tier(upTo: amount("10000"), unit: amount("0.0010"), flat: amount("10")),
        Tier(upTo: amount("50000"), unit: amount("0.0008"), flat: amount("10")),
        Tier(upTo: amount("100000"), unit: amount("0.0006"), flat: amount("10")),
        Tier(upTo: nil, unit: amount("0.0004"), flat: amount("10")),
    ]
    // https://docs.useautumn.com/documentation/modelling-pricing/graduated-pricing: first 1,000 at
    // $0.01, next 9,000 at $0.008, beyond at $0.005.
    static let autumnTiers = [
        Tier(upTo: amount("1000"), unit: amount("0.01")), Tier(upTo: amount("10000"), unit: amount("0.008")),
        Tier(upTo: nil, unit: amount("0.005")),
    ]
    static let flatTiers = [
        Tier(upTo: amount("1000"), unit: amount("0"), flat: amount("2")), Tier(upTo: nil, unit: amount("0.002"), flat: amount("5")),
    ]

    static let examples: [Example] = [
        Example(name: "Zuplo per unit: 100,000 × $0.001 = $100", model: .perUnit(unit: amount("0.001")), quantity: "100000", expected: "100"),
        Example(name: "Zuplo graduated: 15,000 units = $600", model: .graduated(tiers: zuploTiers), quantity: "15000", expected: "600"),
        Example(name: "Zuplo volume: 15,000 units = $150", model: .volume(tiers: zuploTiers), quantity: "15000", expected: "150"),
        Example(name: "Lago volume: 65,000 calls = $49", model: .volume(tiers: lagoVolume), quantity: "65000", expected: "49"),
        Example(name: "Autumn graduated: 15,000 requests = $107", model: .graduated(tiers: autumnTiers), quantity: "15000", expected: "107"),
        // Boundaries: up_to is inclusive.
        Example(name: "graduated at a bound stays in the tier", model: .graduated(tiers: zuploTiers), quantity: "1000", expected: "100"),
        Example(name: "graduated one past a bound", model: .graduated(tiers: zuploTiers), quantity: "1001", expected: "100.05"),
        Example(name: "volume at a bound stays in the tier", model: .volume(tiers: zuploTiers), quantity: "1000", expected: "100"),
        Example(name: "volume one past a bound", model: .volume(tiers: zuploTiers), quantity: "1001", expected: "50.05"),
        Example(name: "volume picks the tier by the ceiling of a fraction", model: .volume(tiers: zuploTiers), quantity: "1000.5", expected: "50.025"),
        Example(name: "graduated fractional units", model: .graduated(tiers: zuploTiers), quantity: "1000.5", expected: "100.025"),
        // Flat fees: every tier entered (graduated), the tier reached (volume), the first at zero usage.
        Example(name: "graduated flat fees of entered tiers", model: .graduated(tiers: flatTiers), quantity: "1500", expected: "8"),
        Example(name: "graduated zero usage pays the first flat fee", model: .graduated(tiers: flatTiers), quantity: "0", expected: "2"),
        Example(name: "volume zero usage pays the first flat fee", model: .volume(tiers: flatTiers), quantity: "0", expected: "2"),
        Example(name: "volume flat fee of the tier reached", model: .volume(tiers: flatTiers), quantity: "1500", expected: "8"),
        // https://getlago.com/docs/guide/plans/charges/charge-models/package: $5 per 100 units,
        // the first 100 free: 201 units cost $0 + $5 + $5 = $10.
        Example(name: "Lago package: 201 units = $10", model: .package(size: 100, amount: amount("5"), freeUnits: 100), quantity: "201", expected: "10"),
        // Package: ceil(max(0, units − free) / size) × amount.
        Example(name: "package rounds up", model: .package(size: 100, amount: amount("5"), freeUnits: 0), quantity: "101", expected: "10"),
        Example(name: "package exact", model: .package(size: 100, amount: amount("5"), freeUnits: 0), quantity: "200", expected: "10"),
        Example(name: "package free units", model: .package(size: 100, amount: amount("5"), freeUnits: 50), quantity: "150", expected: "5"),
        Example(name: "package within free units", model: .package(size: 100, amount: amount("5"), freeUnits: 50), quantity: "20", expected: "0"),
        Example(name: "package zero", model: .package(size: 100, amount: amount("5"), freeUnits: 0), quantity: "0", expected: "0"),
    ]

    @Test(arguments: examples)
    func charges(_ example: Example) {
        #expect(Rating.charge(example.model, quantity: decimal(example.quantity)) == decimal(example.expected))
    }

    @Test(arguments: [
        ("EUR", "0.125", "0.13"), ("EUR", "0.124", "0.12"), ("USD", "2.005", "2.01"), ("JPY", "10.5", "11"),
        ("JPY", "10.49", "10"), ("KWD", "1.0005", "1.001"), ("BHD", "1.0004", "1.000"), ("EUR", "0", "0"),
    ])
    func linesRoundHalfUpToTheMinorUnit(currency: String, exact: String, rounded: String) {
        #expect(Rating.round(decimal(exact), currency: currency) == decimal(rounded))
    }

    @Test func prorationIsBySecond() {
        let period = TimeSpan(start: Date(timeIntervalSince1970: 0), end: Date(timeIntervalSince1970: 30 * 86_400))
        let half = TimeSpan(start: Date(timeIntervalSince1970: 15 * 86_400), end: Date(timeIntervalSince1970: 30 * 86_400))
        #expect(Rating.prorate(decimal("29.00"), covered: half, of: period) == decimal("14.5"))
        let oneSecond = TimeSpan(start: Date(timeIntervalSince1970: 0), end: Date(timeIntervalSince1970: 1))
        #expect(Rating.round(Rating.prorate(decimal("2592000"), covered: oneSecond, of: period), currency: "EUR") == 1)
        #expect(Rating.prorate(decimal("10"), covered: TimeSpan(start: period.end, end: period.end.addingTimeInterval(5)), of: period) == 0)
    }
}

/// Properties that must hold for any usage.
@Suite("Rating: properties")
struct RatingPropertyTests {
    static let models: [PricingModel] = [
        .perUnit(unit: amount("0.0015")),
        .graduated(tiers: RatingExampleTests.zuploTiers),
        .graduated(tiers: RatingExampleTests.flatTiers),
        .package(size: 25, amount: amount("1.99"), freeUnits: 10),
    ]

    /// Tiers from random numbers: increasing bounds (the last open), unit prices of 0 to 4 decimals, some flat fees.
    static func tiers(_ numbers: [Int]) -> [Tier] {
        var bound = 0
        return numbers.enumerated().map { index, number in
            bound += 1 + number % 700
            let unit = Decimal(number % 997) / Decimal(sign: .plus, exponent: number % 5, significand: 1)
            let flat: Amount? = number % 3 == 0 ? Amount(Decimal(number % 11)) : nil
            return Tier(upTo: index == numbers.count - 1 ? nil : Amount(bound), unit: Amount(unit), flat: flat)
        }
    }

    /// The tier that unit number `unit` (1-based) falls in: the first whose inclusive bound holds it.
    static func tierIndex(_ tiers: [Tier], holding unit: Int) -> Int {
        tiers.firstIndex { $0.upTo.map { Decimal(unit) <= $0.value } ?? true } ?? tiers.count - 1
    }

    @Test func graduatedChargesEachUnitAtItsTiersRateAndTheFlatFeeOfEveryTierEntered() async {
        // A reference written from DESIGN §3.7 that prices unit by unit.
        await propertyCheck(count: 200, input: Gen.int(in: 0...100_000).array(of: 1...4), Gen.int(in: 0...2500)) { numbers, units in
            let tiers = Self.tiers(numbers)
            var expected = Decimal.zero
            var entered: Set<Int> = [0]
            if units > 0 {
                for unit in 1...units {
                    let index = Self.tierIndex(tiers, holding: unit)
                    expected += tiers[index].unit.value
                    entered.insert(index)
                }
            }
            for index in entered { expected += tiers[index].flat?.value ?? 0 }
            #expect(Rating.charge(.graduated(tiers: tiers), quantity: Decimal(units)) == expected, "\(numbers) \(units)")
        }
    }

    @Test func volumeChargesEveryUnitAtTheRateOfTheTierTheTotalFallsIn() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...100_000).array(of: 1...4), Gen.int(in: 0...2500)) { numbers, units in
            let tiers = Self.tiers(numbers)
            let tier = tiers[Self.tierIndex(tiers, holding: units)]
            var expected = tier.flat?.value ?? 0
            for _ in 0..<units { expected += tier.unit.value }
            #expect(Rating.charge(.volume(tiers: tiers), quantity: Decimal(units)) == expected, "\(numbers) \(units)")
        }
    }

    @Test func packageChargesWholePackagesOfTheUnitsBeyondTheFreeOnes() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...5000), Gen.int(in: 1...300), Gen.int(in: 0...400), Gen.int(in: 0...9999)) {
            units, size, free, cents in
            let price = Decimal(cents) / 100
            // Integer arithmetic: the packages started, each paid in full.
            let billable = max(0, units - free)
            let packages = (billable + size - 1) / size
            var expected = Decimal.zero
            for _ in 0..<packages { expected += price }
            #expect(Rating.charge(.package(size: size, amount: Amount(price), freeUnits: free), quantity: Decimal(units)) == expected)
        }
    }

    @Test func aRoundedLineIsWithinHalfAMinorUnitOfTheExactAmount() async {
        await propertyCheck(input: Gen.int(in: 0...10_000_000), Gen.int(in: 0...3), Gen.int(in: 0...2)) { units, index, currency in
            let code = ["EUR", "JPY", "KWD"][currency]
            let quantity = Decimal(units) / 100
            let exact = Rating.charge(Self.models[index], quantity: quantity)
            let rounded = Rating.round(exact, currency: code)
            let half = Decimal(sign: .plus, exponent: -(Currency.minorUnits(code) ?? 2), significand: 5) / 10
            #expect(abs(rounded - exact) <= half)
        }
    }

    @Test func moreUsageNeverCostsLess() async {
        await propertyCheck(input: Gen.int(in: 0...50_000), Gen.int(in: 0...5_000), Gen.int(in: 0...3)) { base, extra, index in
            let model = Self.models[index]
            #expect(Rating.charge(model, quantity: Decimal(base + extra)) >= Rating.charge(model, quantity: Decimal(base)))
        }
    }
}
