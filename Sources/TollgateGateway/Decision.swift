import Foundation
import NIOHTTP1
import TollgateCore

/// A request the gateway will forward, with everything decided about it.
struct Forward {
    let consumer: Consumer
    let route: ProductRoute
    /// The identifier of the endpoint the call matched; nil for an unlisted one.
    let endpoint: String?
    let method: String
    /// The normalized path, product prefix included, as forwarded.
    let path: String
    /// The path as metered: `path` without `;` parameters, at most `UsageEvent.maxStoredPath`
    /// bytes.
    let meteredPath: String
    /// The normalized path below the product prefix ("/" at least).
    let remainder: Substring
    /// The query without the credential.
    let query: String?
    /// Whether the credential came from `Authorization: Bearer`, which is then not forwarded.
    let credentialInAuthorization: Bool
}

/// The gateway's decision about a request head, in DESIGN §3.3's order: route, credential,
/// product, suspension for non-payment (402), unlisted endpoint. Before them, what no route may receive: `TRACE` and `CONNECT`,
/// protocol upgrades and bodies framed other than by `Content-Length` or `chunked`.
enum Decision {
    case forward(Forward)
    /// Answer `refusal`; the refused call is recorded (for analytics, never billed) under
    /// `recordAs` when it can be attributed to a consumer, with its metered path. Refusals of
    /// no consumer are only counted, so that anonymous traffic stores nothing.
    case refuse(ProxyRefusal, recordAs: (consumer: Consumer, path: String)?)

