import Foundation
import Testing
import TollgateCore

@Suite("CivilTime")
struct CivilTimeTests {
    @Test("leap years", arguments: [
        (1900, false), (2000, true), (2024, true), (2023, false), (2100, false), (2400, true), (1600, true), (2028, true),
        (2029, false), (4, true), (0, true), (-4, true), (-100, false),
    ])
    func leapYear(year: Int, leap: Bool) {
        #expect(CivilTime.isLeapYear(year) == leap)
    }

    @Test("days in a month", arguments: [
        (2028, 2, 29), (2027, 2, 28), (1900, 2, 28), (2000, 2, 29), (2027, 1, 31), (2027, 4, 30), (2027, 6, 30),
        (2027, 7, 31), (2027, 8, 31), (2027, 9, 30), (2027, 11, 30), (2027, 12, 31),
    ])
    func daysIn(year: Int, month: Int, days: Int) {
        #expect(CivilTime.daysIn(year: year, month: month) == days)
    }

    @Test("days since the epoch", arguments: [
        (1970, 1, 1, 0), (1970, 1, 2, 1), (1969, 12, 31, -1), (2000, 1, 1, 10_957), (2000, 3, 1, 11_017),
        (2024, 2, 29, 19_782), (1900, 1, 1, -25_567), (2038, 1, 19, 24_855), (1600, 1, 1, -135_140),
    ])
    func daysSinceEpoch(year: Int, month: Int, day: Int, days: Int) {
        #expect(CivilTime.days(year: year, month: month, day: day) == days)
        #expect(CivilTime(year: year, month: month, day: day).date == utc(year, month, day))
    }

    @Test("from a date and back", arguments: [
        (1970, 1, 1, 0, 0, 0), (1969, 12, 31, 23, 59, 59), (2024, 2, 29, 23, 59, 59), (2000, 2, 29, 12, 0, 0),
        (1900, 3, 1, 0, 0, 1), (2100, 12, 31, 6, 30, 0), (2028, 2, 29, 0, 0, 0),
    ])
    func roundTrip(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        let date = utc(year, month, day, hour, minute, second)
        let civil = CivilTime(date)
        #expect(civil.year == year)
        #expect(civil.month == month)
        #expect(civil.day == day)
        #expect(civil.secondOfDay == Double(hour * 3600 + minute * 60 + second))
        #expect(civil.date == date)
        #expect(CivilTime(civil.date) == civil)
    }

    @Test("every day from 1896 to 2104 converts both ways and follows the previous one")
    func everyDay() {
        let first = CivilTime.days(year: 1896, month: 1, day: 1)
        let last = CivilTime.days(year: 2104, month: 12, day: 31)
        var previous = CivilTime(Date(timeIntervalSince1970: Double(first - 1) * 86_400))
        #expect(previous.year == 1895 && previous.month == 12 && previous.day == 31)
        var failures = 0
        for days in first...last {
            let civil = CivilTime(Date(timeIntervalSince1970: Double(days) * 86_400 + 43_200))
            let expectedNext: (Int, Int, Int) =
                if previous.day < CivilTime.daysIn(year: previous.year, month: previous.month) {
                    (previous.year, previous.month, previous.day + 1)
                } else if previous.month < 12 {
                    (previous.year, previous.month + 1, 1)
                } else {
                    (previous.year + 1, 1, 1)
                }
            if (civil.year, civil.month, civil.day) != expectedNext
                || CivilTime.days(year: civil.year, month: civil.month, day: civil.day) != days
                || civil.secondOfDay != 43_200 {
                failures += 1
            }
            previous = civil
        }
        #expect(failures == 0)
        #expect(last - first + 1 == 209 * 365 + 51)
    }

    @Test("adding months clamps the day and keeps the time", arguments: [
        ((2027, 1, 31), 1, 31, (2027, 2, 28)),
        ((2028, 1, 31), 1, 31, (2028, 2, 29)),
        ((2027, 2, 28), 1, 31, (2027, 3, 31)),
        ((2027, 3, 31), -1, 31, (2027, 2, 28)),
        ((2024, 1, 15), -1, 15, (2023, 12, 15)),
        ((2024, 1, 15), -13, 15, (2022, 12, 15)),
        ((2024, 12, 15), 1, 15, (2025, 1, 15)),
        ((2028, 2, 29), 12, 29, (2029, 2, 28)),
        ((2028, 2, 29), 48, 29, (2032, 2, 29)),
        ((2027, 5, 31), 1, 31, (2027, 6, 30)),
    ])
    func addingMonths(from: (Int, Int, Int), months: Int, anchorDay: Int, to: (Int, Int, Int)) {
        let start = CivilTime(year: from.0, month: from.1, day: from.2, secondOfDay: 3_723)
        let result = start.addingMonths(months, anchorDay: anchorDay)
        #expect(result == CivilTime(year: to.0, month: to.1, day: to.2, secondOfDay: 3_723))
    }
}

