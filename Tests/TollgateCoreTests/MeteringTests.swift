import Foundation
import PropertyBased
import Testing
import TollgateCore

@Suite("Collector times")
struct CollectorTimeTests {
    /// The shapes Moesif's SDKs send (Python's `isoformat()`, JavaScript's `toISOString()`) and RFC 3339.
    @Test(arguments: [
        ("2026-11-21T21:26:39", 1_795_296_399.0),
        ("2026-11-21T21:26:39.580813", 1_795_296_399.580813),
        ("2026-11-21T21:26:39.914Z", 1_795_296_399.914),
        ("2026-11-21T21:26:39.624947+00:00", 1_795_296_399.624947),
        ("2026-11-21T22:26:39+01:00", 1_795_296_399.0),
        ("2026-11-21T16:26:39-0500", 1_795_296_399.0),
        ("2026-11-21 21:26:39.123456789", 1_795_296_399.123456),
    ])
    func readsEveryFormatTheSDKsSend(text: String, seconds: Double) throws {
        let date = try #require(CollectorTime.parse(text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.000_001)
    }

    @Test(arguments: ["", "2026-11-21", "2026-13-01T00:00:00", "2026-02-30T00:00:00", "2026-11-21T21:26:39.", "2026-11-21T21:26:39+1", "yesterday", "2026-11-21T21:26:39Zjunk"])
    func refusesWhatIsNotATime(text: String) {
        #expect(CollectorTime.parse(text) == nil)
    }
}

@Suite("Meter numbers and deltas")
struct MeteringTests {
    @Test func numbersAreExactToNineDigitsAndNormalized() throws {
        #expect(MeterNumber("1.25")?.decimal == Decimal(string: "1.25"))
        #expect(MeterNumber("-1.25").map { ($0.units, $0.nanos) }! == (-2, 750_000_000))
        #expect(MeterNumber("1e3")?.decimal == 1000)
        #expect(MeterNumber("0.0000000005")?.nanos == 1)  // rounded half-up to nine digits
        #expect(MeterNumber("abc") == nil)
        #expect(MeterNumber("") == nil)
        let sum = try #require(MeterNumber("0.6")) + #require(MeterNumber("0.7"))
        #expect((sum.units, sum.nanos) == (1, 300_000_000))
        #expect(MeterNumber(units: 0, nanos: 2_500_000_000) == MeterNumber("2.5"))
    }

    @Test("plain numbers are read without Decimal, to the same value", arguments: [
        "0", "-0", "7", "-7", "1.5", "-1.5", "-0.000000001", "123456789012345678", "-123456789012345678.999999999",
        "0.1234567891", "1234567890123456789", "5.", ".5", "+5", "1e2", "1.2.3", "--1", "1-", "12a",
    ])
    func plainNumbersMatchDecimal(text: String) {
        let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
        let viaDecimal = decimal.flatMap { $0.isFinite && text.allSatisfy { "0123456789-+.eE".contains($0) } ? MeterNumber($0) : nil }
        #expect(MeterNumber(text) == viaDecimal)
    }

    static func call(_ id: String, method: String = "GET", status: Int, endpoint: String? = "item", weight: Int = 1) -> UsageEvent {
        UsageEvent(
            id: id, source: .gateway, occurredAt: Date(timeIntervalSince1970: 1_790_000_000), timeFromSender: true, subscription: "sub",
            customer: "acme", product: "shop", endpoint: endpoint, method: method, path: "/items/1", status: status,
            latencyMicroseconds: 1500, requestBytes: 10, responseBytes: 200, billable: true, weight: weight,
            bucket: Date(timeIntervalSince1970: 1_789_999_200))
    }

    static func total(_ meter: Meter, _ events: [UsageEvent]) -> Amount {
        let deltas = Metering.deltas(events, meters: [meter])
        let aggregates = deltas.aggregates.filter { $0.key.meter == meter.id }.map(\.value)
        return Metering.value(of: meter, aggregates: aggregates, distinctValues: deltas.uniques.count)
    }

