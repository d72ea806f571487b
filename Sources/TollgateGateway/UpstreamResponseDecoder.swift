import NIOCore
import NIOHTTP1

/// Where one header line of an upstream's answer lies in its head's bytes (offsets from the
/// head's first byte): its name, and its value without the whitespace around it.
struct HeaderLine: Equatable {
    var name: Range<Int>
    var value: Range<Int>
}

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

/// Why an upstream's answer could not be read. The connection is closed: what follows on it
/// can no longer be told apart.
struct UpstreamResponseError: Error, CustomStringConvertible, Equatable {
    var reason: String
    var description: String { "invalid answer from the upstream: \(reason)" }
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
    /// The largest chunk-size line (with its extensions) and the largest trailer section.
    static let maxChunkLineBytes = 4096
    static let maxTrailerBytes = 16 * 1024

    private enum State: Equatable {
        /// Waiting for a head.
        case head
        /// The head said there is no body: the end comes next.
        case endNext
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkDataEnd
        case trailers(read: Int)
        case untilClose
        /// The answer has ended; anything more is not part of it.
        case done
    }

    private var state = State.done
    private var requestIsHead = false

    /// A request was sent: its answer comes next. An answer to `HEAD` has no body.
    mutating func expectAnswer(toHead isHead: Bool) {
        state = .head
        requestIsHead = isHead
    }

    /// The next part readable from `buffer` (its read bytes consumed), or nil until more bytes come.
    mutating func next(from buffer: inout ByteBuffer) throws(UpstreamResponseError) -> UpstreamResponsePart? {
        switch state {
        case .head:
            guard let head = try readHead(from: &buffer) else { return nil }
            return .head(head)
        case .endNext:
            state = .done
            return .end
        case .length(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let part = buffer.readSlice(length: count)!
            state = count == remaining ? .endNext : .length(remaining: remaining - count)
            return .body(part)
        case .chunkSize:
            guard let line = try Self.readLine(from: &buffer, limit: Self.maxChunkLineBytes, what: "chunk size line") else {
                return nil
            }
            let size = try Self.chunkSize(line)
            state = size == 0 ? .trailers(read: 0) : .chunkData(remaining: size)
            return try next(from: &buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let part = buffer.readSlice(length: count)!
            state = count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - count)
            return .body(part)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                throw UpstreamResponseError(reason: "a chunk's data is not followed by CRLF")
            }
            state = .chunkSize
            return try next(from: &buffer)
        case .trailers(let read):
            let limit = Self.maxTrailerBytes - read
            guard limit > 0 else { throw UpstreamResponseError(reason: "trailer section longer than \(Self.maxTrailerBytes) bytes") }
            guard let line = try Self.readLine(from: &buffer, limit: limit, what: "trailer section") else { return nil }
            if line.readableBytes == 0 {
                state = .done
                return .end
            }
            try Self.checkTrailer(line)
            state = .trailers(read: read + line.readableBytes + 2)
            return try next(from: &buffer)
        case .untilClose:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .done:
            // Bytes after the end of an answer: handed on, so that the connection is not reused.
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        }
    }

    /// The connection closed: the end of an answer read until then, nil otherwise (an answer
    /// cut short is the caller's to tell from its missing end).
    mutating func connectionClosed() -> UpstreamResponsePart? {
        guard state == .untilClose else { return nil }
        state = .done
        return .end
    }

    // MARK: Heads

    private mutating func readHead(from buffer: inout ByteBuffer) throws(UpstreamResponseError) -> UpstreamResponseHead? {
        let found = buffer.withUnsafeReadableBytes { bytes in Self.headLength(in: bytes) }
        guard let length = found else {
            if buffer.readableBytes > Self.maxHeadBytes { throw UpstreamResponseError(reason: "head larger than \(Self.maxHeadBytes) bytes") }
            return nil
        }
        guard length <= Self.maxHeadBytes else { throw UpstreamResponseError(reason: "head larger than \(Self.maxHeadBytes) bytes") }
        var (head, chunked) = try Self.parseHead(buffer.readSlice(length: length)!)
        switch head.status.code {
        case 101:
            state = .done
            head.isKeepAlive = false
        case 100..<200:
            state = .head  // the final answer follows
        case 204, 304:
            state = .endNext
        default:
            if requestIsHead {
                state = .endNext
            } else if chunked {
                state = .chunkSize
            } else if let length = head.contentLength {
                state = length == 0 ? .endNext : .length(remaining: length)
            } else {
                state = .untilClose
                head.isKeepAlive = false
            }
        }
        return head
    }

