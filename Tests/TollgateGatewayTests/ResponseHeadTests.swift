import NIOCore
import NIOHTTP1
import Testing
@testable import TollgateGateway

/// The heads of answers to clients, written as bytes, and their body framing: in memory.
@Suite("Response heads written in place (in memory)")
struct ResponseHeadTests {
    static func forwarded(
        _ status: HTTPResponseStatus, _ fields: [(String, String)], clientVersion: HTTPVersion = .http1_1, closeAfter: Bool = false,
        head: Bool = false, extra: [(name: String, value: String)] = []
    ) -> (String, BodyFraming) {
        var buffer = ByteBuffer()
        let framing = ResponseHead.writeForwarded(
            upstreamHead(status, fields), clientVersion: clientVersion,
            closeAfter: closeAfter, requestIsHead: head, extra: extra, into: &buffer)
        return (String(buffer: buffer), framing)
    }

    /// The head an upstream sends with these fields, read by the upstream side's decoder.
    static func upstreamHead(_ status: HTTPResponseStatus, _ fields: [(String, String)]) -> UpstreamResponseHead {
        var bytes = ByteBuffer(string: "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        for (name, value) in fields { bytes.writeString("\(name): \(value)\r\n") }
        bytes.writeString("\r\n")
        var decoder = UpstreamResponseDecoder()
        decoder.expectAnswer(toHead: false)
        guard case .head(let head) = try? decoder.next(from: &bytes) else {
            Issue.record("the decoder did not read the head")
            return UpstreamResponseHead(version: .http1_1, status: status, isKeepAlive: false, bytes: ByteBuffer(), lines: [])
        }
        return head
    }

    @Test("Answers lose hop-by-hop headers and those Connection names; the rest go as they came")
    func hopByHopRemoved() {
        let fields = [
            ("Content-Type", "text/plain"), ("Connection", "keep-alive, X-Hop"), ("x-hop", "1"), ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"), ("X-Kept", "yes"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
        ]
        let (text, framing) = Self.forwarded(.ok, fields)
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Kept: yes\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(framing == .chunked)
    }

    @Test("Forwarded: IPv6 addresses quoted in brackets, the host only when it is safe to quote")
    func forwardedElement() {
        func line(_ client: String, _ host: String?, tls: Bool = false) -> String {
            var buffer = ByteBuffer()
            UpstreamRequest.writeForwarded(client: client, host: host, overTLS: tls, into: &buffer)
            return String(buffer: buffer)
        }
        #expect(line("127.0.0.1", nil) == "Forwarded: for=127.0.0.1;proto=http\r\n")
        #expect(line("::1", "api.example", tls: true) == "Forwarded: for=\"[::1]\";proto=https;host=\"api.example\"\r\n")
        #expect(line("127.0.0.1", "a\"b") == "Forwarded: for=127.0.0.1;proto=http\r\n")
        #expect(line("127.0.0.1", "") == "Forwarded: for=127.0.0.1;proto=http\r\n")
    }

    @Test("Content-Length keeps the body raw; the connection's end is said when it comes")
    func lengthAndConnection() {
        let (kept, framing) = Self.forwarded(.created, [("Content-Length", "3")])
        #expect(kept == "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\n")
        #expect(framing == .raw)
        let (closing, _) = Self.forwarded(.ok, [("content-length", "3")], closeAfter: true)
        #expect(closing == "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nConnection: close\r\n\r\n")
        let (http10, http10Framing) = Self.forwarded(.ok, [("Content-Type", "text/plain")], clientVersion: .http1_0)
        #expect(http10 == "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n\r\n")
        #expect(http10Framing == .raw)
    }

    @Test("Statuses without a body lose their length headers; an answer to HEAD keeps them but has no body")
    func bodilessAnswers() {
        let (noContent, framing) = Self.forwarded(.noContent, [("Content-Length", "0"), ("X-A", "1")])
        #expect(noContent == "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
        #expect(framing == .suppressed)
        let (notModified, _) = Self.forwarded(.notModified, [("ETag", "\"x\"")])
        #expect(notModified == "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
        let (head, headFraming) = Self.forwarded(.ok, [("Content-Length", "12")], head: true)
        #expect(head == "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
        #expect(headFraming == .suppressed)
        let (headChunked, _) = Self.forwarded(.ok, [], head: true)
        #expect(headChunked == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    }

    @Test("Tollgate's rate-limit headers replace the upstream's of the same name, in any case")
    func extraHeadersReplace() {
        let (text, _) = Self.forwarded(
            .ok, [("x-ratelimit-remaining", "999"), ("Content-Length", "0")],
            extra: [(name: "X-RateLimit-Remaining", value: "4"), (name: "X-RateLimit-Limit", value: "5")])
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-RateLimit-Remaining: 4\r\nX-RateLimit-Limit: 5\r\n\r\n")
    }

    @Test("A custom status keeps the upstream's reason phrase")
    func customStatus() {
        let (text, _) = Self.forwarded(HTTPResponseStatus(statusCode: 299, reasonPhrase: "Fine"), [("Content-Length", "0")])
        #expect(text.hasPrefix("HTTP/1.1 299 Fine\r\n"))
    }

    @Test("Body parts are framed as the head said: raw, chunked (never an empty chunk), or dropped")
    func bodyFraming() {
        var buffer = ByteBuffer()
        BodyFraming.raw.append(ByteBuffer(string: "abc"), to: &buffer)
        BodyFraming.raw.appendEnd(to: &buffer)
        #expect(String(buffer: buffer) == "abc")
        buffer.clear()
        BodyFraming.chunked.append(ByteBuffer(string: String(repeating: "x", count: 26)), to: &buffer)
        BodyFraming.chunked.append(ByteBuffer(), to: &buffer)
        BodyFraming.chunked.append(ByteBuffer(string: "y"), to: &buffer)
        BodyFraming.chunked.appendEnd(to: &buffer)
        #expect(String(buffer: buffer) == "1a\r\n" + String(repeating: "x", count: 26) + "\r\n1\r\ny\r\n0\r\n\r\n")
        buffer.clear()
        BodyFraming.suppressed.append(ByteBuffer(string: "abc"), to: &buffer)
        BodyFraming.suppressed.appendEnd(to: &buffer)
        #expect(buffer.readableBytes == 0)
    }

    @Test("Chunk sizes in hexadecimal", arguments: [(1, "1"), (15, "f"), (16, "10"), (255, "ff"), (4096, "1000"), (65_537, "10001")])
    func hex(value: Int, expected: String) {
        var buffer = ByteBuffer()
        ResponseHead.writeHex(value, into: &buffer)
        #expect(String(buffer: buffer) == expected)
    }

    @Test("Tollgate's own answers: their headers without framing or Connection, then Content-Length and the body")
    func ownAnswers() {
        var buffer = ByteBuffer()
        ResponseHead.writeOwn(
            version: .http1_1, status: .ok,
            headers: HTTPHeaders([("Content-Type", "text/plain"), ("content-length", "99"), ("Connection", "x"), ("Transfer-Encoding", "chunked")]),
            body: ByteBuffer(string: "hello"), closeAfter: false, requestIsHead: false, into: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
        buffer.clear()
        ResponseHead.writeOwn(
            version: .http1_0, status: .ok, headers: [:], body: ByteBuffer(string: "hello"), closeAfter: true, requestIsHead: true,
            into: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
        buffer.clear()
        ResponseHead.writeOwn(
            version: .http1_1, status: .noContent, headers: [:], body: ByteBuffer(), closeAfter: false, requestIsHead: false,
            into: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 204 No Content\r\n\r\n")
    }

    @Test("Names compare without regard to ASCII case, and only letters fold")
    func caseFolding() {
        #expect(ResponseHead.equalsIgnoringCase("Content-Length".utf8, "content-LENGTH".utf8))
        #expect(!ResponseHead.equalsIgnoringCase("content-length".utf8, "content-lengths".utf8))
        // '@' (0x40) and '`' (0x60) differ only in the case bit but are not letters.
        #expect(!ResponseHead.equalsIgnoringCase("a@".utf8, "a`".utf8))
        #expect(!ResponseHead.equalsIgnoringCase("x-a".utf8, "x\ra".utf8))
    }
}
