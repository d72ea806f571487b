import NIOCore
import NIOHTTP1
import TollgateCore

/// How the body of an answer to the client is framed on the wire, decided when its head is written.
enum BodyFraming: Equatable {
    /// Body bytes go as they are: a `Content-Length` body, or one that ends with the connection.
    case raw
    /// Each body part is sent as a chunk; the answer ends with the last, empty chunk.
    case chunked
    /// The answer has no body (an answer to `HEAD`, a 1xx, 204 or 304): body bytes are dropped.
    case suppressed

    /// Appends one body part to `buffer`, framed.
    func append(_ part: ByteBuffer, to buffer: inout ByteBuffer) {
        switch self {
        case .raw:
            var part = part
            buffer.writeBuffer(&part)
        case .chunked:
            // An empty chunk would end the body.
            guard part.readableBytes > 0 else { return }
            ResponseHead.writeHex(part.readableBytes, into: &buffer)
            buffer.writeStaticString("\r\n")
            var part = part
            buffer.writeBuffer(&part)
            buffer.writeStaticString("\r\n")
        case .suppressed:
            break
        }
    }

    /// Appends the end of the body (the last chunk, when chunked) to `buffer`.
    func appendEnd(to buffer: inout ByteBuffer) {
        if self == .chunked { buffer.writeStaticString("0\r\n\r\n") }
    }
}

