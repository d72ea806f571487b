import Foundation
import TollgateCore

/// A bar chart drawn on the server as SVG: one bar per label, stacked by series, with a value
/// axis, grid lines, labels and a legend. Every piece of text in it is escaped; numbers are
/// computed in `Decimal`, never floating point.
public struct BarChart: Sendable {
    /// One stacked part of every bar.
    public struct Series: Sendable {
        public var name: String
        /// One value per label.
        public var values: [Decimal]

        public init(name: String, values: [Decimal]) {
            self.name = name
            self.values = values
        }
    }

    public var title: String
    /// Under each bar (e.g. `11-27`).
    public var labels: [String]
    public var series: [Series]
    /// What a value is, for the axis and the description (e.g. `calls`, `EUR`).
    public var unit: String

    public init(title: String, labels: [String], series: [Series], unit: String) {
        self.title = title
        self.labels = labels
        self.series = series
        self.unit = unit
    }

    static let width = 720
    static let height = 260
    static let left = 56
    static let right = 12
    static let top = 16
    static let bottom = 44
    /// Colours from the stylesheet's palette, as classes (no inline style: the CSP forbids it).
    static let palette = 6

    /// The `<svg>` element.
    public func svg() -> String {
        let plotWidth = Self.width - Self.left - Self.right
        let plotHeight = Self.height - Self.top - Self.bottom
        // Series without a value above zero take no room in the legend.
        let series = self.series.filter { $0.values.contains { $0 > 0 } }
        let totals = labels.indices.map { index in series.reduce(Decimal.zero) { $0 + max(0, value($1, index)) } }
        let scale = Self.scale(for: totals.max() ?? 0)
        var out = ""
        let titleID = "chart-" + Self.slug(title)
        out += "<svg class=\"chart\" viewBox=\"0 0 \(Self.width) \(Self.height)\" role=\"img\" aria-labelledby=\"\(titleID)-t \(titleID)-d\" xmlns=\"http://www.w3.org/2000/svg\">"
        out += "<title id=\"\(titleID)-t\">\(Self.escape(title))</title>"
        out += "<desc id=\"\(titleID)-d\">\(Self.escape(description(totals: totals, series: series)))</desc>"
        // Grid lines and value labels: 0, ¼, ½, ¾ and the whole scale.
        for step in 0...4 {
            let value = scale * Decimal(step) / 4
            let y = Self.top + plotHeight - Self.pixels(value, of: scale, span: plotHeight)
            out += "<line class=\"grid\" x1=\"\(Self.left)\" y1=\"\(y)\" x2=\"\(Self.width - Self.right)\" y2=\"\(y)\"/>"
            out += "<text class=\"axis\" x=\"\(Self.left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(Self.escape(Self.short(value)))</text>"
        }
        out += "<text class=\"axis unit\" x=\"4\" y=\"\(Self.top - 4)\">\(Self.escape(unit))</text>"
        guard !labels.isEmpty else { return out + "</svg>" }
        let slot = plotWidth / labels.count
        let barWidth = min(48, max(2, slot * 7 / 10))
        // At most about twelve labels under the axis.
        let every = max(1, (labels.count + 11) / 12)
        for (index, label) in labels.enumerated() {
            let x = Self.left + index * slot + (slot - barWidth) / 2
            var base = Self.top + plotHeight
            for (number, part) in series.enumerated() {
                let amount = max(0, value(part, index))
                guard amount > 0 else { continue }
                let height = max(1, Self.pixels(amount, of: scale, span: plotHeight))
                base -= height
                out += "<rect class=\"bar s\(number % Self.palette)\" x=\"\(x)\" y=\"\(base)\" width=\"\(barWidth)\" height=\"\(height)\">"
                out += "<title>\(Self.escape("\(label) · \(part.name): \(amount) \(unit)"))</title></rect>"
            }
            if index % every == 0 {
                out += "<text class=\"axis\" x=\"\(x + barWidth / 2)\" y=\"\(Self.top + plotHeight + 16)\" text-anchor=\"middle\">\(Self.escape(label))</text>"
            }
        }
        out += "<line class=\"baseline\" x1=\"\(Self.left)\" y1=\"\(Self.top + plotHeight)\" x2=\"\(Self.width - Self.right)\" y2=\"\(Self.top + plotHeight)\"/>"
        // The legend, along the bottom.
        var legendX = Self.left
        for (number, part) in series.enumerated() {
            out += "<rect class=\"bar s\(number % Self.palette)\" x=\"\(legendX)\" y=\"\(Self.height - 14)\" width=\"10\" height=\"10\"/>"
            out += "<text class=\"legend\" x=\"\(legendX + 14)\" y=\"\(Self.height - 5)\">\(Self.escape(part.name))</text>"
            legendX += 24 + 7 * min(part.name.count, 30)
        }
        return out + "</svg>"
    }

    private func value(_ series: Series, _ index: Int) -> Decimal {
        series.values.indices.contains(index) ? series.values[index] : 0
    }

    /// What the chart shows, in words (read by screen readers).
    private func description(totals: [Decimal], series: [Series]) -> String {
        let sum = totals.reduce(Decimal.zero, +)
        guard let first = labels.first, let last = labels.last else { return "No data." }
        guard !series.isEmpty else { return "Nothing from \(first) to \(last)." }
        let peak = totals.max() ?? 0
        return "\(sum) \(unit) in total from \(first) to \(last); the highest bar is \(peak) \(unit)."
    }

    /// The top of the value axis: four round steps (1, 2 or 5 × 10ⁿ, at least 1) that reach `value`.
    static func scale(for value: Decimal) -> Decimal {
        let quarter = value / 4
        guard quarter > 1 else { return 4 }
        var power: Decimal = 1
        while true {
            for step in [1, 2, 5] as [Decimal] where step * power >= quarter { return 4 * step * power }
            power *= 10
        }
    }

    /// `value` as whole pixels of `span`, for a scale of `scale`.
    static func pixels(_ value: Decimal, of scale: Decimal, span: Int) -> Int {
        guard scale > 0 else { return 0 }
        let exact = value * Decimal(span) / scale
        return NSDecimalNumber(decimal: Rating.round(exact, scale: 0)).intValue
    }

    /// A compact axis label: `1500` → `1.5k`, `2000000` → `2M`.
    static func short(_ value: Decimal) -> String {
        if value >= 1_000_000 { return "\(Rating.round(value / 1_000_000, scale: 1))M" }
        if value >= 10_000 { return "\(Rating.round(value / 1000, scale: 1))k" }
        return "\(Rating.round(value, scale: 2))"
    }

    static func slug(_ text: String) -> String {
        String(text.lowercased().unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "-" })
    }

    /// Text and attribute values safe inside SVG/HTML.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