    @Test func filtersOnEndpointMethodAndStatus() {
        let events = [
            Self.call("1", status: 200), Self.call("2", status: 404, weight: 3), Self.call("3", method: "POST", status: 201),
            Self.call("4", status: 503), Self.call("5", status: 200, endpoint: nil),
        ]
        let byStatus = Meter(id: "ok", name: "OK", source: .apiCalls, filter: MeterFilter(status: StatusFilter("<500")), aggregation: .count)
        #expect(Self.total(byStatus, events) == Amount(1 + 3 + 1 + 1))
        let byMethod = Meter(id: "gets", name: "GETs", source: .apiCalls, filter: MeterFilter(endpoint: "item", method: "GET"), aggregation: .count)
        #expect(Self.total(byMethod, events) == Amount(1 + 3 + 1))
        let bytes = Meter(id: "bytes", name: "Bytes", source: .apiCalls, aggregation: .sum, property: "response.bytes")
        #expect(Self.total(bytes, events) == Amount(1000))
        let slowest = Meter(id: "slowest", name: "Slowest", source: .apiCalls, aggregation: .max, property: "latency_ms")
        #expect(Self.total(slowest, events) == Amount(Decimal(string: "1.5")!))
        let methods = Meter(id: "methods", name: "Methods", source: .apiCalls, aggregation: .uniqueCount, property: "method")
        #expect(Self.total(methods, events) == Amount(2))
        // Actions never feed api_calls meters, and unbillable calls feed nothing.
        var refused = Self.call("6", status: 401)
        refused.billable = false
        #expect(Self.total(byStatus, [refused]) == Amount(0))
        #expect(Metering.deltas([refused], meters: [byStatus]).isEmpty)
    }

    @Test func aBatchAddsUpAsItsEventsOneByOne() async {
        let meters = [
            Meter(id: "ok", name: "OK", source: .apiCalls, filter: MeterFilter(status: StatusFilter("2xx")), aggregation: .count),
            Meter(id: "bytes", name: "Bytes", source: .apiCalls, aggregation: .sum, property: "response.bytes"),
            Meter(id: "slowest", name: "Slowest", source: .apiCalls, aggregation: .max, property: "latency_ms"),
            Meter(id: "last", name: "Last", source: .apiCalls, aggregation: .latest, property: "latency_ms"),
            Meter(id: "statuses", name: "Statuses", source: .apiCalls, aggregation: .uniqueCount, property: "status"),
        ]
        // Each event: subscription, bucket, status, weight, latency and second picked from one number.
        await propertyCheck(input: Gen.int(in: 0...1_000_000).array(of: 0...40)) { picks in
            let events = picks.enumerated().map { index, pick in
                var event = Self.call("\(index)", status: [200, 201, 404, 500][pick % 4], weight: pick / 4 % 3)
                event.subscription = ["sub", "other"][pick / 12 % 2]
                event.bucket = Date(timeIntervalSince1970: [1_789_999_200, 1_790_002_800][pick / 24 % 2])
                event.latencyMicroseconds = pick / 48 % 7 * 1000
                event.occurredAt = Date(timeIntervalSince1970: 1_790_000_000 + Double(pick / 336 % 5))
                return event
            }
            var oneByOne = MeterDeltas()
            for event in events {
                let deltas = Metering.deltas([event], meters: meters)
                for (key, aggregate) in deltas.aggregates { oneByOne.aggregates[key, default: MeterAggregate()].merge(aggregate) }
                oneByOne.uniques.formUnion(deltas.uniques)
            }
            #expect(Metering.deltas(events, meters: meters) == oneByOne)
        }
    }

    @Test func endpointCountsAndBucketsFollowTheEvent() {
        let deltas = Metering.deltas([Self.call("1", status: 200, weight: 2), Self.call("2", status: 500)], meters: [])
        let key = MeterDeltas.Key(meter: Metering.endpointPrefix + "item", subscription: "sub", bucket: 1_789_999_200_000_000)
        #expect(deltas.aggregates[key]?.count == 3)
        // A bucket is the hour, cut at the period start when the period starts inside it.
        let periodStart = Date(timeIntervalSince1970: 1_789_999_900)
        #expect(UsageBuckets.start(of: Date(timeIntervalSince1970: 1_790_000_000), periodStart: periodStart) == periodStart)
        #expect(UsageBuckets.start(of: Date(timeIntervalSince1970: 1_790_003_000), periodStart: periodStart)
                == Date(timeIntervalSince1970: 1_790_002_800))
    }
}
