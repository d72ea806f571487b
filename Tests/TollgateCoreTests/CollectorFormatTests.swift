import Foundation
import Testing
import TollgateCore

/// What the collector reads from a Moesif event, member by member, and what it refuses.
@Suite("Collected events: Moesif's fields")
struct CollectorFormatTests {
    static let received = Date(timeIntervalSince1970: 1_767_225_600)

    static func read(_ json: String) -> Result<CollectedEvent, CollectorFormat.Refusal> {
        guard let node = try? ScannedJSON.scan(Array(json.utf8)) else { return .failure(.init("not JSON")) }
        return CollectorFormat.apiEvent(node, receivedAt: received)
    }

    static func event(uri: String = "/items/1", extra: String = "") -> String {
        #"{"request":{"time":"2025-12-31T23:59:59.5Z","uri":"\#(uri)","verb":"get","headers":{"a":"1"}},"#
            + #""response":{"time":"2026-01-01T00:00:00.25Z","status":201},"company_id":"acme","user_id":"u7","#
            + #""transaction_id":"t-1","metadata":{"subscription_id":"sub_1","cost":2}\#(extra)}"#
    }

    @Test func everyMemberIsReadWhereMoesifPutsIt() throws {
        let collected = try Self.read(Self.event()).get()
        let event = collected.event
        #expect(event.method == "GET" && event.path == "/items/1" && event.status == 201)
        #expect(event.id == "mo:t-1" && event.name == "api_calls" && event.weight == 1)
        #expect(event.occurredAt == Self.received.addingTimeInterval(-0.5) && event.timeFromSender)
        #expect(event.latencyMicroseconds == 750_000)
        #expect(collected.company == "acme" && collected.user == "u7" && collected.subscription == "sub_1")
        #expect(event.propertyText("metadata.cost") == "2" && event.propertyText("request.headers.a") == "1")
        #expect(event.propertyText("metadata.cost.units") == nil && event.propertyText("metadata") == nil)
        let named = try Self.read(Self.event(extra: #","subscription_id":"sub_2","weight":3"#)).get()
        #expect(named.subscription == "sub_2" && named.event.weight == 3)
    }

    @Test("the path of request.uri", arguments: [
        ("/items/1", "/items/1"), ("/items/1?page=2", "/items/1"), ("/items#top", "/items"), ("", "/"), ("?q=1", "/"),
        ("https://api.example.com/items/1?page=2", "/items/1"), ("https://api.example.com", "/"),
        ("https://api.example.com?q=/a", "/"), ("https://api.example.com#x/y", "/"), ("urn:x:y", "urn:x:y"), ("/a:b//c", "/a:b//c"), ("/caf\u{e9}?x", "/caf\u{e9}"),
    ])
    func pathOfTheURI(uri: String, path: String) throws {
        #expect(try Self.read(Self.event(uri: uri)).get().event.path == path)
    }

    @Test func membersOfTheWrongShapeAreRefusedOrLeftOut() throws {
        let refusals = [
            (#"{"request":{"time":"yesterday"}}"#, "request.time must be an ISO 8601 time"),
            (#"{"response":{"status":42}}"#, "response.status must be an HTTP status code"),
            (#"{"weight":-1}"#, "weight must be a whole number of at least 0"),
            (#"["request"]"#, "must be a JSON object"),
        ]
        for (json, message) in refusals {
            #expect(Self.read(json).failure?.message == message, "\(json)")
        }
        // A request that is not an object has no members to read; the event is still an event.
        let bare = try Self.read(#"{"request":"GET /","response":[201],"transaction_id":7}"#).get().event
        #expect(bare.method == nil && bare.path == nil && bare.status == nil && bare.id == "mo:7")
        #expect(bare.occurredAt == Self.received && !bare.timeFromSender)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let failure) = self { failure } else { nil }
    }
}
