import Foundation
import Testing
@testable import TollgateWeb

@Suite("Bar charts drawn as SVG")
struct BarChartTests {
    @Test("text is escaped, bars are stacked and labelled")
    func escapesAndStacks() {
        let chart = BarChart(
            title: "Calls <per> day", labels: ["11-26", "11-27"],
            series: [.init(name: "<script>alert(1)</script>", values: [1, 2]), .init(name: "b&c", values: [3, 0])], unit: "calls")
        let svg = chart.svg()
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.hasSuffix("</svg>"))
        #expect(!svg.contains("<script>"))
        #expect(svg.contains("&lt;script&gt;"))
        #expect(svg.contains("b&amp;c"))
        #expect(svg.contains("role=\"img\""))
        #expect(svg.contains("11-27"))
        // Three non-zero parts, plus two legend swatches.
        #expect(svg.components(separatedBy: "<rect").count - 1 == 5)
        #expect(!svg.contains("style="))
    }

    @Test("the value axis has four round steps", arguments: [
        (Decimal(0), Decimal(4)), (Decimal(3), Decimal(4)), (Decimal(7), Decimal(8)), (Decimal(12), Decimal(20)),
        (Decimal(150), Decimal(200)), (Decimal(5000), Decimal(8000)), (Decimal(401), Decimal(800)),
    ])
    func scale(value: Decimal, expected: Decimal) {
        #expect(BarChart.scale(for: value) == expected)
    }

    @Test("series with nothing above zero are left out of the legend")
    func emptySeries() {
        let svg = BarChart(title: "T", labels: ["a"], series: [.init(name: "idle", values: [0]), .init(name: "busy", values: [2])], unit: "calls").svg()
        #expect(!svg.contains("idle"))
        #expect(svg.contains("busy"))
    }

    @Test("pixels are whole and never exceed the plot")
    func pixels() {
        #expect(BarChart.pixels(5, of: 10, span: 200) == 100)
        #expect(BarChart.pixels(10, of: 10, span: 200) == 200)
        #expect(BarChart.pixels(1, of: 3, span: 200) == 67)
        #expect(BarChart.pixels(1, of: 0, span: 200) == 0)
    }

    @Test("an empty chart still draws its axis")
    func empty() {
        let svg = BarChart(title: "Nothing", labels: [], series: [], unit: "calls").svg()
        #expect(svg.contains("No data."))
        #expect(svg.hasSuffix("</svg>"))
    }
}
