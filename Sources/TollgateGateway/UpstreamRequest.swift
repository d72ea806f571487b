import Foundation
import NIOHTTP1
import TollgateCore

/// Rewrites heads between the client and the upstream (DESIGN §3.3, docs/security.md).
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

    /// Headers Tollgate sets itself from what it saw of the connection; a client's copy is
    /// replaced (`X-Forwarded-For` is extended instead when the peer is a trusted proxy).
    static let forwardingHeaders: Set<String> = [
        "forwarded", "x-real-ip", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix",
        "x-forwarded-port", "x-request-id",
    ]

    /// Headers that make frameworks run another method's handler than the request line's; the
    /// gateway matches and meters the request line's method, so they never reach the upstream.
    static let methodOverrides: Set<String> = ["x-http-method-override", "x-http-method", "x-method-override"]

    /// A header name as CGI, WSGI and Rack servers see it: lower case, `_` read as `-`
    /// (`X_Consumer_ID` is `HTTP_X_CONSUMER_ID` there, just as `X-Consumer-ID` is).
    static func comparableName(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.utf8.contains(UInt8(ascii: "_")) ? lower.replacingOccurrences(of: "_", with: "-") : lower
    }

    /// Who the client is, as the upstream is told: the peer, or the client a trusted proxy names.
    struct ClientAddresses {
        /// `X-Forwarded-For`: the chain of addresses.
        var chain: String
        /// `X-Real-IP` and `Forwarded: for=`: the nearest address not of a trusted proxy.
        var client: String

        init(peer: String, forwardedFor: [String], trusted: [AddressRange]) {
            guard !trusted.isEmpty, Self.isTrusted(peer, trusted) else {
                chain = peer
                client = peer
                return
            }
            let claimed = forwardedFor.flatMap { $0.split(separator: ",") }
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            chain = (claimed + [peer]).joined(separator: ", ")
            client = claimed.last { !Self.isTrusted($0, trusted) } ?? claimed.first ?? peer
        }

        private static func isTrusted(_ address: String, _ trusted: [AddressRange]) -> Bool {
            trusted.contains { $0.contains(address[...]) }
        }
    }

    static func head(
        for request: HTTPRequestHead, forward: Forward, requestID: String, clientAddress: String, edge: EdgePolicy
    ) -> HTTPRequestHead {
        let product = forward.route.product
        let secretName = product.upstreamHeader.map { comparableName($0.name) }
        var connectionListed: Set<String> = []
        for value in request.headers[canonicalForm: "connection"] { connectionListed.insert(comparableName(String(value))) }

        var headers = HTTPHeaders()
        var forwardedFor: [String] = []
        var originalHost: String?
        var chunked = false
        for (name, value) in request.headers {
            let comparable = comparableName(name)
            if comparable == "transfer-encoding" { chunked = true }
            if hopByHop.contains(comparable) || connectionListed.contains(comparable) || identityHeaders.contains(comparable)
                || comparable.hasPrefix("x-consumer-") || comparable == "apikey" || comparable == secretName
                || methodOverrides.contains(comparable) {
                continue
            }
            if forwardingHeaders.contains(comparable) {
                // Only the exact spelling is read; `X_Forwarded_For` and the like are dropped.
                if name.lowercased() == "x-forwarded-for" { forwardedFor.append(value) }
                continue
            }
            switch comparable {
            case "authorization" where forward.credentialInAuthorization: continue
            case "host": originalHost = value; continue
            default: headers.add(name: name, value: value)
            }
        }
        // A request body keeps the framing it came with: NIO frames a GET, DELETE or OPTIONS
        // body only when the head says so (docs/security.md, request smuggling).
        if chunked && !headers.contains(name: "content-length") { headers.add(name: "Transfer-Encoding", value: "chunked") }
        let addresses = ClientAddresses(peer: clientAddress, forwardedFor: forwardedFor, trusted: edge.trustedProxies)
        headers.add(name: "Host", value: forward.route.upstreamHost)
        headers.add(name: "X-Consumer-ID", value: forward.consumer.customer)
        headers.add(name: "X-Consumer-Username", value: forward.consumer.subscription)
        if let secret = product.upstreamHeader { headers.add(name: secret.name, value: secret.value) }
        headers.add(name: "X-Forwarded-For", value: addresses.chain)
        headers.add(name: "X-Forwarded-Proto", value: "http")
        if let originalHost { headers.add(name: "X-Forwarded-Host", value: originalHost) }
        headers.add(name: "X-Forwarded-Prefix", value: "/" + product.id)
        headers.add(name: "X-Real-IP", value: addresses.client)
        headers.add(name: "Forwarded", value: forwardedElement(client: addresses.client, host: originalHost))
        headers.add(name: "X-Request-ID", value: requestID)

        var uri = product.upstream.basePath + forward.remainder
        if let query = forward.query { uri += "?" + query }
        return HTTPRequestHead(version: .http1_1, method: request.method, uri: uri, headers: headers)
    }

    /// RFC 7239's `for=...;proto=http[;host=...]`, with IPv6 addresses and hosts quoted.
    static func forwardedElement(client: String, host: String?) -> String {
        var element = "for=" + (client.utf8.contains(UInt8(ascii: ":")) ? "\"[\(client)]\"" : client) + ";proto=http"
        if let host, !host.isEmpty, host.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            element += ";host=\"\(host)\""
        }
        return element
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
