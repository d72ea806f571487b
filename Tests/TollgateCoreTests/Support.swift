import Foundation
import TollgateCore

/// A UTC instant computed with Foundation's Gregorian calendar, an oracle independent of `CivilTime`.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Date {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    return calendar.date(from: components)!
}

/// The problems `Catalog.parse(yaml:)` reports for `yaml`, or an empty list when it parses.
func catalogProblems(_ yaml: String) -> [DocumentProblem] {
    do {
        _ = try Catalog.parse(yaml: yaml)
        return []
    } catch {
        return error.problems
    }
}

/// The problems `DocumentNode.parseJSON` reports for `text`, or nil when it parses.
func jsonProblems(_ text: String) -> [DocumentProblem]? {
    do {
        _ = try DocumentNode.parseJSON(Array(text.utf8))
        return nil
    } catch {
        return error.problems
    }
}

/// Parses JSON text that the test knows to be valid.
func json(_ text: String) throws -> DocumentNode {
    try DocumentNode.parseJSON(Array(text.utf8))
}

/// A problem a test expects: where, and a fragment of its message.
struct ExpectedProblem: Sendable, CustomStringConvertible {
    var line: Int?
    var path: String
    var fragment: String

    init(_ line: Int?, _ path: String, _ fragment: String) {
        self.line = line
        self.path = path
        self.fragment = fragment
    }

    func matches(_ problem: DocumentProblem) -> Bool {
        problem.line == line && problem.path == path && problem.message.contains(fragment)
    }

    var description: String { "line \(line.map(String.init) ?? "nil"): \(path): …\(fragment)…" }
}
