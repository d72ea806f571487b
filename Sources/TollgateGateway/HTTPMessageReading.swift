#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Where one header line lies in a head's bytes (offsets from the head's first byte): its name,
/// and its value without the whitespace around it.
struct HeaderLine: Equatable {
    var name: Range<Int>
    var value: Range<Int>
}

/// Why an HTTP/1.1 message could not be read. Its connection is closed: what follows on it can
/// no longer be told apart.
struct HTTPReadError: Error, CustomStringConvertible, Equatable {
    var reason: String
    var description: String { "unreadable HTTP message: \(reason)" }
}

/// The header section of a head, checked and read in one pass: where each line lies, and what
/// the lines that frame the message say. Lines are read strictly, since the proxy copies them
/// on as they came: names that are tokens, values without control characters, every line ended
/// by CRLF, no folded lines, one `Content-Length` number.
struct FieldSection {
    var lines: [HeaderLine] = []
    /// The `Content-Length` announced (several fields must agree).
    var contentLength: Int?
    /// A `Transfer-Encoding` field came.
    var transferEncoding = false
    /// The last transfer coding listed is `chunked`.
    var chunked = false
    /// A transfer coding other than `chunked` is listed.
    var otherCodings = false
    /// The `Connection` options.
    var connectionClose = false
    var connectionKeepAlive = false
    var connectionUpgrade = false

    /// Reads the header lines from `index` through the blank line that ends the head (which
    /// `HeadSearch` found), leaving `index` after it. `spare` is storage to reuse, taken (left
    /// empty): a previous head's lines, which need no allocation once nothing else holds them.
    static func read(
        _ bytes: UnsafeRawBufferPointer, from index: inout Int, reusing spare: inout [HeaderLine]
    ) throws(HTTPReadError) -> FieldSection {
        var section = FieldSection()
        swap(&section.lines, &spare)
        section.lines.removeAll(keepingCapacity: true)
        // One allocation for the usual number of lines, not one per doubling.
        section.lines.reserveCapacity(16)
        while !(bytes[index] == 0x0D && bytes[index + 1] == 0x0A) {
            let nameStart = index
            while index < bytes.count, HTTPSyntax.isTokenByte(bytes[index]) { index += 1 }
            guard index > nameStart, index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw HTTPReadError(
                    reason: index == nameStart && HTTPSyntax.isBlank(bytes[index]) ? "a folded header line" : "a header name that is not a token")
            }
            let name = nameStart..<index
            index += 1
            while HTTPSyntax.isBlank(bytes[index]) { index += 1 }
            let valueStart = index
            var valueEnd = index
            while true {
                let byte = bytes[index]
                if byte == 0x0D { break }
                guard byte >= 0x20 && byte != 0x7F || byte == 0x09 else {
                    throw HTTPReadError(reason: "a control character in a header value")
                }
                index += 1
                if !HTTPSyntax.isBlank(byte) { valueEnd = index }
            }
            guard bytes[index + 1] == 0x0A else { throw HTTPReadError(reason: "a header line not ended by CRLF") }
            index += 2
            let value = valueStart..<valueEnd
            section.lines.append(HeaderLine(name: name, value: value))
            try section.note(name: UnsafeRawBufferPointer(rebasing: bytes[name]), value: value, of: bytes)
        }
        index += 2
        return section
    }

    /// Takes note of what a framing field says.
    private mutating func note(name: UnsafeRawBufferPointer, value: Range<Int>, of bytes: UnsafeRawBufferPointer) throws(HTTPReadError) {
        switch name.count {
        case 14 where ResponseHead.equalsIgnoringCase(name, "content-length".utf8):
            guard let length = HTTPSyntax.decimal(UnsafeRawBufferPointer(rebasing: bytes[value])) else {
                throw HTTPReadError(reason: "a Content-Length that is not a number")
            }
            if let earlier = contentLength, earlier != length { throw HTTPReadError(reason: "two different Content-Length values") }
            contentLength = length
        case 17 where ResponseHead.equalsIgnoringCase(name, "transfer-encoding".utf8):
            transferEncoding = true
            // The last coding listed decides (several fields make one list).
            ResponseHead.forEachListElement(in: value, of: bytes) { coding in
                chunked = ResponseHead.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: bytes[coding]), "chunked".utf8)
                if !chunked { otherCodings = true }
            }
        case 10 where ResponseHead.equalsIgnoringCase(name, "connection".utf8):
            ResponseHead.forEachListElement(in: value, of: bytes) { option in
                let option = UnsafeRawBufferPointer(rebasing: bytes[option])
                if ResponseHead.equalsIgnoringCase(option, "close".utf8) { connectionClose = true }
                if ResponseHead.equalsIgnoringCase(option, "keep-alive".utf8) { connectionKeepAlive = true }
                if ResponseHead.equalsIgnoringCase(option, "upgrade".utf8) { connectionUpgrade = true }
            }
        default:
            break
        }
    }
}

/// Finds where a head ends in the bytes that came, looking at each byte once however the head
/// is cut into reads. A line feed without its carriage return is refused as soon as it comes
/// (a head of such lines would never end), and with the same reason however the bytes came.
struct HeadSearch {
    /// How far the bytes were searched (less the three that may start the blank line's CRLFCRLF).
    private var searched = 0

