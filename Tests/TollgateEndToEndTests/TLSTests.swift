import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing
import TollgateTestSupport

/// TLS both ways, with certificates the test makes (a private CA and server certificates for
/// 127.0.0.1), against a real `tollgate serve` process: HTTPS upstreams verified through
/// `upstream_ca`, HTTPS for consumers, and certificates re-read on SIGHUP.
@Suite("TLS both ways")
struct TLSTests {
    @Test func httpsBothWaysAndCertificatesReloadedOnSIGHUP() async throws {
        let certificates = try TestCertificates.make()
        let upstreamFiles = try certificates.server("upstream")
        let proxyFiles = try certificates.server("proxy")
        let upstream = try await RecordingUpstream.start(tls: NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: NIOSSLCertificate.fromPEMFile(upstreamFiles.certificate).map { .certificate($0) },
            privateKey: .privateKey(NIOSSLPrivateKey(file: upstreamFiles.key, format: .pem)))))
        defer { Task { await upstream.stop() } }
        // Webhooks over HTTPS: one receiver with a certificate of the CA given as --extra-ca, one of a CA nobody trusts.
        let receiver = try await WebhookReceiver.start(tls: certificates.serverContext("hooks"))
        let strangerReceiver = try await WebhookReceiver.start(tls: TestCertificates.make().serverContext("stranger"))
        defer { Task { await receiver.stop(); await strangerReceiver.stop() } }

        let directory = TemporaryDirectory.make()
        let catalog = directory.appendingPathComponent("catalog.yaml")
        try """
            products:
              - id: secure
                name: Secure
                upstream: https://127.0.0.1:\(upstream.port)/v2
                upstream_ca: \(certificates.caPath)
                upstream_header: { name: X-Upstream-Secret, value: tls-secret }
                webhook: { url: "https://127.0.0.1:\(receiver.port)/hooks", secret: whsec_tls }
                endpoints:
                  - { identifier: hello, name: Hello, method: GET, path: /hello }
              - id: untrusted
                name: Untrusted
                upstream: https://127.0.0.1:\(upstream.port)
                webhook: { url: "https://127.0.0.1:\(strangerReceiver.port)/hooks", secret: whsec_stranger }
                endpoints:
                  - { identifier: hello, name: Hello, method: GET, path: /hello }
            plans:
              - { id: secure-plan, product: secure, name: S, currency: EUR, period: month, prices: [] }
              - { id: untrusted-plan, product: untrusted, name: U, currency: EUR, period: month, prices: [] }
            """.write(to: catalog, atomically: true, encoding: .utf8)
        let process = try TollgateProcess.start(
            ["serve", "--config", catalog.path, "--data-dir", directory.path, "--proxy-port", "0", "--admin-port", "0",
             "--tls-cert", proxyFiles.certificate, "--tls-key", proxyFiles.key,
             "--admin-tls-cert", proxyFiles.certificate, "--admin-tls-key", proxyFiles.key, "--extra-ca", certificates.caPath],
            environment: ["TOLLGATE_ADMIN_KEY": "tls-admin-key"])
        defer { process.signal(SIGKILL) }
        let (proxy, admin) = try await process.waitUntilListening()
        // A consumer calls over HTTPS, verifying Tollgate's certificate against the test's CA.
        var clientTLS = TLSConfiguration.makeClientConfiguration()
        clientTLS.trustRoots = .file(certificates.caPath)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: clientTLS))
        // The admin port serves HTTPS too.
        func post(_ url: String, _ body: String) async throws -> (status: Int, body: String) {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer tls-admin-key")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
            let response = try await client.execute(request, timeout: .seconds(30))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        func get(_ url: String) async throws -> String {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Authorization", value: "Bearer tls-admin-key")
            let response = try await client.execute(request, timeout: .seconds(30))
            return String(buffer: try await response.body.collect(upTo: 1 << 20))
        }
        func call(_ path: String, token: String) async throws -> (status: Int, body: String) {
            var request = HTTPClientRequest(url: "https://127.0.0.1:\(proxy)\(path)")
            request.headers.add(name: "apikey", value: token)
            let response = try await client.execute(request, timeout: .seconds(30))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        let adminBase = "https://127.0.0.1:\(admin)"
        let customer = try await post(adminBase + "/v1/customers", #"{"id":"tls","name":"T"}"#)
        #expect(customer.status == 201)
        func token(_ plan: String) async throws -> String {
            let subscription = try await post(adminBase + "/v1/subscriptions", #"{"customer":"tls","plan":"\#(plan)"}"#)
            #expect(subscription.status == 201)
            let object = try JSONSerialization.jsonObject(with: Data(subscription.body.utf8)) as? [String: Any]
            return try #require(object?["token"] as? String)
        }
        let secureToken = try await token("secure-plan")
        let untrustedToken = try await token("untrusted-plan")

        let secure = try await call("/secure/hello", token: secureToken)
        #expect(secure.status == 200)
        let received = try #require(upstream.requests.last)
        #expect(received.uri == "/v2/hello")
        #expect(received.values("X-Consumer-ID") == ["tls"])
        #expect(received.values("X-Upstream-Secret") == ["tls-secret"])
        #expect(received.values("X-Forwarded-Proto") == ["https"])

        // The same upstream without its CA is not trusted: 502, and the log says why.
        let untrusted = try await call("/untrusted/hello", token: untrustedToken)
        #expect(untrusted.status == 502)
        #expect(untrusted.body == #"{"message":"An invalid response was received from the upstream server"}"#)
        #expect(upstream.requests.count == 1)
        let logged = try await waitForValue("the failed call's log line") {
            process.output.split(separator: "\n").first { $0.contains("call failed") && $0.contains("product=untrusted") }
        }
        #expect(logged.lowercased().contains("certificate"))
        #expect(!process.output.contains("tls-secret"))

        // The trusted receiver gets its webhook; the other one's certificate is refused, so its
        // delivery waits in the outbox with the reason.
        let hooks = try await receiver.waitFor(1)
        #expect(try hooks[0].json()["type"] as? String == "subscription.created")
        let refused = try await waitForValue("a failed delivery to the untrusted receiver") {
            let deliveries = try await get(adminBase + "/v1/webhooks/deliveries")
            let object = try JSONSerialization.jsonObject(with: Data(deliveries.utf8)) as? [String: Any]
            let rows = object?["data"] as? [[String: Any]] ?? []
            return rows.first { $0["product"] as? String == "untrusted" && ($0["attempts"] as? Int ?? 0) >= 1 }
        }
        #expect(refused["status"] as? String == "pending")
        #expect((refused["last_error"] as? String)?.isEmpty == false)
        #expect(strangerReceiver.received.isEmpty)

        // Plain HTTP on the HTTPS port: a clear refusal, not a hang.
        let plain = try await TestHTTP.request("GET", "http://127.0.0.1:\(proxy)/secure/hello", headers: [("apikey", secureToken)])
        #expect(plain.status == 400)
        #expect(plain.body.contains("HTTPS"))

        // SIGHUP re-reads the certificate: new connections get the new one, an open one keeps working.
        let verifying = try NIOSSLContext(configuration: clientTLS)
        let request = "GET /secure/hello HTTP/1.1\r\nHost: 127.0.0.1\r\napikey: \(secureToken)\r\n\r\n"
        let before = try await RawConnection.open(port: proxy, tls: verifying)
        try await before.send(request)
        #expect(await before.waitForResponses(1))
        let oldCertificate = try NIOSSLCertificate.fromPEMFile(proxyFiles.certificate)[0]
        #expect(try await before.peerCertificate() == oldCertificate)

        let renewed = try certificates.server("renewed")
        try FileManager.default.removeItem(atPath: proxyFiles.certificate)
        try FileManager.default.removeItem(atPath: proxyFiles.key)
        try FileManager.default.copyItem(atPath: renewed.certificate, toPath: proxyFiles.certificate)
        try FileManager.default.copyItem(atPath: renewed.key, toPath: proxyFiles.key)
        let newCertificate = try NIOSSLCertificate.fromPEMFile(renewed.certificate)[0]
        #expect(newCertificate != oldCertificate)
        process.signal(SIGHUP)
        try await waitUntil("a new connection to show the renewed certificate") {
            let connection = try await RawConnection.open(port: proxy, tls: verifying)
            defer { Task { await connection.close() } }
            try await connection.send(request)
            guard await connection.waitForResponses(1) else { return false }
            return try await connection.peerCertificate() == newCertificate
        }
        try await before.send(request)
        #expect(await before.waitForResponses(2))
        #expect(before.statuses == [200, 200])
        #expect(try await before.peerCertificate() == oldCertificate)
        await before.close()
        let adminConnection = try await RawConnection.open(port: admin, tls: verifying)
        try await adminConnection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(await adminConnection.waitForResponses(1))
        #expect(adminConnection.statuses == [200])
        #expect(try await adminConnection.peerCertificate() == newCertificate)
        await adminConnection.close()
        #expect(process.output.contains("certificate reloaded"))
        try await client.shutdown()
    }
}
