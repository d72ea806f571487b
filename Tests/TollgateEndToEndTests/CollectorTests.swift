import AsyncHTTPClient
import CompressNIO
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

/// The collector (DESIGN §3.5) against a real server: Moesif's event JSON, CloudEvents, meters.
@Suite("Collector")
struct CollectorTests {
    /// A POST to the collector with the collector key (or `key`), the body optionally gzipped.
    static func post(
        _ server: RunningTollgate, _ path: String, _ body: String, gzip: Bool = false, key: String? = nil,
        contentType: String = "application/json"
    ) async throws -> TestResponse {
        var request = HTTPClientRequest(url: server.adminURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        if let key = key ?? Optional(server.collectorKey), !key.isEmpty {
            request.headers.add(name: "X-Moesif-Application-Id", value: key)
        }
        var buffer = ByteBuffer(string: body)
        if gzip {
            buffer = try buffer.compress(with: .gzip())
            request.headers.add(name: "Content-Encoding", value: "gzip")
        }
        request.body = .bytes(buffer)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let answer = try await response.body.collect(upTo: 1 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: answer))
    }

    static func time(_ offset: TimeInterval) -> String {
        RFC3339Text.string(Date().addingTimeInterval(offset))
    }

    static func apiEvent(
        _ transaction: String, company: String, verb: String = "GET", uri: String, status: Int, weight: Int? = nil,
        at offset: TimeInterval = -1, extra: String = ""
    ) -> String {
        let weight = weight.map { #","weight":\#($0)"# } ?? ""
        return #"{"request":{"time":"\#(time(offset))","uri":"\#(uri)","verb":"\#(verb)","headers":{}},"response":{"time":"\#(time(offset + 0.01))","status":\#(status)},"company_id":"\#(company)","transaction_id":"\#(transaction)"\#(weight)\#(extra)}"#
    }

    static func customer(of subscription: String, _ server: RunningTollgate) async throws -> String {
        let json = try await server.admin("GET", "/v1/subscriptions/\(subscription)").json()
        return try #require(json["customer"] as? String)
    }

    static func usage(_ server: RunningTollgate, _ subscription: String) async throws -> (endpoints: [String: Int], meters: [String: String]) {
        let json = try await server.admin("GET", "/v1/subscriptions/\(subscription)/usage").json()
        return (try #require(json["endpoints"] as? [String: Int]), try #require(json["meters"] as? [String: String]))
    }

    @Test(arguments: TestDatabase.allCases)
    func eventsActionsAndCloudEventsFillEveryMeterOnce(database: TestDatabase) async throws {
        try await withTollgate(database: database) { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic", startedAt: Self.time(-3600))
            let company = try await Self.customer(of: id, server)
            _ = try await server.proxy("/shop/items/9", headers: [("apikey", token)])

            // A retry sends the same event again: the same transaction_id and the same request.time.
            let first = Self.apiEvent("t1", company: company, uri: "http://api.example/items/1", status: 200)
            let single = try await Self.post(server, "/v1/events", first)
            #expect(single.status == 201)
            #expect(single.header("X-Moesif-Config-ETag") != nil)
            let batch = try await Self.post(server, "/v1/events/batch", "[" + [
                Self.apiEvent("t2", company: company, uri: "/shop/items/2", status: 200, weight: 5),
                Self.apiEvent("t3", company: company, verb: "POST", uri: "/upload?x=1", status: 500),
                Self.apiEvent("t4", company: company, uri: "/items/3", status: 404),
                first,
            ].joined(separator: ",") + "]", gzip: true)
            #expect(batch.status == 200)
            let outcome = try batch.json()
            #expect(outcome["accepted"] as? Int == 4)
            #expect(outcome["duplicates"] as? Int == 1)
            #expect((outcome["refused"] as? [Any])?.isEmpty == true)

            let actions = try await Self.post(server, "/v1/actions/batch", """
                [{"action_name":"report-generated","user_id":"u1","company_id":"\(company)","transaction_id":"a1",
                  "request":{"time":"\(Self.time(-5))"},"metadata":{"pages":3}},
                 {"action_name":"report-generated","user_id":"u2","company_id":"\(company)","request":{"time":"\(Self.time(-4))"},"metadata":{"pages":"2.5"}},
                 {"action_name":"report-generated","user_id":"u1","subscription_id":"\(id)","metadata":{"pages":0.25}},
                 {"action_name":"other","user_id":"u9","company_id":"\(company)","metadata":{"pages":100}}]
                """)
            #expect(try actions.json()["accepted"] as? Int == 4)

            func seats(_ eventID: String, _ count: Int, _ offset: TimeInterval) -> String {
                #"{"specversion":"1.0","id":"\#(eventID)","source":"/billing","type":"seats.changed","subject":"\#(id)","time":"\#(Self.time(offset))","data":{"seats":\#(count)}}"#
            }
            let fourSeats = seats("c1", 4, -30)
            let cloud = try await Self.post(
                server, "/v1/cloudevents", "[" + [fourSeats, seats("c2", 2, -20), fourSeats].joined(separator: ",") + "]",
                contentType: "application/cloudevents-batch+json")
            #expect(try cloud.json()["duplicates"] as? Int == 1)
            let oneCloud = try await Self.post(
                server, "/v1/cloudevents", #"{"specversion":"1.0","id":"c3","source":"/billing","type":"seats.changed","subject":"\#(company)","time":"\#(Self.time(-25))","data":{"seats":3}}"#,
                contentType: "application/cloudevents+json")
            #expect(oneCloud.status == 201)

            let (endpoints, meters) = try await Self.usage(server, id)
            // The gateway's call and the collector's API events land in the same meters.
            #expect(endpoints["get-item"] == 1 + 1 + 5 + 1)
            #expect(endpoints["upload"] == 1)
            #expect(meters["item-reads"] == "7")
            #expect(meters["shop-calls"] == "\(1 + 1 + 5 + 1)")
            #expect(meters["report-pages"] == "5.75")
            #expect(meters["report-users"] == "2")
            #expect(meters["peak-seats"] == "4")
            #expect(meters["seats"] == "2")
        }
    }

    @Test func anEndpointAddedToTheProductAttributesTheNextBatch() async throws {
        try await withTollgate { server in
            let (id, _) = try await server.subscribe(plan: "shop-basic", startedAt: Self.time(-3600))
            let company = try await Self.customer(of: id, server)
            let report = Self.apiEvent("r1", company: company, uri: "/reports/7", status: 200)
            #expect(try await Self.post(server, "/v1/events", report).status == 201)
            #expect(try await Self.usage(server, id).endpoints["report"] == nil)
            // The collector keeps the products it attributes to: a catalog change must reach it.
            #expect(try await server.admin("POST", "/v1/products/shop/endpoints", body: """
                {"identifier":"report","name":"Report","method":"GET","path":"/reports/{id}"}
                """).status == 201)
            let again = Self.apiEvent("r2", company: company, uri: "/reports/8", status: 200)
            #expect(try await Self.post(server, "/v1/events", again).status == 201)
            #expect(try await Self.usage(server, id).endpoints["report"] == 1)
        }
    }

    @Test func aRetryIsADuplicateWhileTheSameIdAtAnotherTimeIsAnotherEvent() async throws {
        try await withTollgate { server in
            let (id, _) = try await server.subscribe(plan: "shop-basic", startedAt: Self.time(-3600))
            let company = try await Self.customer(of: id, server)
            let event = Self.apiEvent("r1", company: company, uri: "/items/1", status: 200, at: -10)
            #expect(try await Self.post(server, "/v1/events", event).status == 201)
            let events = try await Self.post(
                server, "/v1/events/batch", "[" + event + "," + Self.apiEvent("r1", company: company, uri: "/items/1", status: 200, at: -20) + "]")
            #expect(try events.json()["duplicates"] as? Int == 1)

            // Without the sender's time, the id alone is the key, whenever the retry arrives.
            let action = #"{"action_name":"report-generated","company_id":"\#(company)","transaction_id":"u1","metadata":{"pages":1}}"#
            let cloudEvent = #"{"specversion":"1.0","id":"n1","source":"/billing","type":"seats.changed","subject":"\#(id)","data":{"seats":4}}"#
            #expect(try await Self.post(server, "/v1/actions", action).status == 201)
            #expect(try await Self.post(server, "/v1/cloudevents", cloudEvent, contentType: "application/cloudevents+json").status == 201)
            // The retries arrive later (how much later does not matter: CollectorKeyTests injects an hour).
            #expect(try await Self.post(server, "/v1/actions/batch", "[" + action + "]").json()["duplicates"] as? Int == 1)
            let cloud = try await Self.post(server, "/v1/cloudevents", "[" + cloudEvent + "]", contentType: "application/cloudevents-batch+json")
            #expect(try cloud.json()["duplicates"] as? Int == 1)

            let meters = try await Self.usage(server, id).meters
            #expect(meters["item-reads"] == "2")
            #expect(meters["report-pages"] == "1")
            #expect(meters["peak-seats"] == "4")
        }
    }

    @Test func badInputIsRefusedWithAReasonAndStoresNothingOfIt() async throws {
        try await withTollgate { server in
            let (id, _) = try await server.subscribe(plan: "shop-basic", startedAt: Self.time(-3600))
            let company = try await Self.customer(of: id, server)
            let good = Self.apiEvent("g1", company: company, uri: "/items/1", status: 200)

            #expect(try await Self.post(server, "/v1/events", good, key: "").status == 401)
            #expect(try await Self.post(server, "/v1/events", good, key: "wrong").status == 401)
            let malformed = try await Self.post(server, "/v1/events/batch", "[" + good + ",{")
            #expect(malformed.status == 400)
            #expect(try malformed.json()["message"] is String)
            #expect(try await Self.post(server, "/v1/events/batch", good).status == 400)
            #expect(try await Self.usage(server, id).meters["item-reads"] == "0")

            let old = try await Self.post(server, "/v1/events", Self.apiEvent("o1", company: company, uri: "/items/1", status: 200, at: -36 * 86_400))
            #expect(old.status == 422)
            #expect(try old.json()["message"] as? String == "occurred more than 35 days ago")
            let batch = try await Self.post(server, "/v1/events/batch", "[" + [
                Self.apiEvent("f1", company: company, uri: "/items/1", status: 200, at: 600),
                Self.apiEvent("b1", company: company, uri: "/items/1", status: 200, at: -7200),
                Self.apiEvent("w1", company: company, uri: "/items/1", status: 200, weight: -1),
                Self.apiEvent("s1", company: company, uri: "/items/1", status: 200, extra: #","subscription_id":"sub_unknown""#),
                good,
            ].joined(separator: ",") + "]")
            #expect(batch.status == 200)
            let outcome = try batch.json()
            #expect(outcome["accepted"] as? Int == 1)
            let refused = try #require(outcome["refused"] as? [[String: Any]])
            #expect(refused.map { $0["index"] as? Int } == [0, 1, 2, 3])
            #expect(refused[0]["message"] as? String == "occurred more than 5 minutes in the future")
            #expect((refused[1]["message"] as? String)?.contains("outside the life") == true)
            #expect((refused[2]["message"] as? String)?.contains("weight") == true)
            #expect((refused[3]["message"] as? String)?.contains("unknown subscription") == true)
            #expect(try await Self.usage(server, id).meters["item-reads"] == "1")

            // A refused event between accepted ones: the others keep their places and are stored.
            let (other, _) = try await server.subscribe(plan: "shop-basic", startedAt: Self.time(-3600))
            let mixed = try await Self.post(server, "/v1/events/batch", "[" + [
                Self.apiEvent("m1", company: company, uri: "/items/1", status: 200),
                Self.apiEvent("m2", company: company, uri: "/items/1", status: 200, extra: #","subscription_id":"\#(other)""#),
                Self.apiEvent("m3", company: company, uri: "/items/2", status: 200),
            ].joined(separator: ",") + "]")
            let mixedOutcome = try mixed.json()
            #expect(mixedOutcome["accepted"] as? Int == 2)
            let mixedRefused = try #require(mixedOutcome["refused"] as? [[String: Any]])
            #expect(mixedRefused.map { $0["index"] as? Int } == [1])
            #expect((mixedRefused.first?["message"] as? String)?.contains("belongs to another customer") == true)
            #expect(try await Self.usage(server, id).meters["item-reads"] == "3")
            #expect(try await Self.usage(server, other).meters["item-reads"] == "0")

            let noType = try await Self.post(
                server, "/v1/cloudevents", #"{"specversion":"1.0","id":"x","source":"/s"}"#, contentType: "application/cloudevents+json")
            #expect(noType.status == 422)
            #expect(try noType.json()["message"] as? String == "type is required")
        }
    }

    @Test func gzipBodiesAndSizeLimitsApplyAfterDecompression() async throws {
        try await withTollgate { server in
            let (id, _) = try await server.subscribe(plan: "shop-basic", startedAt: Self.time(-3600))
            let company = try await Self.customer(of: id, server)
            let padding = String(repeating: "a", count: 1_100_000)
            let large = Self.apiEvent("l1", company: company, uri: "/items/1", status: 200, extra: #","metadata":{"pad":"\#(padding)"}"#)
            let single = try await Self.post(server, "/v1/events", large, gzip: true)
            #expect(single.status == 413, "\(single.body)")
            let mixed = try await Self.post(
                server, "/v1/events/batch", "[" + large + "," + Self.apiEvent("s1", company: company, uri: "/items/1", status: 200) + "]", gzip: true)
            #expect(mixed.status == 200)
            let refused = try #require(try mixed.json()["refused"] as? [[String: Any]])
            #expect(refused.first?["message"] as? String == "larger than 1 MB")
            let huge = "[" + String(repeating: "{\"pad\":\"\(padding)\"},", count: 48) + "{}]"
            #expect(try await Self.post(server, "/v1/events/batch", huge, gzip: true).status == 413)
            var request = HTTPClientRequest(url: server.adminURL + "/v1/events")
            request.method = .POST
            request.headers.add(name: "X-Moesif-Application-Id", value: server.collectorKey)
            request.headers.add(name: "Content-Encoding", value: "gzip")
            request.body = .bytes(ByteBuffer(bytes: [0x1F, 0x8B, 0x08, 0x00, 0x01, 0x02]))
            #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(30)).status.code == 400)
            #expect(try await Self.usage(server, id).meters["item-reads"] == "1")
        }
    }

    @Test func companiesAndUsersBecomeCustomersAndAttributeEvents() async throws {
        try await withTollgate { server in
            let company = try await Self.post(
                server, "/v1/companies", #"{"company_id":"acme-co","company_domain":"acme.example","metadata":{"name":"Acme Corp"},"campaign":null}"#)
            #expect(company.status == 201)
            #expect(try await server.admin("GET", "/v1/customers/acme-co").json()["name"] as? String == "Acme Corp")
            let subscription = try await server.admin(
                "POST", "/v1/subscriptions", body: #"{"customer":"acme-co","plan":"shop-basic","started_at":"\#(Self.time(-600))"}"#)
            let id = try #require(try subscription.json()["id"] as? String)
            let users = try await Self.post(
                server, "/v1/users/batch", #"[{"user_id":"u-1","company_id":"acme-co","metadata":null},{"user_id":null}]"#)
            #expect(try users.json()["accepted"] as? Int == 1)
            let event = #"{"request":{"time":"\#(Self.time(-1))","uri":"/items/4","verb":"GET"},"response":{"status":200},"user_id":"u-1"}"#
            #expect(try await Self.post(server, "/v1/events", event).status == 201)
            #expect(try await Self.usage(server, id).meters["item-reads"] == "1")

            var config = HTTPClientRequest(url: server.adminURL + "/v1/config")
            config.headers.add(name: "X-Moesif-Application-Id", value: server.collectorKey)
            let answer = try await HTTPClient.shared.execute(config, timeout: .seconds(30))
            #expect(answer.status.code == 200)
            #expect(answer.headers.first(name: "X-Moesif-Config-ETag")?.isEmpty == false)
            let rules = try await TestHTTP.request("GET", server.adminURL + "/v1/rules", headers: [("X-Moesif-Application-Id", server.collectorKey)])
            #expect(rules.body == "[]")
        }
    }

    /// Moesif's official Python SDK (`moesifapi` from PyPI), unchanged, pointed at Tollgate.
    @Test func moesifsPythonSDKWorksUnchanged() async throws {
        try await withTollgate { server in
            let (id, _) = try await server.subscribe(plan: "shop-basic", startedAt: Self.time(-3600))
            let company = try await Self.customer(of: id, server)
            let python = ProcessInfo.processInfo.environment["TOLLGATE_TEST_PYTHON"] ?? "python3"
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("Resources/moesif_sdk_client.py").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python, script]
            var environment = ProcessInfo.processInfo.environment
            environment["TOLLGATE_COLLECTOR_URL"] = server.adminURL
            environment["TOLLGATE_COLLECTOR_KEY"] = server.collectorKey
            environment["TOLLGATE_COMPANY_ID"] = company
            environment["TOLLGATE_SUBSCRIPTION_ID"] = id
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let printed = String(decoding: try output.fileHandleForReading.readToEnd() ?? Data(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "the SDK run failed: \(printed)")
            #expect(printed.contains(#""ok": true"#))

            // One single event (sent twice), a batch of GET 200, POST 201 with weight 5 and POST 500.
            let (endpoints, meters) = try await Self.usage(server, id)
            #expect(endpoints["get-item"] == 1)
            #expect(meters["shop-calls"] == "7")
            #expect(meters["item-reads"] == "1")
            #expect(try await server.admin("GET", "/v1/customers/\(company)").json()["name"] as? String == "Acme Corp")
        }
    }
}

/// RFC 3339 with milliseconds, as tests write times.
enum RFC3339Text {
    static func string(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
