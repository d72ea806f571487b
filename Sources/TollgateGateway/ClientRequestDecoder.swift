import NIOCore
import NIOHTTP1

/// The head of a client's request, read in place from its bytes: the proxy decides from it and
/// copies its header lines upstream from there, without building `HTTPHeaders` or a `String`
/// per field.
struct ClientRequestHead {
    /// What an upgrade request asks for (`Connection: upgrade` and `Upgrade`).
    enum Upgrade: Equatable {
        /// HTTP/2 over cleartext only (`curl --http2`), which may be declined by answering in HTTP/1.1.
        case h2c
        /// Anything else (WebSocket).
        case other
    }

    var method: HTTPMethod
    /// The request target, as it came.
    var target: String
    var version: HTTPVersion
    /// The connection may carry another request once this one is answered.
    var isKeepAlive: Bool
    /// The body's length; nil for a chunked body (a request without either has none).
    var contentLength: Int?
    /// The body is chunked (`Transfer-Encoding` ending with `chunked`).
    var chunked: Bool
    /// A transfer coding other than `chunked` is listed.
    var otherCodings: Bool
    var upgrade: Upgrade?
    /// `Expect: 100-continue`.
    var expectsContinue: Bool
    /// The request line and the header lines, as they came.
    var bytes: ByteBuffer
    var lines: [HeaderLine]

    /// Whether a body follows the head.
    var hasBody: Bool { chunked || (contentLength ?? 0) > 0 }

    /// The value of the first field named `name` (lower case), if one came.
    func value(of name: String) -> String? {
        withValue(of: name) { String(decoding: $0, as: UTF8.self) }
    }

    /// `body` with the bytes of the first field named `name` (lower case), where they lie; nil
    /// if none came.
    func withValue<T>(of name: String, _ body: (UnsafeRawBufferPointer) -> T) -> T? {
        bytes.withUnsafeReadableBytes { head in
            for line in lines where ResponseHead.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: head[line.name]), name.utf8) {
                return body(UnsafeRawBufferPointer(rebasing: head[line.value]))
            }
            return nil
        }
    }

    /// The head as SwiftNIO's type, for the port's own paths (`LocalRoutes`).
    var nioHead: HTTPRequestHead {
        let fields = bytes.withUnsafeReadableBytes { head in
            lines.map { line in
                (
                    String(decoding: UnsafeRawBufferPointer(rebasing: head[line.name]), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(rebasing: head[line.value]), as: UTF8.self)
                )
            }
        }
        return HTTPRequestHead(version: version, method: method, uri: target, headers: HTTPHeaders(fields))
    }
}

/// What the client side of the proxy reads from a connection: a request's head, parts of its
/// body (without any chunked framing), its end.
enum ClientRequestPart {
    case head(ClientRequestHead)
    case body(ByteBuffer)
    case end
}

/// Reads HTTP/1.1 requests from a client connection's bytes (RFC 9112): a value type fed the
/// bytes that arrived, returning the parts it can read from them, one at a time; a caller that
/// is not ready for the next request leaves its bytes unread. Heads are checked strictly, since
/// the gateway decides from them and copies their lines upstream: a request line
/// `METHOD SP target SP HTTP/1.x` whose method is upper-case letters, `-` and `_` (a method
/// frameworks would read in another case could not be matched to its endpoint) and whose target
/// holds no blank or control character; header lines as `FieldSection` reads them. The body's
/// length follows §6.3: chunked when `Transfer-Encoding` ends with `chunked`, otherwise
/// `Content-Length`, otherwise none. Refused: a transfer coding that does not end with
/// `chunked`, one beside `Content-Length` or in an HTTP/1.0 request (no length could be trusted:
/// the request smuggling of docs/security.md).
struct ClientRequestDecoder {
    /// The largest head read; the proxy's `ConnectionGuard` refuses smaller ones first (431).
    static let maxHeadBytes = 80 * 1024

    private var readingBody = false
    private var body = BodyReader()
    private var headSearch = HeadSearch()
    /// The last head's lines: their storage holds the next head's once that head is let go.
    private var spareLines: [HeaderLine] = []

    /// Whether the last request was read to its end (or none came yet).
    var isBetweenRequests: Bool { !readingBody }

