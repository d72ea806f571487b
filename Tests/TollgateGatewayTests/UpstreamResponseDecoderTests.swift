import NIOCore
import NIOHTTP1
import Testing
@testable import TollgateGateway

/// The upstream side's reader of answers, in memory: heads, every framing of a body, and the
/// answers it refuses; fed whole and a byte at a time.
@Suite("Upstream answers read from bytes (in memory)")
struct UpstreamResponseDecoderTests {
    /// What the decoder reads from `text`, as text, fed `step` bytes at a time; then the
    /// connection closes when `close`. A refusal ends the list with `error: reason`.
    static func read(_ text: String, toHead: Bool = false, step: Int? = nil, close: Bool = false) -> [String] {
        var decoder = UpstreamResponseDecoder()
        decoder.expectAnswer(toHead: toHead)
        let all = Array(text.utf8)
        let step = step ?? max(all.count, 1)
        var received = ByteBuffer()
        var parts: [String] = []
        var body = ""
        func record(_ part: UpstreamResponsePart) {
            switch part {
            case .head(let head):
                var fields: [String] = []
                head.bytes.withUnsafeReadableBytes { bytes in
                    for line in head.lines {
                        fields.append(String(decoding: bytes[line.name], as: UTF8.self) + "=" + String(decoding: bytes[line.value], as: UTF8.self))
                    }
                }
                let length = head.contentLength.map { " length \($0)" } ?? ""
                parts.append("head \(head.status.code)\(head.isKeepAlive ? " keep-alive" : "")\(length) [\(fields.joined(separator: ", "))]")
            case .body(let bytes):
                body += String(buffer: bytes)
            case .end:
                if !body.isEmpty { parts.append("body \(body)") }
                body = ""
                parts.append("end")
            }
        }
        for start in stride(from: 0, to: all.count, by: step) {
            received.writeBytes(all[start..<min(start + step, all.count)])
            do {
                while let part = try decoder.next(from: &received) { record(part) }
            } catch {
                return parts + ["error: \(error.reason)"]
            }
        }
        if close, let end = decoder.connectionClosed() { record(end) }
        if !body.isEmpty { parts.append("body \(body) (no end)") }
        return parts
    }

    /// The same parts whether the bytes come whole or one by one.
    static func readEveryWay(_ text: String, toHead: Bool = false, close: Bool = false) -> [String] {
        let whole = read(text, toHead: toHead, close: close)
        #expect(read(text, toHead: toHead, step: 1, close: close) == whole, "fed a byte at a time")
        #expect(read(text, toHead: toHead, step: 7, close: close) == whole, "fed 7 bytes at a time")
        return whole
    }

