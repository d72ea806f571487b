import Foundation
import NIOHTTP1
import TollgateCore

/// A request the gateway will forward, with everything decided about it.
struct Forward {
    let consumer: Consumer
    let route: ProductRoute
    let endpoint: Endpoint?
    let method: String
    /// The normalized path, product prefix included.
    let path: String
    /// The normalized path below the product prefix ("/" at least).
    let remainder: Substring
    /// The query without the credential.
    let query: String?
    /// Whether the credential came from `Authorization: Bearer`, which is then not forwarded.
    let credentialInAuthorization: Bool
}

/// The gateway's decision about a request head, in DESIGN §3.3's order: route, credential,
/// product, unlisted endpoint.
enum Decision {
    case forward(Forward)
    /// Answer `refusal`; the refused call is recorded (for analytics, never billed) under
    /// `recordAs` when it can be attributed to a consumer.
    case refuse(ProxyRefusal, recordAs: Consumer?)

    static func make(head: HTTPRequestHead, directory: GatewayDirectory) -> Decision {
        let target: (path: String, query: String?)
        do {
            target = try RequestPath.split(target: head.uri)
        } catch .escapesRoot {
            return .refuse(.badRequest("Bad request: the path leaves its route"), recordAs: nil)
        } catch {
            return .refuse(.badRequest("Bad request: malformed path"), recordAs: nil)
        }
        let path = target.path
        let afterSlash = path.dropFirst()
        let productID = afterSlash.prefix { $0 != "/" }
        guard !productID.isEmpty, let route = directory.route(product: productID) else {
            return .refuse(.noRoute, recordAs: nil)
        }
        // The path must stay below the prefix it was sent to: `/a/../b` or `/a/%2e%2e/b` is refused.
        if let raw = rawFirstSegment(head.uri), raw != productID {
            return .refuse(.badRequest("Bad request: the path leaves its route"), recordAs: nil)
        }
        var remainder = afterSlash.dropFirst(productID.count)
        if remainder.isEmpty { remainder = "/" }

        let (token, inAuthorization, query) = credential(head: head, query: target.query)
        guard let token else { return .refuse(.noCredential, recordAs: nil) }
        guard let consumer = directory.consumer(token: token) else { return .refuse(.invalidCredential, recordAs: nil) }
        guard consumer.product == route.product.id else { return .refuse(.wrongProduct, recordAs: consumer) }

        let method = head.method.rawValue
        let endpoint = route.endpoint(method: method, path: remainder)
        if endpoint == nil, route.product.unlistedEndpoints == .deny {
            return .refuse(.noRoute, recordAs: consumer)
        }
        return .forward(Forward(
            consumer: consumer, route: route, endpoint: endpoint, method: method, path: path, remainder: remainder,
            query: query, credentialInAuthorization: inAuthorization))
    }

    /// The first segment of the raw target, with unreserved escapes decoded; nil when it is a
    /// dot segment or empty (those are resolved by normalization, not prefixes).
    private static func rawFirstSegment(_ uri: String) -> Substring? {
        let path = uri.prefix { $0 != "?" }
        let segment = path.dropFirst().prefix { $0 != "/" }
        // The usual case, nothing escaped and no dot segment, needs no second normalization.
        if !segment.contains("%") && segment != "." && segment != ".." { return segment.isEmpty ? nil : segment }
        guard let decoded = try? RequestPath.normalize("/" + segment) else { return nil }
        let first = decoded.dropFirst().prefix { $0 != "/" }
        if first.isEmpty || segment.isEmpty { return nil }
        return first
    }

    /// The credential: `apikey` header, `Authorization: Bearer`, or `apikey` query parameter.
    /// Returns the query without `apikey` parameters, which are never forwarded.
    private static func credential(head: HTTPRequestHead, query: String?) -> (Substring?, Bool, String?) {
        var token: Substring?
        var inAuthorization = false
        if let header = head.headers.first(name: "apikey"), !header.isEmpty {
            token = Substring(header)
        } else if let authorization = head.headers.first(name: "Authorization"),
                  authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " {
            token = authorization.dropFirst(7).drop { $0 == " " }
            inAuthorization = true
        }
        guard let query else { return (token, inAuthorization, nil) }
        var kept: [Substring] = []
        for item in query.split(separator: "&", omittingEmptySubsequences: false) {
            let name = item.prefix { $0 != "=" }
            if name == "apikey" {
                if token == nil {
                    let value = item.dropFirst(name.count + 1)
                    token = Substring(value.removingPercentEncoding ?? String(value))
                }
            } else {
                kept.append(item)
            }
        }
        return (token, inAuthorization, kept.isEmpty ? nil : kept.joined(separator: "&"))
    }
}