    /// The length of the head at the start of `bytes`, through its blank line; nil if it has not all come.
    mutating func length(in bytes: UnsafeRawBufferPointer) throws(HTTPReadError) -> Int? {
        let found = Self.headLength(in: bytes, from: searched + 3)
        let end = found ?? bytes.count
        var index = min(searched, end)
        while index < end, let base = bytes.baseAddress, let lineFeed = memchr(base + index, 0x0A, end - index) {
            index = base.distance(to: UnsafeRawPointer(lineFeed))
            if index == 0 || bytes[index - 1] != 0x0D { throw HTTPReadError(reason: "a line not ended by CRLF") }
            index += 1
        }
        searched = found == nil ? max(0, bytes.count - 3) : 0
        return found
    }

    /// The length of the head at the start of `bytes`, through its blank line, looking from
    /// `start` on (at least 3); nil if it has not all come.
    private static func headLength(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var index = max(start, 3)
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
}

/// What a body reader reads next: bytes of the body (without chunked framing), or its end.
enum BodyPart {
    case bytes(ByteBuffer)
    case end
}

/// Reads a message's body by its framing (RFC 9112 §6 and §7.1): a length, chunks (their sizes,
/// extensions and trailer fields read and dropped), or everything until the connection closes.
struct BodyReader {
    /// The largest chunk-size line (with its extensions) and the largest trailer section.
    static let maxChunkLineBytes = 4096
    static let maxTrailerBytes = 16 * 1024

    enum State: Equatable {
        /// `remaining` bytes to come; at zero, the end.
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkDataEnd
        case trailers(read: Int)
        case untilClose
        case ended
    }

    var state: State

    init(_ state: State = .ended) {
        self.state = state
    }

    /// The next part readable from `buffer` (its read bytes consumed), or nil until more bytes come.
    mutating func next(from buffer: inout ByteBuffer) throws(HTTPReadError) -> BodyPart? {
        while true {
            switch state {
            case .length(let remaining):
                if remaining == 0 {
                    state = .ended
                    return .end
                }
                guard let part = Self.slice(upTo: remaining, of: &buffer) else { return nil }
                state = .length(remaining: remaining - part.readableBytes)
                return .bytes(part)
            case .chunkSize:
                guard let line = try HTTPSyntax.readLine(from: &buffer, limit: Self.maxChunkLineBytes, what: "chunk size line") else {
                    return nil
                }
                let size = try HTTPSyntax.chunkSize(line)
                state = size == 0 ? .trailers(read: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard let part = Self.slice(upTo: remaining, of: &buffer) else { return nil }
                state = part.readableBytes == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - part.readableBytes)
                return .bytes(part)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                    throw HTTPReadError(reason: "a chunk's data is not followed by CRLF")
                }
                state = .chunkSize
            case .trailers(let read):
                let limit = Self.maxTrailerBytes - read
                guard limit > 0 else { throw HTTPReadError(reason: "trailer section longer than \(Self.maxTrailerBytes) bytes") }
                guard let line = try HTTPSyntax.readLine(from: &buffer, limit: limit, what: "trailer section") else { return nil }
                if line.readableBytes == 0 {
                    state = .ended
                    return .end
                }
                try HTTPSyntax.checkTrailer(line)
                state = .trailers(read: read + line.readableBytes + 2)
            case .untilClose:
                guard buffer.readableBytes > 0 else { return nil }
                return .bytes(buffer.readSlice(length: buffer.readableBytes)!)
            case .ended:
                return nil
            }
        }
    }

    /// At most `count` of the bytes that came; nil when none did.
    private static func slice(upTo count: Int, of buffer: inout ByteBuffer) -> ByteBuffer? {
        guard buffer.readableBytes > 0 else { return nil }
        return buffer.readSlice(length: min(count, buffer.readableBytes))!
    }
}

/// The bytes of HTTP/1.1 (RFC 9110 §5.6, RFC 9112), as both sides of the proxy read them.
enum HTTPSyntax {
    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// Whether `HTTP/1.` is at `index` of `bytes` (compared in place: no array per head).
    static func hasVersionPrefix(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Bool {
        let prefix: StaticString = "HTTP/1."
        guard index >= 0, index + prefix.utf8CodeUnitCount <= bytes.count else { return false }
        return prefix.withUTF8Buffer { prefix in prefix.indices.allSatisfy { bytes[index + $0] == prefix[$0] } }
    }
    static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenByte(_ byte: UInt8) -> Bool {
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
    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    /// A line ended by CRLF, without it; nil until it has all come. Throws past `limit` bytes,
    /// or for a line not ended by CRLF.
    static func readLine(from buffer: inout ByteBuffer, limit: Int, what: String) throws(HTTPReadError) -> ByteBuffer? {
        let end: Int? = buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count, index <= limit {
                if bytes[index] == 0x0A { return index }
                index += 1
            }
            return nil
        }
        guard let end else {
            if buffer.readableBytes > limit { throw HTTPReadError(reason: "\(what) longer than \(limit) bytes") }
            return nil
        }
        guard end > 0, buffer.getInteger(at: buffer.readerIndex + end - 1, as: UInt8.self) == 0x0D else {
            throw HTTPReadError(reason: "\(what) not ended by CRLF")
        }
        let line = buffer.readSlice(length: end - 1)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// chunk-size [ chunk-ext ]: hexadecimal digits, then nothing or extensions after `;`.
    static func chunkSize(_ line: ByteBuffer) throws(HTTPReadError) -> Int {
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
        guard let size else { throw HTTPReadError(reason: "an invalid chunk size line") }
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
    static func checkTrailer(_ line: ByteBuffer) throws(HTTPReadError) {
        let valid = line.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count, isTokenByte(bytes[index]) { index += 1 }
            guard index > 0, index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            return bytes[(index + 1)...].allSatisfy { $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }
        }
        guard valid else { throw HTTPReadError(reason: "an invalid trailer line") }
    }
}