    @Test("A Content-Length body, its fields where they lie, values without the blanks around them")
    func lengthBody() {
        #expect(Self.readEveryWay("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  one two \t\r\nX-Empty:\r\n\r\nhello") == [
            "head 200 keep-alive length 5 [Content-Length=5, X-A=one two, X-Empty=]", "body hello", "end",
        ])
        #expect(Self.readEveryWay("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == ["head 200 keep-alive length 0 [Content-Length=0]", "end"])
    }

    @Test("A chunked body: sizes in hex with extensions, trailers dropped; the length beside it ignored and the connection not kept")
    func chunkedBody() {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;name=value\r\nhello\r\nA \r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n"
        #expect(Self.readEveryWay(text) == ["head 200 keep-alive [Transfer-Encoding=gzip, chunked]", "body hello, world!!!", "end"])
        let both = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
        #expect(Self.readEveryWay(both) == ["head 200 [Content-Length=3, Transfer-Encoding=chunked]", "body ab", "end"])
    }

    @Test("No body: answers to HEAD, 204 and 304, whatever their length says; 1xx before the answer")
    func noBody() {
        #expect(Self.readEveryWay("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", toHead: true) == ["head 200 keep-alive length 5 [Content-Length=5]", "end"])
        #expect(Self.readEveryWay("HTTP/1.1 204 No Content\r\n\r\n") == ["head 204 keep-alive []", "end"])
        #expect(Self.readEveryWay("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n") == [
            "head 304 keep-alive [Transfer-Encoding=chunked]", "end",
        ])
        #expect(Self.readEveryWay("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") == [
            "head 100 keep-alive []", "head 103 keep-alive [Link=</a>]", "head 200 keep-alive length 2 [Content-Length=2]", "body ok", "end",
        ])
    }

    @Test("Without a length the body ends with the connection, which is not kept; HTTP/1.0 keeps it only when asked")
    func untilClose() {
        #expect(Self.readEveryWay("HTTP/1.1 200 OK\r\n\r\nall of it", close: true) == ["head 200 []", "body all of it", "end"])
        #expect(Self.readEveryWay("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", close: true) == [
            "head 200 [Transfer-Encoding=gzip]", "body zz", "end",
        ])
        #expect(Self.readEveryWay("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok") == ["head 200 length 2 [Content-Length=2]", "body ok", "end"])
        #expect(Self.readEveryWay("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok") == [
            "head 200 keep-alive length 2 [Connection=Keep-Alive, Content-Length=2]", "body ok", "end",
        ])
        #expect(Self.readEveryWay("HTTP/1.1 200 OK\r\nConnection: x, close\r\nContent-Length: 2\r\n\r\nok") == [
            "head 200 length 2 [Connection=x, close, Content-Length=2]", "body ok", "end",
        ])
        // Cut short: no end.
        #expect(Self.read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", close: true) == [
            "head 200 keep-alive length 5 [Content-Length=5]", "body hel (no end)",
        ])
    }

    @Test("A custom status keeps its reason phrase; bytes after the answer are handed on, not read as another")
    func customStatusAndTrailingBytes() {
        var decoder = UpstreamResponseDecoder()
        decoder.expectAnswer(toHead: false)
        var bytes = ByteBuffer(string: "HTTP/1.1 299 Fine Indeed\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
        guard case .head(let head) = try? decoder.next(from: &bytes) else {
            Issue.record("no head")
            return
        }
        #expect(head.status.code == 299 && head.status.reasonPhrase == "Fine Indeed")
        guard case .end = try? decoder.next(from: &bytes), case .body(let after) = try? decoder.next(from: &bytes) else {
            Issue.record("no end, or the bytes after it were not handed on")
            return
        }
        #expect(String(buffer: after) == "HTTP/1.1 200 OK\r\n\r\n")
    }

    @Test("Refused: what could split an answer or desynchronize the connection", arguments: [
        ("HTTP/2 200 OK\r\n\r\n", "no HTTP/1.x status line"),
        ("HTTP/1.1 20 OK\r\n\r\n", "no HTTP/1.x status line"),
        ("HTTP/1.1 099 Low\r\n\r\n", "status 99"),
        ("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "a line not ended by CRLF"),
        ("HTTP/1.1 200 OK\nContent-Length: 0\n\n", "a line not ended by CRLF"),
        ("HTTP/1.1 200 OK\r\nX-A: one\ntwo\r\n\r\n", "a line not ended by CRLF"),
        ("HTTP/1.1 200 OK\r\nX-A: one\rtwo\r\n\r\n", "a header line not ended by CRLF"),
        ("HTTP/1.1 200 OK\r\nX-A: nul\u{0}\r\n\r\n", "a control character in a header value"),
        ("HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\n\r\n", "a folded header line"),
        ("HTTP/1.1 200 OK\r\nX A: a\r\n\r\n", "a header name that is not a token"),
        ("HTTP/1.1 200 OK\r\n: a\r\n\r\n", "a header name that is not a token"),
        ("HTTP/1.1 200 OK\r\nX-A : a\r\n\r\n", "a header name that is not a token"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "two different Content-Length values"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "a Content-Length that is not a number"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n", "a Content-Length that is not a number"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n", "a Content-Length that is not a number"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", "an invalid chunk size line"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", "an invalid chunk size line"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", "a chunk's data is not followed by CRLF"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n", "chunk size line not ended by CRLF"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", "an invalid trailer line"),
    ])
    func refused(text: String, reason: String) {
        let parts = Self.read(text)
        #expect(parts.last == "error: \(reason)", "\(parts)")
        #expect(Self.read(text, step: 1).last == "error: \(reason)")
    }

    @Test("Heads and chunk lines past their limits are refused before they all come")
    func limits() {
        let long = "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "a", count: UpstreamResponseDecoder.maxHeadBytes)
        #expect(Self.read(long).last == "error: head larger than \(UpstreamResponseDecoder.maxHeadBytes) bytes")
        let chunkLine = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "x", count: 5000)
        #expect(Self.read(chunkLine).last == "error: chunk size line longer than \(BodyReader.maxChunkLineBytes) bytes")
    }
}
