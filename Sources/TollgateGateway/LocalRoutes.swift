import NIOCore
import NIOHTTP1

/// A request to one of the proxy port's own paths (under `/_`: the Stripe webhook, the consumer
/// portal), with its body read in full.
public struct LocalRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: ByteBuffer
    /// The client's address: the peer, or the nearest untrusted address when the peer is a
    /// trusted proxy (`--trusted-proxy`).
    public var clientAddress: String
    /// Whether the proxy port serves HTTPS (cookies are then `Secure`).
    public var isTLS: Bool

    public init(head: HTTPRequestHead, body: ByteBuffer, clientAddress: String, isTLS: Bool = false) {
        self.head = head
        self.body = body
        self.clientAddress = clientAddress
        self.isTLS = isTLS
    }
}

/// The answer to a `LocalRequest`. `Content-Length` and `Connection` are set by the proxy.
public struct LocalResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Answers the requests of one path prefix of the proxy port.
public protocol LocalResponder: Sendable {
    func respond(to request: LocalRequest) async -> LocalResponse
}

/// The proxy port's own paths, by prefix. Product ids cannot start with `_`, so none of these
/// can hide a product; a path under `/_` that no prefix claims is answered 404 like any unknown
/// route.
public struct LocalRoutes: Sendable {
    /// The largest request body a local path accepts; larger is answered 413.
    public var maxBodyBytes: Int = 1 << 20
    private var routes: [(prefix: String, responder: any LocalResponder)] = []

    public init() {}

    /// Sends requests whose path is `prefix` or lies below it (`prefix` + `/...`) to `responder`.
    /// `prefix` starts with `/_`.
    public mutating func add(prefix: String, _ responder: any LocalResponder) {
        precondition(prefix.hasPrefix("/_") && !prefix.hasSuffix("/"), "a local prefix is /_name")
        routes.append((prefix, responder))
    }

    var isEmpty: Bool { routes.isEmpty }

    /// The responder of a request target (path and query), if one claims it.
    func responder(forTarget target: String) -> (any LocalResponder)? {
        let utf8 = target.utf8
        guard utf8.count >= 2, utf8.first == UInt8(ascii: "/"), utf8.dropFirst().first == UInt8(ascii: "_") else { return nil }
        let path = utf8.prefix { $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
        for route in routes {
            let prefix = route.prefix.utf8
            guard path.starts(with: prefix) else { continue }
            let rest = path.dropFirst(prefix.count)
            if rest.isEmpty || rest.first == UInt8(ascii: "/") { return route.responder }
        }
        return nil
    }
}

/// A local request being read.
final class LocalCall {
    let head: HTTPRequestHead
    let responder: any LocalResponder
    var body: ByteBuffer

    init(head: HTTPRequestHead, responder: any LocalResponder, allocator: ByteBufferAllocator) {
        self.head = head
        self.responder = responder
        self.body = allocator.buffer(capacity: 0)
    }
}