    /// The next part readable from `buffer` (its read bytes consumed), or nil until more bytes come.
    mutating func next(from buffer: inout ByteBuffer) throws(HTTPReadError) -> ClientRequestPart? {
        if readingBody {
            switch try body.next(from: &buffer) {
            case .bytes(let bytes): return .body(bytes)
            case .end:
                readingBody = false
                return .end
            case nil: return nil
            }
        }
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
            buffer.moveReaderIndex(forwardBy: 2)
        }
        let found = try buffer.withUnsafeReadableBytes { bytes throws(HTTPReadError) in try headSearch.length(in: bytes) }
        guard let length = found else {
            if buffer.readableBytes > Self.maxHeadBytes { throw HTTPReadError(reason: "head larger than \(Self.maxHeadBytes) bytes") }
            return nil
        }
        guard length <= Self.maxHeadBytes else { throw HTTPReadError(reason: "head larger than \(Self.maxHeadBytes) bytes") }
        let head = try Self.parseHead(buffer.readSlice(length: length)!, reusing: &spareLines)
        spareLines = head.lines
        body = BodyReader(head.chunked ? .chunkSize : .length(remaining: head.contentLength ?? 0))
        readingBody = true
        return .head(head)
    }

    /// Reads a whole head (through its blank line).
    static func parseHead(_ head: ByteBuffer) throws(HTTPReadError) -> ClientRequestHead {
        var none: [HeaderLine] = []
        return try parseHead(head, reusing: &none)
    }

    /// Reads a whole head, its lines kept in `spare`'s storage (see `FieldSection.read`).
    static func parseHead(_ head: ByteBuffer, reusing spare: inout [HeaderLine]) throws(HTTPReadError) -> ClientRequestHead {
        try head.withUnsafeReadableBytes { bytes throws(HTTPReadError) in try parseHead(head, bytes, reusing: &spare) }
    }

    private static func parseHead(
        _ head: ByteBuffer, _ bytes: UnsafeRawBufferPointer, reusing spare: inout [HeaderLine]
    ) throws(HTTPReadError) -> ClientRequestHead {
        // Request line: method SP request-target SP HTTP/1.x CRLF.
        var index = 0
        while index < bytes.count, isMethodByte(bytes[index]) { index += 1 }
        guard index > 0, bytes[index] == 0x20 else { throw HTTPReadError(reason: "malformed method") }
        let method = HTTPMethod(rawValue: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<index]), as: UTF8.self))
        index += 1
        let targetStart = index
        while bytes[index] > 0x20 && bytes[index] != 0x7F { index += 1 }
        guard index > targetStart, bytes[index] == 0x20 else { throw HTTPReadError(reason: "malformed request target") }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<index]), as: UTF8.self)
        index += 1
        guard index + 10 <= bytes.count, HTTPSyntax.hasVersionPrefix(bytes, at: index),
              bytes[index + 7] == UInt8(ascii: "0") || bytes[index + 7] == UInt8(ascii: "1"),
              bytes[index + 8] == 0x0D, bytes[index + 9] == 0x0A
        else {
            throw HTTPReadError(reason: "not an HTTP/1.0 or HTTP/1.1 request line")
        }
        let isHTTP10 = bytes[index + 7] == UInt8(ascii: "0")
        index += 10

        let fields = try FieldSection.read(bytes, from: &index, reusing: &spare)
        if fields.transferEncoding {
            guard fields.contentLength == nil else { throw HTTPReadError(reason: "both Content-Length and Transfer-Encoding") }
            guard fields.chunked else { throw HTTPReadError(reason: "a Transfer-Encoding that does not end with chunked") }
            guard !isHTTP10 else { throw HTTPReadError(reason: "Transfer-Encoding in an HTTP/1.0 request") }
        }
        // The two fields the framing leaves to the gateway: upgrades and `Expect`.
        var upgradeAsked = false, onlyH2C = true, expectsContinue = false
        for line in fields.lines {
            let name = UnsafeRawBufferPointer(rebasing: bytes[line.name])
            if name.count == 7, ResponseHead.equalsIgnoringCase(name, "upgrade".utf8) {
                upgradeAsked = true
                ResponseHead.forEachListElement(in: line.value, of: bytes) { protocolName in
                    if !ResponseHead.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: bytes[protocolName]), "h2c".utf8) { onlyH2C = false }
                }
            } else if name.count == 6, ResponseHead.equalsIgnoringCase(name, "expect".utf8) {
                expectsContinue = ResponseHead.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: bytes[line.value]), "100-continue".utf8)
            }
        }
        let upgrade: ClientRequestHead.Upgrade? = upgradeAsked && fields.connectionUpgrade ? (onlyH2C ? .h2c : .other) : nil
        return ClientRequestHead(
            method: method, target: target, version: isHTTP10 ? .http1_0 : .http1_1,
            isKeepAlive: !fields.connectionClose && (!isHTTP10 || fields.connectionKeepAlive),
            contentLength: fields.chunked ? nil : fields.contentLength, chunked: fields.chunked, otherCodings: fields.otherCodings,
            upgrade: upgrade, expectsContinue: expectsContinue, bytes: head, lines: fields.lines)
    }

    /// Upper-case letters, `-` and `_`: every registered method, and none that a framework would
    /// read as another once it folds case.
    private static func isMethodByte(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}