/// Writes the heads of answers to the client straight into a `ByteBuffer`: the proxy's client
/// side has no HTTP encoder (and no `HTTPHeaders` copy per answer). The framing rules are
/// SwiftNIO's `HTTPResponseEncoder`'s: a status without a body loses its length headers, a body
/// without `Content-Length` is chunked for HTTP/1.1 clients, and an answer to `HEAD` keeps the
/// headers a `GET` would have had but carries no body.
enum ResponseHead {
    /// `HTTP/1.x CODE REASON\r\n`.
    static func writeStatusLine(version: HTTPVersion, status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        if version.major == 1 && version.minor == 0 {
            buffer.writeStaticString("HTTP/1.0 ")
        } else if version.major == 1 && version.minor == 1 {
            buffer.writeStaticString("HTTP/1.1 ")
        } else {
            buffer.writeStaticString("HTTP/")
            buffer.writeString(String(version.major))
            buffer.writeStaticString(".")
            buffer.writeString(String(version.minor))
            buffer.writeStaticString(" ")
        }
        let code = Int(status.code)
        if code >= 100 && code <= 999 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 100))
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 10 % 10))
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(code % 10))
        } else {
            buffer.writeString(String(code))
        }
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
    }

    /// `name: value\r\n`, in one write to the buffer rather than four: each write checks the
    /// buffer's capacity, its uniqueness and, in NIO's code, exclusive access.
    static func writeField(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        name.withUTF8Bytes { name in
            value.withUTF8Bytes { value in
                writeField(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(value), into: &buffer)
            }
        }
    }

    /// A decimal number (a small `String`, which needs no allocation).
    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        buffer.writeString(String(value))
    }

    /// A chunk size: lower-case hexadecimal.
    static func writeHex(_ value: Int, into buffer: inout ByteBuffer) {
        let hexDigits: StaticString = "0123456789abcdef"
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4 - 4
        if shift < 0 { shift = 0 }
        hexDigits.withUTF8Buffer { digits in
            while shift >= 0 {
                buffer.writeInteger(digits[(value >> shift) & 0xF])
                shift -= 4
            }
        }
    }

    /// The `Connection` header Tollgate adds to an answer: `close` when the connection ends
    /// with it, `keep-alive` for an HTTP/1.0 client that keeps it.
    static func writeConnection(closeAfter: Bool, version: HTTPVersion, into buffer: inout ByteBuffer) {
        if closeAfter {
            buffer.writeStaticString("Connection: close\r\n")
        } else if version.major == 1 && version.minor == 0 {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
    }

    /// The head of an upstream's answer as the client gets it, written into `buffer`: the
    /// upstream's header lines as they came, without hop-by-hop headers and those its
    /// `Connection` lists, without any it sends under the name of one of `extra` (which are
    /// added), with Tollgate's own `Connection` when it needs one and the framing the client's
    /// version allows. Returns the framing of the body that follows.
    static func writeForwarded(
        _ upstream: UpstreamResponseHead, clientVersion: HTTPVersion, closeAfter: Bool, requestIsHead: Bool,
        extra: [(name: String, value: String)], into buffer: inout ByteBuffer
    ) -> BodyFraming {
        let mayHaveBody = upstream.status.mayHaveResponseBody
        writeStatusLine(version: clientVersion, status: upstream.status, into: &buffer)
        var hasLength = false
        upstream.bytes.withUnsafeReadableBytes { head in
            func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: head[range]) }
            // The `Connection` lines (usually one, listing `keep-alive` or `close`): the names
            // they list are looked up where they lie, with no list of them built per answer.
            func isConnection(_ line: HeaderLine) -> Bool { equalsIgnoringCase(bytes(line.name), "connection".utf8) }
            let hasConnection = upstream.lines.contains(where: isConnection)
            func listedInConnection(_ name: UnsafeRawBufferPointer) -> Bool {
                var listed = false
                for line in upstream.lines where !listed && isConnection(line) {
                    forEachListElement(in: line.value, of: head) { element in
                        if !listed, equalsIgnoringCase(bytes(element), name) { listed = true }
                    }
                }
                return listed
            }
            for line in upstream.lines {
                let name = bytes(line.name)
                if UpstreamRequest.isHopByHop(name) { continue }
                if hasConnection, listedInConnection(name) { continue }
                if !extra.isEmpty, extra.contains(where: { equalsIgnoringCase($0.name.utf8, name) }) { continue }
                if equalsIgnoringCase(name, "content-length".utf8) {
                    guard mayHaveBody else { continue }
                    hasLength = true
                }
                writeField(name, bytes(line.value), into: &buffer)
            }
        }
        writeConnection(closeAfter: closeAfter, version: clientVersion, into: &buffer)
        for field in extra { writeField(field.name, field.value, into: &buffer) }
        var framing = BodyFraming.raw
        if !mayHaveBody {
            framing = .suppressed
        } else if !hasLength && clientVersion.major == 1 && clientVersion.minor >= 1 {
            buffer.writeStaticString("transfer-encoding: chunked\r\n")
            framing = .chunked
        }
        buffer.writeStaticString("\r\n")
        return requestIsHead ? .suppressed : framing
    }

    /// `name: value\r\n` from bytes, in one write to the buffer.
    static func writeField(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: name.count + value.count + 4) { out in
            UnsafeMutableRawBufferPointer(rebasing: out[0..<name.count]).copyMemory(from: name)
            out[name.count] = UInt8(ascii: ":")
            out[name.count + 1] = UInt8(ascii: " ")
            UnsafeMutableRawBufferPointer(rebasing: out[(name.count + 2)..<(name.count + 2 + value.count)]).copyMemory(from: value)
            out[name.count + 2 + value.count] = UInt8(ascii: "\r")
            out[name.count + 3 + value.count] = UInt8(ascii: "\n")
            return name.count + value.count + 4
        }
    }

    /// Calls `body` with where each comma-separated element of the list in `range` of `bytes`
    /// lies, without the blanks around it; empty elements are skipped.
    static func forEachListElement(in range: Range<Int>, of bytes: UnsafeRawBufferPointer, _ body: (Range<Int>) -> Void) {
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = range.lowerBound
        while start <= range.upperBound {
            var end = start
            while end < range.upperBound, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var from = start, to = end
            while from < to, isBlank(bytes[from]) { from += 1 }
            while to > from, isBlank(bytes[to - 1]) { to -= 1 }
            if from < to { body(from..<to) }
            start = end + 1
        }
    }

    /// The whole of an answer Tollgate makes itself, head and body, written into `buffer`: its
    /// `headers` without any length, framing or `Connection` header of theirs, then
    /// `Content-Length` and Tollgate's `Connection`. An answer to `HEAD` has the head alone.
    static func writeOwn(
        version: HTTPVersion, status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer, closeAfter: Bool,
        requestIsHead: Bool, into buffer: inout ByteBuffer
    ) {
        writeStatusLine(version: version, status: status, into: &buffer)
        for (name, value) in headers {
            if equalsIgnoringCase(name.utf8, "content-length".utf8) || equalsIgnoringCase(name.utf8, "transfer-encoding".utf8)
                || equalsIgnoringCase(name.utf8, "connection".utf8)
            {
                continue
            }
            writeField(name, value, into: &buffer)
        }
        let mayHaveBody = status.mayHaveResponseBody
        if mayHaveBody {
            buffer.writeStaticString("Content-Length: ")
            writeDecimal(body.readableBytes, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        writeConnection(closeAfter: closeAfter, version: version, into: &buffer)
        buffer.writeStaticString("\r\n")
        if mayHaveBody && !requestIsHead {
            var body = body
            buffer.writeBuffer(&body)
        }
    }

    /// Whether two names are equal, ASCII letters compared without case.
    static func equalsIgnoringCase<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        guard a.count == b.count else { return false }
        // Native strings' bytes are contiguous: compared there, without stepping their views.
        if let contiguous = a.withContiguousStorageIfAvailable({ x in b.withContiguousStorageIfAvailable { y in sameIgnoringCase(x, y) } }),
           let result = contiguous
        {
            return result
        }
        return sameIgnoringCase(a, b)
    }

    private static func sameIgnoringCase<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        for (x, y) in zip(a, b) where x != y {
            guard x | 0x20 == y | 0x20, (x | 0x20) >= UInt8(ascii: "a"), (x | 0x20) <= UInt8(ascii: "z") else { return false }
        }
        return true
    }
}
