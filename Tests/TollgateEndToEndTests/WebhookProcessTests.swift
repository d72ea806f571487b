import Foundation
import NIOHTTP1
import Testing
import TollgateApp
import TollgateCore
import TollgateTestSupport

/// Webhook deliveries across a `kill -9`, and the documented verification example.
@Suite("Webhooks across processes", .serialized)
struct WebhookProcessTests {
    @Test func aReceiverThatWasDownGetsTheEventAfterTollgateWasKilledAndRestarted() async throws {
        let upstream = try await DemoUpstream.start()
        let probe = try await WebhookReceiver.start()
        let port = probe.port
        await probe.stop()
        let directory = TemporaryDirectory.make()
        let catalog = directory.appendingPathComponent("catalog.yaml")
        try """
            products:
              - id: hooked
                name: Hooked
                upstream: http://127.0.0.1:\(upstream.port)
                webhook: { url: "http://127.0.0.1:\(port)/hooks", secret: whsec_kill }
            plans:
              - { id: hooked-plan, product: hooked, name: H, currency: EUR, period: month, prices: [] }
            """.write(to: catalog, atomically: true, encoding: .utf8)
        let arguments = ["serve", "--config", catalog.path, "--data-dir", directory.path, "--proxy-port", "0", "--admin-port", "0"]
        let environment = ["TOLLGATE_ADMIN_KEY": "hook-admin-key"]
        let first = try TollgateProcess.start(arguments, environment: environment)
        let (_, admin) = try await first.waitUntilListening()
        let auth = [("Authorization", "Bearer hook-admin-key")]
        let base = "http://127.0.0.1:\(admin)"
        let customer = try await TestHTTP.request("POST", base + "/v1/customers", headers: auth, body: #"{"id":"k","name":"K"}"#)
        #expect(customer.status == 201)
        let subscription = try await TestHTTP.request(
            "POST", base + "/v1/subscriptions", headers: auth, body: #"{"customer":"k","plan":"hooked-plan"}"#).json()
        let id = try #require(subscription["id"] as? String)
        // Nothing listens: the first attempts fail while the event waits in the outbox.
        let attempted = try await waitForValue("a failed first attempt") {
            let deliveries = try await TestHTTP.request("GET", base + "/v1/webhooks/deliveries", headers: auth).json()
            let rows = deliveries["data"] as? [[String: Any]] ?? []
            return rows.first { ($0["attempts"] as? Int ?? 0) >= 1 }
        }
        #expect(attempted["status"] as? String == "pending")
        #expect((attempted["last_error"] as? String)?.isEmpty == false)
        first.signal(SIGKILL)
        _ = try await first.waitForExit()

        let receiver = try await WebhookReceiver.start(port: port)
        let second = try TollgateProcess.start(arguments, environment: environment)
        _ = try await second.waitUntilListening()
        let requests = try await receiver.waitFor(1, timeout: .seconds(30))
        let event = try requests[0].json()
        #expect(event["type"] as? String == "subscription.created")
        #expect((event["data"] as? [String: Any])?["id"] as? String == id)
        let signature = try #require(requests[0].headers.first(name: "Tollgate-Signature"))
        #expect(WebhookSignature.verify(header: signature, body: Array(requests[0].body.utf8), secret: "whsec_kill", now: Date()))
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
        await receiver.stop()
        await upstream.stop()
    }

    @Test func theDocumentedPythonVerificationAcceptsTollgatesSignatureAndRefusesATamperedBody() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/webhooks.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let start = try #require(text.range(of: "```python\n"))
        let end = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let example = String(text[start.upperBound..<end.lowerBound])
        let body = #"{"id":"evt_1","type":"subscription.created","data":{"id":"sub_1"}}"#
        let header = WebhookSignature.sign(body: Array(body.utf8), secret: "whsec_doc", timestamp: Int(Date().timeIntervalSince1970))
        let script = example + """

            import sys
            body = sys.stdin.buffer.read()
            print(verify(sys.argv[1], body, "whsec_doc"), verify(sys.argv[1], body + b" ", "whsec_doc"),
                  verify(sys.argv[1], body, "other"))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, header]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(body.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0)
        #expect(printed.trimmingCharacters(in: .whitespacesAndNewlines) == "True False False")
    }
}