@Suite("BillingPeriods")
struct BillingPeriodTests {
    @Test("monthly periods anchored on the 31st clamp to short months and come back", arguments: [
        (0, utc(2027, 1, 31, 10)),
        (1, utc(2027, 2, 28, 10)),
        (2, utc(2027, 3, 31, 10)),
        (3, utc(2027, 4, 30, 10)),
        (4, utc(2027, 5, 31, 10)),
        (11, utc(2027, 12, 31, 10)),
        (12, utc(2028, 1, 31, 10)),
        (13, utc(2028, 2, 29, 10)),
        (14, utc(2028, 3, 31, 10)),
    ])
    func monthFrom31st(index: Int, expected: Date) {
        #expect(BillingPeriods.start(of: index, unit: .month, anchor: utc(2027, 1, 31, 10)) == expected)
    }

    @Test("in a leap year, the 31st of January is followed by the 29th of February")
    func monthInLeapYear() {
        let anchor = utc(2028, 1, 31)
        #expect(BillingPeriods.start(of: 1, unit: .month, anchor: anchor) == utc(2028, 2, 29))
        #expect(BillingPeriods.start(of: 2, unit: .month, anchor: anchor) == utc(2028, 3, 31))
    }

    @Test("yearly periods anchored on the 29th of February", arguments: [
        (0, utc(2028, 2, 29, 8, 15)),
        (1, utc(2029, 2, 28, 8, 15)),
        (2, utc(2030, 2, 28, 8, 15)),
        (3, utc(2031, 2, 28, 8, 15)),
        (4, utc(2032, 2, 29, 8, 15)),
    ])
    func yearFrom29thFebruary(index: Int, expected: Date) {
        #expect(BillingPeriods.start(of: index, unit: .year, anchor: utc(2028, 2, 29, 8, 15)) == expected)
    }

    @Test("daily and weekly periods are fixed lengths from the anchor", arguments: [
        (BillingPeriodUnit.day, 0, utc(2024, 3, 10, 12, 34, 56)),
        (.day, 1, utc(2024, 3, 11, 12, 34, 56)),
        (.day, 22, utc(2024, 4, 1, 12, 34, 56)),
        (.week, 1, utc(2024, 3, 17, 12, 34, 56)),
        (.week, 3, utc(2024, 3, 31, 12, 34, 56)),
        (.month, 1, utc(2024, 4, 10, 12, 34, 56)),
        (.month, 10, utc(2025, 1, 10, 12, 34, 56)),
        (.year, 1, utc(2025, 3, 10, 12, 34, 56)),
    ])
    func fixedUnits(unit: BillingPeriodUnit, index: Int, expected: Date) {
        #expect(BillingPeriods.start(of: index, unit: unit, anchor: utc(2024, 3, 10, 12, 34, 56)) == expected)
    }

