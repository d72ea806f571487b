import Foundation
import Testing
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// The period close reads the meters of a page of subscriptions at once (`meterValues(_:)`).
@Suite("Meter values of a page")
struct MeterValuesTests {
    typealias Conformance = StoreConformanceTests

    @Test(arguments: TestDatabase.allCases)
    func aPageOfRequestsGetsWhatEachRequestGetsAlone(database: TestDatabase) async throws {
        let meters = [
            Meter(id: "pages", name: "Pages", source: .event("report"), aggregation: .sum, property: "metadata.pages"),
            Meter(id: "largest", name: "Largest", source: .event("report"), aggregation: .max, property: "metadata.pages"),
            Meter(id: "last-seats", name: "Seats", source: .event("report"), aggregation: .latest, property: "metadata.seats"),
            Meter(id: "users", name: "Users", source: .event("report"), aggregation: .uniqueCount, property: "user_id"),
            Meter(id: "reports", name: "Reports", source: .event("report"), aggregation: .count),
        ]
        try await database.withStore { store in
            try await Conformance.seedSubscription(store)
            for meter in meters { try await store.saveMeter(meter, mode: .create) }
            try await store.insertEvents([
                Conformance.action("a1", 0, #"{"user_id":"u1","metadata":{"pages":1.25,"seats":3}}"#),
                Conformance.action("a2", 4000, #"{"user_id":"u2","metadata":{"pages":"2.5","seats":7}}"#),
                Conformance.action("a3", 8000, #"{"user_id":"u1","metadata":{"pages":0.000000001,"seats":5}}"#),
            ])
            func span(_ from: TimeInterval, _ to: TimeInterval) -> TimeSpan {
                TimeSpan(start: Conformance.base.addingTimeInterval(from), end: Conformance.base.addingTimeInterval(to))
            }
            let requests = [
                MeterValuesRequest(subscription: "sub_1", span: span(-100, 86_400), meters: meters),
                MeterValuesRequest(subscription: "sub_1", span: span(-100, 1), meters: meters),
                MeterValuesRequest(subscription: "sub_1", span: span(-100, 86_400), meters: []),
                MeterValuesRequest(subscription: "sub_none", span: span(-100, 86_400), meters: meters),
                MeterValuesRequest(subscription: "sub_1", span: span(2800, 5000), meters: [meters[0], meters[4]]),
            ]
            let page = try await store.meterValues(requests)
            var alone: [[String: Decimal]] = []
            for request in requests {
                alone.append(try await store.meterValues(subscription: request.subscription, span: request.span, meters: request.meters))
            }
            #expect(page == alone)
            #expect(page[0] == ["pages": Decimal(string: "3.750000001")!, "largest": Decimal(string: "2.5")!, "last-seats": 5,
                                "users": 2, "reports": 3])
            #expect(page[2].isEmpty && page[3] == ["pages": 0, "largest": 0, "last-seats": 0, "users": 0, "reports": 0])
            #expect(page[4] == ["pages": Decimal(string: "2.5")!, "reports": 1])
        }
    }
}