    /// The length of the head at the start of `bytes`, through its blank line; nil if it has not all come.
    private static func headLength(in bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var index = 3
        while index < bytes.count {
            // Looks at every fourth byte while it cannot be part of CRLFCRLF.
            let byte = bytes[index]
            if byte == 0x0A {
                if bytes[index - 1] == 0x0D, bytes[index - 2] == 0x0A, bytes[index - 3] == 0x0D { return index + 1 }
                index += 2
            } else if byte == 0x0D {
                index += 1
            } else {
                index += 4
            }
        }
        return nil
    }

    /// Reads a whole head (through its blank line), and whether its body is chunked.
    private static func parseHead(_ head: ByteBuffer) throws(UpstreamResponseError) -> (head: UpstreamResponseHead, chunked: Bool) {
        try head.withUnsafeReadableBytes { bytes throws(UpstreamResponseError) in try parseHead(head, bytes) }
    }

    private static func parseHead(
        _ head: ByteBuffer, _ bytes: UnsafeRawBufferPointer
    ) throws(UpstreamResponseError) -> (head: UpstreamResponseHead, chunked: Bool) {
        // Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF.
        let prefix: [UInt8] = Array("HTTP/1.".utf8)
        guard bytes.count >= 14, prefix.indices.allSatisfy({ bytes[$0] == prefix[$0] }),
              isDigit(bytes[7]), bytes[8] == 0x20, isDigit(bytes[9]), isDigit(bytes[10]), isDigit(bytes[11])
        else {
            throw UpstreamResponseError(reason: "no HTTP/1.x status line")
        }
        let version = bytes[7] == UInt8(ascii: "0") ? HTTPVersion.http1_0 : HTTPVersion.http1_1
        let status = Int(bytes[9] - 48) * 100 + Int(bytes[10] - 48) * 10 + Int(bytes[11] - 48)
        guard status >= 100 else { throw UpstreamResponseError(reason: "status \(status)") }
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
            throw UpstreamResponseError(reason: "status line not ended by CRLF")
        }
        index += 2

