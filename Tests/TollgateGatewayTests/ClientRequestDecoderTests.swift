import NIOCore
import NIOHTTP1
import Testing
@testable import TollgateGateway

/// The client side's reader of requests, in memory: heads, both framings of a body, pipelined
/// requests, and the requests it refuses; fed whole, a byte at a time and 7 bytes at a time.
@Suite("Client requests read from bytes (in memory)")
struct ClientRequestDecoderTests {
    /// What the decoder reads from `text`, as text, fed `step` bytes at a time. A refusal ends
    /// the list with `error: reason`.
    static func read(_ text: String, step: Int? = nil) -> [String] {
        var decoder = ClientRequestDecoder()
        let all = Array(text.utf8)
        let step = step ?? max(all.count, 1)
        var received = ByteBuffer()
        var parts: [String] = []
        var body = ""
        for start in stride(from: 0, to: all.count, by: step) {
            received.writeBytes(all[start..<min(start + step, all.count)])
            do {
                while let part = try decoder.next(from: &received) {
                    switch part {
                    case .head(let head): parts.append(describe(head))
                    case .body(let bytes): body += String(buffer: bytes)
                    case .end:
                        if !body.isEmpty { parts.append("body \(body)") }
                        body = ""
                        parts.append("end")
                    }
                }
            } catch {
                return parts + ["error: \(error.reason)"]
            }
        }
        if !body.isEmpty { parts.append("body \(body) (no end)") }
        return parts
    }

    static func describe(_ head: ClientRequestHead) -> String {
        var fields: [String] = []
        head.bytes.withUnsafeReadableBytes { bytes in
            for line in head.lines {
                fields.append(String(decoding: bytes[line.name], as: UTF8.self) + "=" + String(decoding: bytes[line.value], as: UTF8.self))
            }
        }
        var facts = [head.method.rawValue, head.target, head.version == .http1_0 ? "1.0" : "1.1"]
        if head.isKeepAlive { facts.append("keep-alive") }
        if let length = head.contentLength { facts.append("length \(length)") }
        if head.chunked { facts.append("chunked") }
        if head.otherCodings { facts.append("other codings") }
        if let upgrade = head.upgrade { facts.append("upgrade \(upgrade)") }
        if head.expectsContinue { facts.append("100-continue") }
        return "head " + facts.joined(separator: " ") + " [\(fields.joined(separator: ", "))]"
    }

    /// The same parts whether the bytes come whole, one by one or 7 at a time.
    static func readEveryWay(_ text: String) -> [String] {
        let whole = read(text)
        #expect(read(text, step: 1) == whole, "fed a byte at a time")
        #expect(read(text, step: 7) == whole, "fed 7 bytes at a time")
        return whole
    }

