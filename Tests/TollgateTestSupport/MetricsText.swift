import Foundation

/// Prometheus text exposition as tests read it: the value of one series, by name and labels.
/// Tests compare values before and after what they do: the registry is the process's, shared
/// by every test.
public struct MetricsText: Sendable {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    /// The value of the series `name` whose labels are exactly `labels`; 0 when it is absent.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = line[..<space]
            let (seriesName, seriesLabels) = Self.parse(series)
            if seriesName == name, seriesLabels == labels { return Double(line[line.index(after: space)...]) ?? .nan }
        }
        return 0
    }

    /// Every series of `name`, with its labels and value.
    public func series(_ name: String) -> [(labels: [String: String], value: Double)] {
        text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " ") else { return nil }
            let (seriesName, labels) = Self.parse(line[..<space])
            guard seriesName == name else { return nil }
            return (labels, Double(line[line.index(after: space)...]) ?? .nan)
        }
    }

    private static func parse(_ series: Substring) -> (String, [String: String]) {
        guard let open = series.firstIndex(of: "{"), series.last == "}" else { return (String(series), [:]) }
        var labels: [String: String] = [:]
        var rest = series[series.index(after: open)..<series.index(before: series.endIndex)]
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
            var index = rest.index(equals, offsetBy: 2)  // past `="`
            var value = ""
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\", rest.index(after: index) < rest.endIndex { index = rest.index(after: index) }
                value.append(rest[index])
                index = rest.index(after: index)
            }
            labels[key] = value
            rest = index < rest.endIndex ? rest[rest.index(after: index)...] : ""
        }
        return (String(series[..<open]), labels)
    }
}