        var responseStatus = HTTPResponseStatus(statusCode: status)
        if case .custom = responseStatus {
            responseStatus = HTTPResponseStatus(
                statusCode: status, reasonPhrase: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[reason]), as: UTF8.self))
        }
        var lines: [HeaderLine] = []
        var contentLength: Int?
        var chunked = false
        var connectionClose = false, connectionKeepAlive = false, transferEncoding = false
        // Header lines until the blank line.
        while !(bytes[index] == 0x0D && bytes[index + 1] == 0x0A) {
            let nameStart = index
            while index < bytes.count, isTokenByte(bytes[index]) { index += 1 }
            guard index > nameStart, index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw UpstreamResponseError(reason: index == nameStart && isBlank(bytes[index]) ? "a folded header line" : "a header name that is not a token")
            }
            let name = nameStart..<index
            index += 1
            while isBlank(bytes[index]) { index += 1 }
            let valueStart = index
            var valueEnd = index
            while true {
                let byte = bytes[index]
                if byte == 0x0D { break }
                guard byte >= 0x20 && byte != 0x7F || byte == 0x09 else {
                    throw UpstreamResponseError(reason: "a control character in a header value")
                }
                index += 1
                if !isBlank(byte) { valueEnd = index }
            }
            guard bytes[index + 1] == 0x0A else { throw UpstreamResponseError(reason: "a header line not ended by CRLF") }
            index += 2
            let value = valueStart..<valueEnd
            lines.append(HeaderLine(name: name, value: value))

            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[name])
            let valueBytes = UnsafeRawBufferPointer(rebasing: bytes[value])
            switch name.count {
            case 14 where ResponseHead.equalsIgnoringCase(nameBytes, "content-length".utf8):
                guard let length = decimal(valueBytes) else { throw UpstreamResponseError(reason: "a Content-Length that is not a number") }
                if let earlier = contentLength, earlier != length {
                    throw UpstreamResponseError(reason: "two different Content-Length values")
                }
                contentLength = length
            case 17 where ResponseHead.equalsIgnoringCase(nameBytes, "transfer-encoding".utf8):
                transferEncoding = true
                // The last coding listed decides (several fields make one list).
                chunked = lastToken(valueBytes).map { ResponseHead.equalsIgnoringCase($0, "chunked".utf8) } ?? chunked
            case 10 where ResponseHead.equalsIgnoringCase(nameBytes, "connection".utf8):
                forEachToken(valueBytes) { token in
                    if ResponseHead.equalsIgnoringCase(token, "close".utf8) { connectionClose = true }
                    if ResponseHead.equalsIgnoringCase(token, "keep-alive".utf8) { connectionKeepAlive = true }
                }
            default:
                break
            }
        }
        if transferEncoding {
            // A length beside a transfer coding is not trusted: the connection ends with the answer.
            if contentLength != nil { connectionClose = true }
            if !chunked { connectionClose = true }
        }
        let response = UpstreamResponseHead(
            version: version, status: responseStatus, isKeepAlive: !connectionClose && (version == .http1_1 || connectionKeepAlive),
            contentLength: chunked ? nil : contentLength, bytes: head, lines: lines)
        return (response, chunked)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    private static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// tchar (RFC 9110 §5.6.2).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// A decimal number of at most 18 digits; nil for anything else.
    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    /// Calls `body` with each comma-separated element of a list, without blanks around it.
    private static func forEachToken(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        ResponseHead.forEachListElement(in: 0..<bytes.count, of: bytes) { body(UnsafeRawBufferPointer(rebasing: bytes[$0])) }
    }

    private static func lastToken(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var last: UnsafeRawBufferPointer?
        forEachToken(bytes) { last = $0 }
        return last
    }

    // MARK: Chunks

    /// A line ended by CRLF, without it; nil until it has all come. Throws past `limit` bytes,
    /// or for a CR or LF alone.
    private static func readLine(from buffer: inout ByteBuffer, limit: Int, what: String) throws(UpstreamResponseError) -> ByteBuffer? {
        let end: Int? = buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count, index <= limit {
                if bytes[index] == 0x0A { return index }
                index += 1
            }
            return nil
        }
        guard let end else {
            if buffer.readableBytes > limit { throw UpstreamResponseError(reason: "\(what) longer than \(limit) bytes") }
            return nil
        }
        guard end > 0, buffer.getInteger(at: buffer.readerIndex + end - 1, as: UInt8.self) == 0x0D else {
            throw UpstreamResponseError(reason: "\(what) not ended by CRLF")
        }
        let line = buffer.readSlice(length: end - 1)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// chunk-size [ chunk-ext ]: hexadecimal digits, then nothing or extensions after `;`.
    private static func chunkSize(_ line: ByteBuffer) throws(UpstreamResponseError) -> Int {
        let size: Int? = line.withUnsafeReadableBytes { bytes in
            var value = 0, index = 0
            while index < bytes.count, let digit = hexValue(bytes[index]) {
                guard index < 15 else { return nil }
                value = value << 4 | digit
                index += 1
            }
            guard index > 0 else { return nil }
            while index < bytes.count, isBlank(bytes[index]) { index += 1 }
            guard index == bytes.count || bytes[index] == UInt8(ascii: ";") else { return nil }
            // Extensions are ignored, but may hold no control character.
            for byte in bytes[index...] where byte < 0x20 && byte != 0x09 || byte == 0x7F { return nil }
            return value
        }
        guard let size else { throw UpstreamResponseError(reason: "an invalid chunk size line") }
        return size
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }

    /// A trailer field is read and dropped, but must be a field line.
    private static func checkTrailer(_ line: ByteBuffer) throws(UpstreamResponseError) {
        let valid = line.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count, isTokenByte(bytes[index]) { index += 1 }
            guard index > 0, index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            return bytes[(index + 1)...].allSatisfy { $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }
        }
        guard valid else { throw UpstreamResponseError(reason: "an invalid trailer line") }
    }
}