    @Test("A request without a body: its fields where they lie, values without the blanks around them")
    func bodyless() {
        #expect(Self.readEveryWay("GET /shop/hello?q=1 HTTP/1.1\r\nHost: a\r\napikey:  k1 \r\nX-Empty:\r\n\r\n") == [
            "head GET /shop/hello?q=1 1.1 keep-alive [Host=a, apikey=k1, X-Empty=]", "end",
        ])
    }

    @Test("Bodies: a Content-Length, chunks with extensions and trailers, an empty chunked body")
    func bodies() {
        #expect(Self.readEveryWay("POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello") == [
            "head POST /a 1.1 keep-alive length 5 [Content-Length=5]", "body hello", "end",
        ])
        let chunked = "PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n"
        #expect(Self.readEveryWay(chunked) == [
            "head PUT /a 1.1 keep-alive chunked [Transfer-Encoding=chunked]", "body hello!", "end",
        ])
        #expect(Self.readEveryWay("POST /a HTTP/1.1\r\ntransfer-encoding: CHUNKED\r\n\r\n0\r\n\r\n") == [
            "head POST /a 1.1 keep-alive chunked [transfer-encoding=CHUNKED]", "end",
        ])
        #expect(Self.readEveryWay("POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == [
            "head POST /a 1.1 keep-alive length 0 [Content-Length=0]", "end",
        ])
    }

    @Test("Pipelined requests are read one after the other; empty lines before a request line are skipped")
    func pipelined() {
        let text = "\r\nGET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"
        #expect(Self.readEveryWay(text) == [
            "head GET /1 1.1 keep-alive []", "end", "head POST /2 1.1 keep-alive length 2 [Content-Length=2]", "body ok", "end",
            "head GET /3 1.1 keep-alive []", "end",
        ])
    }

    @Test("Keep-alive by version and Connection; upgrades; Expect; codings other than chunked noted for the decision")
    func connectionFacts() {
        #expect(Self.read("GET / HTTP/1.0\r\n\r\n") == ["head GET / 1.0 []", "end"])
        #expect(Self.read("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") == ["head GET / 1.0 keep-alive [Connection=Keep-Alive]", "end"])
        #expect(Self.read("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n") == ["head GET / 1.1 [Connection=foo, close]", "end"])
        #expect(Self.read("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").first
            == "head GET / 1.1 keep-alive upgrade other [Connection=Upgrade, Upgrade=websocket]")
        #expect(Self.read("GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n").first?
            .hasPrefix("head GET / 1.1 keep-alive upgrade h2c") == true)
        // `Upgrade` without `Connection: upgrade` asks for nothing.
        #expect(Self.read("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").first == "head GET / 1.1 keep-alive [Upgrade=websocket]")
        #expect(Self.read("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").first?
            .hasPrefix("head POST / 1.1 keep-alive length 1 100-continue") == true)
        #expect(Self.read("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n").first?
            .hasPrefix("head POST / 1.1 keep-alive chunked other codings") == true)
    }

    @Test("The head's fields by name, and as SwiftNIO's head for the port's own paths")
    func fieldLookup() throws {
        let text = "POST /_portal/x?y HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n\r\n"
        let head = try ClientRequestDecoder.parseHead(ByteBuffer(string: text))
        #expect(head.value(of: "host") == "h")
        #expect(head.value(of: "x-forwarded-for") == "1.1.1.1")
        #expect(head.value(of: "apikey") == nil)
        let nio = head.nioHead
        #expect(nio.method == .POST && nio.uri == "/_portal/x?y" && nio.version == .http1_1)
        #expect(nio.headers["X-Forwarded-For"] == ["1.1.1.1", "2.2.2.2"])
    }

    @Test("Refused: what could smuggle a request, desynchronize the connection or be matched as another method", arguments: [
        ("get / HTTP/1.1\r\n\r\n", "malformed method"),
        ("G@T / HTTP/1.1\r\n\r\n", "malformed method"),
        (" GET / HTTP/1.1\r\n\r\n", "malformed method"),
        ("GET  / HTTP/1.1\r\n\r\n", "malformed request target"),
        ("GET /a\u{1}b HTTP/1.1\r\n\r\n", "malformed request target"),
        ("GET /a\tb HTTP/1.1\r\n\r\n", "malformed request target"),
        ("GET / HTTP/2.0\r\n\r\n", "not an HTTP/1.0 or HTTP/1.1 request line"),
        ("GET / HTTP/1.1 \r\n\r\n", "not an HTTP/1.0 or HTTP/1.1 request line"),
        ("GET /\r\n\r\n", "malformed request target"),
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", "a line not ended by CRLF"),
        ("GET / HTTP/1.1\r\nHost: a\n\n", "a line not ended by CRLF"),
        ("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", "a header line not ended by CRLF"),
        ("GET / HTTP/1.1\r\nX-A: nul\u{0}\r\n\r\n", "a control character in a header value"),
        ("GET / HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n", "a folded header line"),
        ("GET / HTTP/1.1\r\nBad Header\r\n\r\n", "a header name that is not a token"),
        ("GET / HTTP/1.1\r\nX-A : a\r\n\r\n", "a header name that is not a token"),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "two different Content-Length values"),
        ("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", "a Content-Length that is not a number"),
        ("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", "a Content-Length that is not a number"),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both Content-Length and Transfer-Encoding"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "a Transfer-Encoding that does not end with chunked"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", "a Transfer-Encoding that does not end with chunked"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 request"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", "an invalid chunk size line"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", "a chunk's data is not followed by CRLF"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", "an invalid trailer line"),
    ])
    func refused(text: String, reason: String) {
        let parts = Self.read(text)
        #expect(parts.last == "error: \(reason)", "\(parts)")
        #expect(Self.read(text, step: 1).last == "error: \(reason)")
        #expect(Self.read(text, step: 7).last == "error: \(reason)")
    }

    @Test("A head past its limit is refused before it all comes")
    func limits() {
        let long = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: ClientRequestDecoder.maxHeadBytes)
        #expect(Self.read(long).last == "error: head larger than \(ClientRequestDecoder.maxHeadBytes) bytes")
    }
}
