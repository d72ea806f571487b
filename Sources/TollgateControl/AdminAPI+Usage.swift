import Foundation
import Hummingbird
import TollgateCore
import TollgateStore

extension AdminAPI {
    /// The most steps a usage series may have.
    static let maxSeriesSteps = 2000

    func usage(_ request: Request, id: String) async throws -> Response {
        guard let subscription = try await store.subscription(id) else { throw StoreError.notFound("no subscription \"\(id)\"") }
        let query = request.uri.queryParameters
        var problems: [DocumentProblem] = []
        func time(_ name: String) -> Date? {
            guard let text = query[Substring(name)] else { return nil }
            guard let date = RFC3339.date(String(text)) else {
                problems.append(DocumentProblem(path: name, line: nil, message: "must be an RFC 3339 time"))
                return nil
            }
            return date
        }
        let period = try await currentPeriod(subscription)
        let from = time("from") ?? period.start
        let to = time("to") ?? period.end
        if from >= to { problems.append(DocumentProblem(path: "to", line: nil, message: "must be after from")) }
        var granularity: Granularity?
        if let text = query["granularity"] {
            granularity = Granularity(rawValue: String(text))
            if granularity == nil { problems.append(DocumentProblem(path: "granularity", line: nil, message: "must be hour, day or month")) }
        }
        if let granularity, from < to {
            var steps = 0
            var cursor = granularity.floor(from)
            while cursor < to && steps <= AdminAPI.maxSeriesSteps { cursor = granularity.next(cursor); steps += 1 }
            if steps > AdminAPI.maxSeriesSteps {
                problems.append(DocumentProblem(path: "granularity", line: nil, message: "more than \(AdminAPI.maxSeriesSteps) steps; use a coarser one or a shorter range"))
            }
        }
        guard problems.isEmpty else { throw APIError.invalid(problems) }

        let rows = try await store.meterRows(subscription: id, from: from, to: to)
        let endpoints = try await store.product(subscription.product)?.value.endpoints.map(\.identifier) ?? []
        let meters = try await store.allMeters().filter { !$0.archived }.map(\.value)
        let span = TimeSpan(start: from, end: to)
        let total = UsageSummary.summarize(rows, span: span, endpoints: endpoints, meters: meters)
        var entries: [(String, DocumentNode)] = [
            ("subscription", .text(id)),
            ("from", .text(RFC3339.string(from))),
            ("to", .text(RFC3339.string(to))),
        ]
        entries += AdminAPI.usageEntries(total)
        if let granularity {
            let series = UsageSummary.series(rows, span: span, granularity: granularity, endpoints: endpoints, meters: meters)
            entries.append(("series", DocumentNode(.list(series.map { step in
                .object([("start", .text(RFC3339.string(step.span.start))), ("end", .text(RFC3339.string(step.span.end)))]
                    + AdminAPI.usageEntries(step))
            }))))
        }
        return JSONResponse.make(.object(entries))
    }

    static func usageEntries(_ summary: UsageSummary) -> [(String, DocumentNode)] {
        [
            ("endpoints", .object(summary.endpoints.sorted { $0.key < $1.key }.map { ($0.key, .integer($0.value)) })),
            ("meters", .object(summary.meters.sorted { $0.key < $1.key }.map { ($0.key, .text($0.value.description)) })),
        ]
    }
}