    /// `tokens`: the hash of the token the connection presented last, reused when it comes again.
    static func make(head: ClientRequestHead, directory: GatewayDirectory, tokens: inout RecentTokenHash) -> Decision {
        if let refusal = unacceptable(head) { return .refuse(refusal, recordAs: nil) }
        let target: (path: String, query: String?)
        do {
            target = try RequestPath.split(target: head.target)
        } catch .escapesRoot {
            return .refuse(.badRequest("Bad request: the path leaves its route"), recordAs: nil)
        } catch {
            return .refuse(.badRequest("Bad request: malformed path"), recordAs: nil)
        }
        let path = target.path
        // Cut at bytes, as `RequestPath` cuts (a normalized path starts with `/`): the product
        // id is the first segment, the remainder what follows it.
        let bytes = path.utf8
        let idStart = bytes.index(after: bytes.startIndex)
        let idEnd = bytes[idStart...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex
        let productID = path[idStart..<idEnd]
        guard !productID.isEmpty, let route = directory.route(product: productID) else {
            return .refuse(.noRoute, recordAs: nil)
        }
        // The path must stay below the prefix it was sent to: `/a/../b` or `/a/%2e%2e/b` is refused.
        if let raw = rawFirstSegment(head.target), raw != productID {
            return .refuse(.badRequest("Bad request: the path leaves its route"), recordAs: nil)
        }
        var remainder = path[idEnd...]
        if remainder.isEmpty { remainder = "/" }

        let (token, inAuthorization, query) = credential(head: head, query: target.query, tokens: &tokens)
        guard let token else { return .refuse(.noCredential, recordAs: nil) }
        guard let consumer = directory.consumer(tokenHash: token) else { return .refuse(.invalidCredential, recordAs: nil) }
        guard consumer.product == route.product.id else {
            return .refuse(.wrongProduct, recordAs: (consumer, UsageEvent.meteredPath(path)))
        }
        if consumer.suspended { return .refuse(.paymentRequired, recordAs: (consumer, UsageEvent.meteredPath(path))) }

        let method = head.method.rawValue
        let endpoint = route.endpointIdentifier(method: method, path: RequestPath.withoutParameters(remainder))
        let meteredPath = UsageEvent.meteredPath(path)
        if endpoint == nil, route.product.unlistedEndpoints == .deny {
            return .refuse(.noRoute, recordAs: (consumer, meteredPath))
        }
        return .forward(Forward(
            consumer: consumer, route: route, endpoint: endpoint, method: method, path: path, meteredPath: meteredPath,
            remainder: remainder, query: query, credentialInAuthorization: inAuthorization))
    }

    /// What is refused whatever the route: `TRACE` (NIO would send its body unframed, and it
    /// echoes headers back), `CONNECT`, upgrades (WebSocket; the connection would no longer be HTTP) and
    /// transfer codings other than `chunked` alone.
    static func unacceptable(_ head: ClientRequestHead) -> ProxyRefusal? {
        switch head.method {
        case .TRACE, .CONNECT: return .methodNotAllowed
        default: break
        }
        // h2c (curl --http2) is declined by answering in HTTP/1.1, as RFC 9110 allows; others
        // (WebSocket) cannot be served and are refused.
        if head.upgrade == .other { return .upgradeNotSupported }
        if head.otherCodings { return .badRequest("Bad request: only the chunked transfer coding is accepted") }
        return nil
    }

    /// The first segment of the raw target, with unreserved escapes decoded; nil when it is a
    /// dot segment or empty (those are resolved by normalization, not prefixes).
    private static func rawFirstSegment(_ uri: String) -> Substring? {
        // Cut at bytes: a `/` or `?` followed by a combining mark is no `Character` of its own.
        // (`RequestPath.split` refused every target that does not start with `/` before.)
        let bytes = uri.utf8
        guard bytes.first == UInt8(ascii: "/") else { return nil }
        let start = bytes.index(after: bytes.startIndex)
        let end = bytes[start...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? bytes.endIndex
        let segment = uri[start..<end]
        // The usual case, nothing escaped and no dot segment, needs no second normalization.
        let isDotSegment = !segment.isEmpty && segment.utf8.count <= 2 && segment.utf8.allSatisfy { $0 == UInt8(ascii: ".") }
        if !segment.utf8.contains(UInt8(ascii: "%")) && !isDotSegment { return segment.isEmpty ? nil : segment }
        guard let decoded = try? RequestPath.normalize("/" + segment) else { return nil }
        let first = decoded.dropFirst().prefix { $0 != "/" }
        if first.isEmpty || segment.isEmpty { return nil }
        return first
    }

    /// The credential's hash: from the `apikey` header (hashed where it lies in the head),
    /// `Authorization: Bearer`, or the `apikey` query parameter. Returns the query without
    /// `apikey` parameters, which are never forwarded, and without `_method` (a method override).
    private static func credential(
        head: ClientRequestHead, query: String?, tokens: inout RecentTokenHash
    ) -> (TokenHash?, Bool, String?) {
        var token: TokenHash?
        var inAuthorization = false
        // An empty `apikey` counts as none (`?? nil`: a field that came empty, or no field).
        if let hash = head.withValue(of: "apikey", { $0.isEmpty ? nil : tokens.hash(bytes: $0) }) ?? nil {
            token = hash
        } else if let authorization = head.value(of: "authorization"),
                  authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " {
            token = authorization.dropFirst(7).drop { $0 == " " }.withUTF8Bytes { tokens.hash(bytes: UnsafeRawBufferPointer($0)) }
            inAuthorization = true
        }
        guard let query else { return (token, inAuthorization, nil) }
        var kept: [Substring] = []
        for item in query.split(separator: "&", omittingEmptySubsequences: false) {
            let name = item.prefix { $0 != "=" }
            // `_method` overrides the method in Express and Laravel, like the override headers.
            if name == "_method" { continue }
            if name == "apikey" {
                if token == nil {
                    let value = item.dropFirst(name.count + 1)
                    token = APIToken.hash(value.removingPercentEncoding ?? String(value))
                }
            } else {
                kept.append(item)
            }
        }
        return (token, inAuthorization, kept.isEmpty ? nil : kept.joined(separator: "&"))
    }
}
