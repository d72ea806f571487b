import Foundation
import Testing
import TollgateCore

/// Which periods are due and what their invoices hold (DESIGN §3.7).
@Suite("Invoicing")
struct InvoicingTests {
    static let starter = Plan(
        id: "starter", product: "invoices", name: "Starter", currency: "EUR", period: .month,
        prices: [.flat(amount: amount("29.00")), .setup(amount: amount("99")),
                 .prepaid(PrepaidQuota(endpoint: "create", quota: 1000, window: .month, amount: amount("10"))),
                 .usage(UsagePrice(meter: "reads", model: .graduated(tiers: RatingExampleTests.flatTiers)))])
    static let pro = Plan(
        id: "pro", product: "invoices", name: "Pro", currency: "EUR", period: .month,
        prices: [.flat(amount: amount("90")), .usage(UsagePrice(meter: "reads", model: .perUnit(unit: amount("0.001"))))])

    static func timeline(_ start: Date, terminated: Date? = nil, changes: [(Date, Plan)] = []) -> BillingTimeline {
        BillingTimeline(
            startedAt: start, terminatedAt: terminated,
            plans: [.init(from: start, plan: starter)] + changes.map { .init(from: $0.0, plan: $0.1) })
    }

    @Test func theFirstInvoiceIsDueAtTheStartAndEachPeriodWhenItEnds() {
        let start = utc(2026, 1, 31, 9)
        let timeline = Self.timeline(start)
        #expect(Invoicing.duePeriods(timeline, invoicedThrough: nil, at: start.addingTimeInterval(-1)).isEmpty)
        #expect(Invoicing.duePeriods(timeline, invoicedThrough: nil, at: start) == [TimeSpan(start: start, end: start)])
        // Anchored at the 31st: the last day of shorter months, then the 31st again.
        let due = Invoicing.duePeriods(timeline, invoicedThrough: nil, at: utc(2026, 4, 1))
        #expect(due.map(\.end) == [start, utc(2026, 2, 28, 9), utc(2026, 3, 31, 9)])
        #expect(due[1].start == start && due[2].start == utc(2026, 2, 28, 9))
        // Nothing twice: from what is already invoiced.
        #expect(Invoicing.duePeriods(timeline, invoicedThrough: utc(2026, 2, 28, 9), at: utc(2026, 4, 1)).map(\.end) == [utc(2026, 3, 31, 9)])
        #expect(Invoicing.duePeriods(timeline, invoicedThrough: utc(2026, 3, 31, 9), at: utc(2026, 4, 1)).isEmpty)
    }

    @Test func graceDelaysClosingButNotTheFirstInvoice() {
        let start = utc(2026, 3, 1)
        let timeline = Self.timeline(start)
        let justAfter = utc(2026, 4, 1, 0, 30)
        #expect(Invoicing.duePeriods(timeline, invoicedThrough: nil, at: justAfter, grace: 3600).count == 1)
        #expect(Invoicing.duePeriods(timeline, invoicedThrough: nil, at: justAfter, grace: 1800).count == 2)
    }

    @Test func terminationEndsTheLastPeriodEarly() {
        let start = utc(2026, 3, 1)
        let timeline = Self.timeline(start, terminated: utc(2026, 4, 11))
        let due = Invoicing.duePeriods(timeline, invoicedThrough: nil, at: utc(2026, 9, 1))
        #expect(due.map(\.end) == [start, utc(2026, 4, 1), utc(2026, 4, 11)])
        #expect(Invoicing.duePeriods(timeline, invoicedThrough: utc(2026, 4, 11), at: utc(2026, 9, 1)).isEmpty)
        // Terminated exactly at a boundary: that period's invoice is the last one.
        let atBoundary = Self.timeline(start, terminated: utc(2026, 4, 1))
        #expect(Invoicing.duePeriods(atBoundary, invoicedThrough: nil, at: utc(2026, 9, 1)).map(\.end) == [start, utc(2026, 4, 1)])
    }

    @Test func theFirstInvoiceHoldsTheSetupAndTheFirstPeriodsFees() {
        let start = utc(2026, 3, 1)
        let lines = Invoicing.lines(Self.timeline(start), period: TimeSpan(start: start, end: start), usage: [:])
        #expect(lines.map(\.description) == ["Starter: setup", "Starter (month)", "Starter: 1000 prepaid calls per month"])
        #expect(lines.map(\.amount) == [decimal("99"), decimal("29"), decimal("10")])
        #expect(lines.allSatisfy { $0.span == TimeSpan(start: start, end: utc(2026, 4, 1)) })
    }

