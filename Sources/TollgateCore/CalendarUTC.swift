import Foundation

/// A UTC calendar date and time of day, computed without Foundation's calendars.
public struct CivilTime: Sendable, Equatable {
    public var year: Int
    public var month: Int
    public var day: Int
    /// Seconds since midnight, with the fraction.
    public var secondOfDay: Double

    public init(year: Int, month: Int, day: Int, secondOfDay: Double = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.secondOfDay = secondOfDay
    }

    public init(_ date: Date) {
        let seconds = date.timeIntervalSince1970
        let days = Int((seconds / 86_400).rounded(.down))
        let (year, month, day) = Self.civil(fromDays: days)
        self.init(year: year, month: month, day: day, secondOfDay: seconds - Double(days) * 86_400)
    }

    public var date: Date {
        Date(timeIntervalSince1970: Double(Self.days(year: year, month: month, day: day)) * 86_400 + secondOfDay)
    }

    public static func isLeapYear(_ year: Int) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    public static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The same day and time `months` months later, the day clamped to the month's length
    /// (the 31st becomes the 30th or the 28th/29th, and comes back on longer months).
    public func addingMonths(_ months: Int, anchorDay: Int) -> CivilTime {
        let total = year * 12 + (month - 1) + months
        let newYear = total >= 0 ? total / 12 : (total - 11) / 12
        let newMonth = total - newYear * 12 + 1
        let newDay = min(anchorDay, Self.daysIn(year: newYear, month: newMonth))
        return CivilTime(year: newYear, month: newMonth, day: newDay, secondOfDay: secondOfDay)
    }
}

/// A half-open span of time `[start, end)`.
public struct TimeSpan: Sendable, Equatable {
    public var start: Date
    public var end: Date

    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }

    public func contains(_ date: Date) -> Bool { start <= date && date < end }
}

/// Billing periods anchored at a subscription's start.
public enum BillingPeriods {
    /// The start of the `index`-th period (0 is the first) after `anchor`.
    public static func start(of index: Int, unit: BillingPeriodUnit, anchor: Date) -> Date {
        switch unit {
        case .day: return anchor.addingTimeInterval(Double(index) * 86_400)
        case .week: return anchor.addingTimeInterval(Double(index) * 7 * 86_400)
        case .month, .year:
            let civil = CivilTime(anchor)
            let months = unit == .month ? index : index * 12
            return civil.addingMonths(months, anchorDay: civil.day).date
        }
    }

    /// The period that contains `date` (the first period for dates before the anchor).
    public static func period(containing date: Date, unit: BillingPeriodUnit, anchor: Date) -> TimeSpan {
        guard date > anchor else {
            return TimeSpan(start: anchor, end: start(of: 1, unit: unit, anchor: anchor))
        }
        let elapsed = date.timeIntervalSince(anchor)
        var index: Int
        switch unit {
        case .day: index = Int(elapsed / 86_400)
        case .week: index = Int(elapsed / (7 * 86_400))
        case .month: index = Int(elapsed / (31 * 86_400))
        case .year: index = Int(elapsed / (366 * 86_400))
        }
        while start(of: index + 1, unit: unit, anchor: anchor) <= date { index += 1 }
        while index > 0, start(of: index, unit: unit, anchor: anchor) > date { index -= 1 }
        return TimeSpan(start: start(of: index, unit: unit, anchor: anchor), end: start(of: index + 1, unit: unit, anchor: anchor))
    }
}
