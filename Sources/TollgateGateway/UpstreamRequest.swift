import Foundation
import NIOHTTP1
import TollgateCore

/// Rewrites heads between the client and the upstream (DESIGN §3.3, docs/security.md).
enum UpstreamRequest {
    /// What the proxy does with a client's header, by its comparable name.
    enum HeaderRole {
        /// Describes one connection (hop-by-hop): never copied across the proxy.
        case hopByHop
        /// An identity header only Tollgate may set: any client-sent copy is removed (so is
        /// every `X-Consumer-*`).
        case identity
        /// Set by Tollgate from what it saw of the connection: a client's copy is replaced
        /// (`X-Forwarded-For` is extended instead when the peer is a trusted proxy).
        case forwarding
        /// Makes frameworks run another method's handler than the request line's; the gateway
        /// matches and meters the request line's method, so it never reaches the upstream.
        case methodOverride
        /// The credential header.
        case credential
        case authorization
        case host
    }

    /// The headers the proxy does not simply copy, by comparable name.
    static let roles: [String: HeaderRole] = {
        var roles: [String: HeaderRole] = [:]
        for name in [
            "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
            "transfer-encoding", "upgrade", "expect",
        ] { roles[name] = .hopByHop }
        for name in [
            "x-consumer-id", "x-consumer-username", "x-consumer-custom-id", "x-consumer-groups", "x-credential-identifier",
            "x-anonymous-consumer", "x-anonymous-groups",
        ] { roles[name] = .identity }
        for name in [
            "forwarded", "x-real-ip", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix",
            "x-forwarded-port", "x-request-id",
        ] { roles[name] = .forwarding }
        for name in ["x-http-method-override", "x-http-method", "x-method-override"] { roles[name] = .methodOverride }
        roles["apikey"] = .credential
        roles["authorization"] = .authorization
        roles["host"] = .host
        return roles
    }()

    /// The role of a header; nil for one that is copied as it is.
    static func role(ofComparable name: String) -> HeaderRole? {
        if let role = roles[name] { return role }
        return name.utf8.starts(with: "x-consumer-".utf8) ? .identity : nil
    }

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
        for request: HTTPRequestHead, forward: Forward, requestID: String, clientAddress: String, edge: EdgePolicy,
        overTLS: Bool = false
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
            if connectionListed.contains(comparable) || comparable == secretName {
                if comparable == "transfer-encoding" { chunked = true }
                continue
            }
            switch role(ofComparable: comparable) {
            case nil:
                headers.add(name: name, value: value)
            case .hopByHop:
                if comparable == "transfer-encoding" { chunked = true }
            case .identity, .methodOverride, .credential:
                break
            case .forwarding:
                // Only the exact spelling is read; `X_Forwarded_For` and the like are dropped.
                if comparable == "x-forwarded-for" && !name.utf8.contains(UInt8(ascii: "_")) { forwardedFor.append(value) }
            case .authorization:
                if !forward.credentialInAuthorization { headers.add(name: name, value: value) }
            case .host:
                originalHost = value
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
        headers.add(name: "X-Forwarded-Proto", value: overTLS ? "https" : "http")
        if let originalHost { headers.add(name: "X-Forwarded-Host", value: originalHost) }
        headers.add(name: "X-Forwarded-Prefix", value: "/" + product.id)
        headers.add(name: "X-Real-IP", value: addresses.client)
        headers.add(name: "Forwarded", value: forwardedElement(client: addresses.client, host: originalHost, overTLS: overTLS))
        headers.add(name: "X-Request-ID", value: requestID)

        var uri = product.upstream.basePath + forward.remainder
        if let query = forward.query { uri += "?" + query }
        return HTTPRequestHead(version: .http1_1, method: request.method, uri: uri, headers: headers)
    }

    /// RFC 7239's `for=...;proto=http[s][;host=...]`, with IPv6 addresses and hosts quoted.
    static func forwardedElement(client: String, host: String?, overTLS: Bool = false) -> String {
        var element = "for=" + (client.utf8.contains(UInt8(ascii: ":")) ? "\"[\(client)]\"" : client)
            + (overTLS ? ";proto=https" : ";proto=http")
        if let host, !host.isEmpty, host.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            element += ";host=\"\(host)\""
        }
        return element
    }

    /// Whether a response header is hop-by-hop; most names are told apart by their length alone.
    static func isHopByHop(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2, 6, 7, 10, 16, 17, 18, 19: roles[name.lowercased()] == .hopByHop
        default: false
        }
    }
}
