import NIOHTTP1
import TollgateCore

/// Rewrites heads between the client and the upstream (DESIGN §3.3).
enum UpstreamRequest {
    /// Headers that describe one connection, never copied across the proxy.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "expect",
    ]

    /// Identity headers that only Tollgate may set; any client-sent copy is removed.
    static let identityHeaders: Set<String> = [
        "x-consumer-id", "x-consumer-username", "x-consumer-custom-id", "x-consumer-groups", "x-credential-identifier",
        "x-anonymous-consumer", "x-anonymous-groups",
    ]

    static func head(for request: HTTPRequestHead, forward: Forward, requestID: String, clientAddress: String) -> HTTPRequestHead {
        let product = forward.route.product
        let secretName = product.upstreamHeader?.name.lowercased()
        var connectionListed: Set<String> = []
        for value in request.headers[canonicalForm: "connection"] { connectionListed.insert(value.lowercased()) }

        var headers = HTTPHeaders()
        var forwardedFor: String?
        var originalHost: String?
        for (name, value) in request.headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || connectionListed.contains(lower) || identityHeaders.contains(lower)
                || lower.hasPrefix("x-consumer-") || lower == "apikey" || lower == secretName {
                continue
            }
            switch lower {
            case "authorization" where forward.credentialInAuthorization: continue
            case "host": originalHost = value; continue
            case "x-forwarded-for": forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value; continue
            case "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix", "x-forwarded-port", "x-request-id": continue
            default: headers.add(name: name, value: value)
            }
        }
        headers.add(name: "Host", value: forward.route.upstreamHost)
        headers.add(name: "X-Consumer-ID", value: forward.consumer.customer)
        headers.add(name: "X-Consumer-Username", value: forward.consumer.subscription)
        if let secret = product.upstreamHeader { headers.add(name: secret.name, value: secret.value) }
        headers.add(name: "X-Forwarded-For", value: forwardedFor.map { "\($0), \(clientAddress)" } ?? clientAddress)
        headers.add(name: "X-Forwarded-Proto", value: "http")
        if let originalHost { headers.add(name: "X-Forwarded-Host", value: originalHost) }
        headers.add(name: "X-Forwarded-Prefix", value: "/" + product.id)
        headers.add(name: "X-Request-ID", value: requestID)

        var uri = product.upstream.basePath + forward.remainder
        if let query = forward.query { uri += "?" + query }
        return HTTPRequestHead(version: .http1_1, method: request.method, uri: uri, headers: headers)
    }

    /// The upstream's response headers as the client gets them.
    static func responseHeaders(_ upstream: HTTPHeaders, closeAfter: Bool, clientVersion: HTTPVersion) -> HTTPHeaders {
        var connectionListed: Set<String> = []
        for value in upstream[canonicalForm: "connection"] { connectionListed.insert(value.lowercased()) }
        var headers = HTTPHeaders()
        for (name, value) in upstream {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || connectionListed.contains(lower) { continue }
            headers.add(name: name, value: value)
        }
        if closeAfter {
            headers.add(name: "Connection", value: "close")
        } else if clientVersion == .http1_0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        return headers
    }
}
