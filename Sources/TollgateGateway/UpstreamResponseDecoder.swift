import NIOCore
import NIOHTTP1

/// The head of an upstream's answer, read in place from its bytes: the proxy copies its header
/// lines to the client from there, without building `HTTPHeaders` or a `String` per field.
struct UpstreamResponseHead {
    var version: HTTPVersion
    var status: HTTPResponseStatus
    /// The connection may carry another request once this answer has ended.
    var isKeepAlive: Bool
    /// The `Content-Length` the answer announced (never set for a chunked answer).
    var contentLength: Int?
    /// The status line and the header lines, as they came.
    var bytes: ByteBuffer
    var lines: [HeaderLine]
}

/// What the upstream side of the proxy reads from a connection: an answer's head, parts of
/// its body (without any chunked framing), its end.
enum UpstreamResponsePart {
    case head(UpstreamResponseHead)
    case body(ByteBuffer)
    case end
}

/// Reads HTTP/1.1 answers from an upstream connection's bytes (RFC 9112): a value type fed the
/// bytes that arrived, returning the parts it can read from them, one at a time. Heads are
/// checked strictly, since their lines go on to the client as they are: a status line
/// `HTTP/1.x NNN`, names that are tokens, values without control characters, every line ended
/// by CRLF, no folded lines. The body's length follows §6.3: none for an answer to `HEAD`, a
/// 1xx, 204 or 304; chunked when `Transfer-Encoding` ends with `chunked` (the connection then
/// not reused if `Content-Length` came too); `Content-Length`, which must be one number;
/// otherwise until the connection closes.
struct UpstreamResponseDecoder {
    /// The largest head read (SwiftNIO's decoder allows 80 KiB).
    static let maxHeadBytes = 80 * 1024

    private enum State: Equatable {
        /// Waiting for a head.
        case head
        /// Reading the body.
        case body
        /// The answer has ended; anything more is not part of it.
        case done
    }

    private var state = State.done
    private var body = BodyReader()
    private var headSearch = HeadSearch()
    private var requestIsHead = false
    /// The last head's lines: their storage holds the next head's once that head is let go.
    private var spareLines: [HeaderLine] = []

    /// A request was sent: its answer comes next. An answer to `HEAD` has no body.
    mutating func expectAnswer(toHead isHead: Bool) {
        state = .head
        headSearch = HeadSearch()
        requestIsHead = isHead
    }

    /// The next part readable from `buffer` (its read bytes consumed), or nil until more bytes come.
    mutating func next(from buffer: inout ByteBuffer) throws(HTTPReadError) -> UpstreamResponsePart? {
        switch state {
        case .head:
            guard let head = try readHead(from: &buffer) else { return nil }
            return .head(head)
        case .body:
            switch try body.next(from: &buffer) {
            case .bytes(let bytes): return .body(bytes)
            case .end:
                state = .done
                return .end
            case nil: return nil
            }
        case .done:
            // Bytes after the end of an answer: handed on, so that the connection is not reused.
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        }
    }

    /// The connection closed: the end of an answer read until then, nil otherwise (an answer
    /// cut short is the caller's to tell from its missing end).
    mutating func connectionClosed() -> UpstreamResponsePart? {
        guard state == .body, body.state == .untilClose else { return nil }
        state = .done
        return .end
    }

    // MARK: Heads

    private mutating func readHead(from buffer: inout ByteBuffer) throws(HTTPReadError) -> UpstreamResponseHead? {
        let found = try buffer.withUnsafeReadableBytes { bytes throws(HTTPReadError) in try headSearch.length(in: bytes) }
        guard let length = found else {
            if buffer.readableBytes > Self.maxHeadBytes { throw HTTPReadError(reason: "head larger than \(Self.maxHeadBytes) bytes") }
            return nil
        }
        guard length <= Self.maxHeadBytes else { throw HTTPReadError(reason: "head larger than \(Self.maxHeadBytes) bytes") }
        var (head, chunked) = try Self.parseHead(buffer.readSlice(length: length)!, reusing: &spareLines)
        spareLines = head.lines
        state = .body
        switch head.status.code {
        case 101:
            state = .done
            head.isKeepAlive = false
        case 100..<200:
            state = .head  // the final answer follows
        case 204, 304:
            body = BodyReader(.length(remaining: 0))
        default:
            if requestIsHead {
                body = BodyReader(.length(remaining: 0))
            } else if chunked {
                body = BodyReader(.chunkSize)
            } else if let length = head.contentLength {
                body = BodyReader(.length(remaining: length))
            } else {
                body = BodyReader(.untilClose)
                head.isKeepAlive = false
            }
        }
        return head
    }

    /// Reads a whole head (through its blank line), and whether its body is chunked.
    private static func parseHead(
        _ head: ByteBuffer, reusing spare: inout [HeaderLine]
    ) throws(HTTPReadError) -> (head: UpstreamResponseHead, chunked: Bool) {
        try head.withUnsafeReadableBytes { bytes throws(HTTPReadError) in try parseHead(head, bytes, reusing: &spare) }
    }

    private static func parseHead(
        _ head: ByteBuffer, _ bytes: UnsafeRawBufferPointer, reusing spare: inout [HeaderLine]
    ) throws(HTTPReadError) -> (head: UpstreamResponseHead, chunked: Bool) {
        // Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF.
        guard bytes.count >= 14, HTTPSyntax.hasVersionPrefix(bytes, at: 0),
              HTTPSyntax.isDigit(bytes[7]), bytes[8] == 0x20, HTTPSyntax.isDigit(bytes[9]), HTTPSyntax.isDigit(bytes[10]),
              HTTPSyntax.isDigit(bytes[11])
        else {
            throw HTTPReadError(reason: "no HTTP/1.x status line")
        }
        let version = bytes[7] == UInt8(ascii: "0") ? HTTPVersion.http1_0 : HTTPVersion.http1_1
        let status = Int(bytes[9] - 48) * 100 + Int(bytes[10] - 48) * 10 + Int(bytes[11] - 48)
        guard status >= 100 else { throw HTTPReadError(reason: "status \(status)") }
        var index = 12
        var reason = index..<index
        if bytes[index] == 0x20 {
            // The proxy writes a known status's own reason phrase, and forwards this one only for
            // a status it does not know.
            index += 1
            let start = index
            while index < bytes.count, bytes[index] >= 0x20 && bytes[index] != 0x7F || bytes[index] == 0x09 { index += 1 }
            reason = start..<index
        }
        guard index + 1 < bytes.count, bytes[index] == 0x0D, bytes[index + 1] == 0x0A else {
            throw HTTPReadError(reason: "status line not ended by CRLF")
        }
        index += 2

        var responseStatus = HTTPResponseStatus(statusCode: status)
        if case .custom = responseStatus {
            responseStatus = HTTPResponseStatus(
                statusCode: status, reasonPhrase: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[reason]), as: UTF8.self))
        }
        let fields = try FieldSection.read(bytes, from: &index, reusing: &spare)
        var connectionClose = fields.connectionClose
        if fields.transferEncoding {
            // A length beside a transfer coding is not trusted: the connection ends with the answer.
            if fields.contentLength != nil || !fields.chunked { connectionClose = true }
        }
        let response = UpstreamResponseHead(
            version: version, status: responseStatus,
            isKeepAlive: !connectionClose && (version == .http1_1 || fields.connectionKeepAlive),
            contentLength: fields.chunked ? nil : fields.contentLength, bytes: head, lines: fields.lines)
        return (response, fields.chunked)
    }
}
