import Foundation
import Testing
import TollgateCore

/// The deduplication key of a collected event (DESIGN §3.5): the sender's id, with the sender's
/// time when it gave one; never the time the event happened to arrive. The arrival time is
/// injected here, so a retry hours later is tested without waiting for one.
@Suite("Collected events: deduplication keys")
struct CollectorKeyTests {
    static let received = Date(timeIntervalSince1970: 1_767_225_600)

    static func key(_ json: String, _ read: (ScannedJSON, Date) -> Result<CollectedEvent, CollectorFormat.Refusal>, at date: Date) throws
        -> UsageEvent.Key
    {
        try read(ScannedJSON.scan(Array(json.utf8)), date).get().event.key
    }

    @Test func withoutTheSendersTimeARetryAtAnotherTimeIsTheSameEvent() throws {
        let action = #"{"action_name":"report-generated","company_id":"acme","transaction_id":"u1"}"#
        let cloudEvent = #"{"specversion":"1.0","id":"n1","source":"/billing","type":"seats.changed","subject":"acme"}"#
        let readers: [(String, (ScannedJSON, Date) -> Result<CollectedEvent, CollectorFormat.Refusal>)] = [
            (action, CollectorFormat.action), (cloudEvent, CollectorFormat.cloudEvent),
        ]
        for (json, read) in readers {
            let first = try Self.key(json, read, at: Self.received)
            let retry = try Self.key(json, read, at: Self.received.addingTimeInterval(3 * 3600 + 0.25))
            #expect(first == retry, "\(json)")
        }
    }

    @Test func withTheSendersTimeTheSameIdAtAnotherTimeIsAnotherEvent() throws {
        func action(_ time: String) -> String {
            #"{"action_name":"report-generated","company_id":"acme","transaction_id":"u1","request":{"time":"\#(time)"}}"#
        }
        let first = try Self.key(action("2026-01-01T00:00:00.000Z"), CollectorFormat.action, at: Self.received)
        let again = try Self.key(action("2026-01-01T00:00:00.000Z"), CollectorFormat.action, at: Self.received.addingTimeInterval(60))
        let other = try Self.key(action("2026-01-01T00:00:00.001Z"), CollectorFormat.action, at: Self.received)
        #expect(first == again)
        #expect(first != other)
        #expect(first.id == other.id)
    }
}