    @Test("the period containing a date: start inclusive, end exclusive, first period before the anchor", arguments: [
        // Monthly from the 31st of January 2027.
        (BillingPeriodUnit.month, utc(2027, 1, 31), utc(2027, 1, 31), utc(2027, 1, 31), utc(2027, 2, 28)),
        (.month, utc(2027, 1, 31), utc(2027, 2, 27, 23, 59, 59), utc(2027, 1, 31), utc(2027, 2, 28)),
        (.month, utc(2027, 1, 31), utc(2027, 2, 28), utc(2027, 2, 28), utc(2027, 3, 31)),
        (.month, utc(2027, 1, 31), utc(2027, 3, 30, 23, 59, 59), utc(2027, 2, 28), utc(2027, 3, 31)),
        (.month, utc(2027, 1, 31), utc(2027, 3, 31), utc(2027, 3, 31), utc(2027, 4, 30)),
        (.month, utc(2027, 1, 31), utc(2029, 7, 15), utc(2029, 6, 30), utc(2029, 7, 31)),
        (.month, utc(2027, 1, 31), utc(2026, 12, 1), utc(2027, 1, 31), utc(2027, 2, 28)),
        (.month, utc(2027, 1, 31), utc(2027, 1, 30, 23, 59, 59), utc(2027, 1, 31), utc(2027, 2, 28)),
        // Daily from 06:00.
        (.day, utc(2024, 1, 1, 6), utc(2024, 1, 3, 5, 59, 59), utc(2024, 1, 2, 6), utc(2024, 1, 3, 6)),
        (.day, utc(2024, 1, 1, 6), utc(2024, 1, 3, 6), utc(2024, 1, 3, 6), utc(2024, 1, 4, 6)),
        (.day, utc(2024, 1, 1, 6), utc(2023, 6, 1), utc(2024, 1, 1, 6), utc(2024, 1, 2, 6)),
        // Weekly.
        (.week, utc(2024, 1, 1), utc(2024, 1, 15), utc(2024, 1, 15), utc(2024, 1, 22)),
        (.week, utc(2024, 1, 1), utc(2024, 1, 14, 23, 59, 59), utc(2024, 1, 8), utc(2024, 1, 15)),
        // Yearly from the 29th of February 2028.
        (.year, utc(2028, 2, 29), utc(2029, 2, 27, 23, 59, 59), utc(2028, 2, 29), utc(2029, 2, 28)),
        (.year, utc(2028, 2, 29), utc(2029, 2, 28), utc(2029, 2, 28), utc(2030, 2, 28)),
        (.year, utc(2028, 2, 29), utc(2032, 3, 1), utc(2032, 2, 29), utc(2033, 2, 28)),
    ])
    func periodContaining(unit: BillingPeriodUnit, anchor: Date, date: Date, start: Date, end: Date) {
        let period = BillingPeriods.period(containing: date, unit: unit, anchor: anchor)
        #expect(period == TimeSpan(start: start, end: end))
        if date >= anchor {
            #expect(period.contains(date))
        }
    }

    @Test("periods tile time without gaps or overlaps", arguments: BillingPeriodUnit.allCases)
    func tiling(unit: BillingPeriodUnit) {
        let anchor = utc(2027, 1, 31, 23, 30)
        let step: Double = switch unit {
        case .day: 3_917
        case .week: 27_000
        case .month: 150_000
        case .year: 1_900_000
        }
        var failures = 0
        var previous: TimeSpan?
        for index in 0..<600 {
            let date = anchor.addingTimeInterval(Double(index) * step)
            let period = BillingPeriods.period(containing: date, unit: unit, anchor: anchor)
            if !period.contains(date) || period.start >= period.end { failures += 1 }
            if let previous, period != previous, period.start != previous.end { failures += 1 }
            previous = period
        }
        #expect(failures == 0)
        #expect(previous.map { $0.start > anchor } == true)
    }

    @Test("TimeSpan is half-open")
    func timeSpan() {
        let span = TimeSpan(start: utc(2024, 1, 1), end: utc(2024, 2, 1))
        #expect(span.contains(utc(2024, 1, 1)))
        #expect(span.contains(utc(2024, 1, 31, 23, 59, 59)))
        #expect(!span.contains(utc(2024, 2, 1)))
        #expect(!span.contains(utc(2023, 12, 31, 23, 59, 59)))
    }
}

@Suite("Granularity")
struct GranularityTests {
    @Test("floor and next", arguments: [
        (Granularity.hour, utc(2024, 2, 29, 13, 45, 10), utc(2024, 2, 29, 13), utc(2024, 2, 29, 14)),
        (.day, utc(2024, 2, 29, 13, 45, 10), utc(2024, 2, 29), utc(2024, 3, 1)),
        (.month, utc(2024, 2, 29, 13, 45, 10), utc(2024, 2, 1), utc(2024, 3, 1)),
        (.month, utc(2024, 12, 31, 23, 59, 59), utc(2024, 12, 1), utc(2025, 1, 1)),
        (.hour, utc(1969, 12, 31, 23, 30), utc(1969, 12, 31, 23), utc(1970, 1, 1)),
    ])
    func floorAndNext(granularity: Granularity, date: Date, floor: Date, next: Date) {
        #expect(granularity.floor(date) == floor)
        #expect(granularity.next(floor) == next)
        #expect(granularity.floor(floor) == floor)
    }
}