    @Test func aClosedPeriodBillsUsageInArrearsAndTheNextPeriodInAdvance() {
        let start = utc(2026, 3, 1)
        let period = TimeSpan(start: start, end: utc(2026, 4, 1))
        let lines = Invoicing.lines(Self.timeline(start), period: period, usage: ["reads": decimal("1500")])
        #expect(lines.map(\.amount) == [decimal("8"), decimal("29"), decimal("10")])
        #expect(lines[0].quantity == 1500 && lines[0].span == period)
        #expect(lines[1].span == TimeSpan(start: utc(2026, 4, 1), end: utc(2026, 5, 1)))
        #expect(Rating.total(lines) == decimal("47"))
    }

    @Test func aFinalInvoiceBillsUsageSoFarAndNothingAhead() {
        let start = utc(2026, 3, 1)
        let final = TimeSpan(start: start, end: utc(2026, 3, 11))
        let lines = Invoicing.lines(Self.timeline(start, terminated: final.end), period: final, usage: ["reads": decimal("10")])
        #expect(lines.map(\.amount) == [decimal("2")])
        #expect(lines[0].span == final)
    }

    @Test func aPlanChangeProratesFeesByTheSecondAndRatesUsageAtTheNewPlan() {
        // 30-day period; the change after 10 days leaves 20 days: 2/3 of each fee.
        let start = utc(2026, 4, 1)
        let change = utc(2026, 4, 11)
        let period = TimeSpan(start: start, end: utc(2026, 5, 1))
        let lines = Invoicing.lines(Self.timeline(start, changes: [(change, Self.pro)]), period: period, usage: ["reads": decimal("3000")])
        #expect(lines.map(\.description) == [
            "Pro: reads (per_unit)",
            "Starter (month), unused time from 2026-04-11T00:00:00Z",
            "Starter: 1000 prepaid calls per month, unused time from 2026-04-11T00:00:00Z",
            "Pro (month), remaining time from 2026-04-11T00:00:00Z",
            "Pro (month)",
        ])
        #expect(lines.map(\.amount) == [decimal("3"), decimal("-19.33"), decimal("-6.67"), decimal("60"), decimal("90")])
        #expect(lines[1].quantity == decimal("-0.666667"))
        #expect(Rating.total(lines) == decimal("127"))
    }

    @Test func aChangeInsideALaterPeriodIsProratedThere() {
        let start = utc(2026, 4, 1)
        let timeline = Self.timeline(start, changes: [(utc(2026, 5, 16), Self.pro)])
        let april = Invoicing.lines(timeline, period: TimeSpan(start: start, end: utc(2026, 5, 1)), usage: [:])
        #expect(april.map(\.plan) == ["starter", "starter", "starter"])
        let may = Invoicing.lines(timeline, period: TimeSpan(start: utc(2026, 5, 1), end: utc(2026, 6, 1)), usage: [:])
        // 16 of 31 days remain.
        #expect(may.map(\.amount) == [decimal("0"), decimal("-14.97"), decimal("-5.16"), decimal("46.45"), decimal("90")])
        #expect(Invoicing.meters(timeline, period: TimeSpan(start: utc(2026, 5, 1), end: utc(2026, 6, 1))) == ["reads"])
    }

    @Test func statusesMoveForwardOnly() {
        #expect(InvoiceStatus.draft.next == [.finalized, .void])
        #expect(InvoiceStatus.finalized.next == [.paid, .void])
        #expect(InvoiceStatus.paid.next.isEmpty && InvoiceStatus.void.next.isEmpty)
    }

    @Test(arguments: [("EUR", "29", "29.00"), ("EUR", "-3.5", "-3.50"), ("JPY", "1200.5", "1201"), ("KWD", "1.5", "1.500"),
                      ("USD", "0.125", "0.13"), ("EUR", "0", "0.00")])
    func moneyIsWrittenWithTheCurrencysDigits(currency: String, value: String, text: String) {
        #expect(Rating.text(decimal(value), scale: Currency.minorUnits(currency)!) == text)
    }
}
