import Foundation
import NIOCore
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

    /// The headers the proxy does not simply copy, by name in lower case, with `-`.
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

    /// The role of a header, by its name as it came; nil for one that is copied as it is.
    /// Names are compared as CGI, WSGI and Rack servers see them: without case, `_` read as `-`
    /// (`X_Consumer_ID` is `HTTP_X_CONSUMER_ID` there, just as `X-Consumer-ID` is).
    static func role(of name: UnsafeRawBufferPointer) -> HeaderRole? {
        if name.count < rolesByLength.count {
            for entry in rolesByLength[name.count] where sameComparable(name, entry.name) { return entry.role }
        }
        if name.count > identityPrefix.count, sameComparable(UnsafeRawBufferPointer(rebasing: name[0..<identityPrefix.count]), identityPrefix) {
            return .identity
        }
        return nil
    }

    /// `roles` by the length of their names.
    private static let rolesByLength: [[(name: [UInt8], role: HeaderRole)]] = {
        var table = Array(repeating: [(name: [UInt8], role: HeaderRole)](), count: (roles.keys.map(\.utf8.count).max() ?? 0) + 1)
        for (name, role) in roles { table[name.utf8.count].append((Array(name.utf8), role)) }
        return table
    }()

    private static let identityPrefix = Array("x-consumer-".utf8)

    /// Whether two header names are the same as CGI servers read them (see `role(of:)`).
    static func sameComparable(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        func folded(_ byte: UInt8) -> UInt8 {
            if byte == UInt8(ascii: "_") { return UInt8(ascii: "-") }
            return byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
        }
        for (x, y) in zip(a, b) where x != y && folded(x) != folded(y) { return false }
        return true
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

    /// The head sent upstream for `request`, written as bytes into `buffer`: the request line
    /// with the upstream's path, the client's header lines as they came except those the proxy
    /// removes (hop-by-hop, those `Connection` lists, identity in every spelling, method
    /// overrides, the credential, the upstream's secret), then Tollgate's own (host, identity,
    /// secret, forwarding). The body's framing follows SwiftNIO's request encoder: a
    /// `Content-Length` body goes as it is; otherwise a chunked body, and any `POST`, `PUT` or
    /// `PATCH`, is sent chunked. Returns whether the body is chunked.
    static func write(
        for request: ClientRequestHead, forward: Forward, requestID: String, clientAddress: String, edge: EdgePolicy,
        overTLS: Bool = false, into buffer: inout ByteBuffer
    ) -> Bool {
        let product = forward.route.product
        buffer.writeString(request.method.rawValue)
        buffer.writeStaticString(" ")
        buffer.writeString(product.upstream.basePath)
        buffer.writeSubstring(forward.remainder)
        if let query = forward.query {
            buffer.writeStaticString("?")
            buffer.writeString(query)
        }
        buffer.writeStaticString(" HTTP/1.1\r\n")

        var forwardedFor: [String] = []
        var originalHost: String?
        var hasLength = false
        request.bytes.withUnsafeReadableBytes { head in
            func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: head[range]) }
            func text(_ range: Range<Int>) -> String { String(decoding: bytes(range), as: UTF8.self) }
            // The names `Connection` lists (where they lie): rare, and then few.
            var connectionListed: [Range<Int>] = []
            for line in request.lines where ResponseHead.equalsIgnoringCase(bytes(line.name), "connection".utf8) {
                ResponseHead.forEachListElement(in: line.value, of: head) { connectionListed.append($0) }
            }
            for line in request.lines {
                let name = bytes(line.name)
                if !connectionListed.isEmpty, connectionListed.contains(where: { sameComparable(bytes($0), name) }) { continue }
                if let secret = product.upstreamHeader, sameComparable(name, secret.name.utf8) { continue }
                switch role(of: name) {
                case nil:
                    if ResponseHead.equalsIgnoringCase(name, "content-length".utf8) { hasLength = true }
                    ResponseHead.writeField(name, bytes(line.value), into: &buffer)
                case .hopByHop, .identity, .methodOverride, .credential:
                    break
                case .forwarding:
                    // Only the exact spelling is read; `X_Forwarded_For` and the like are dropped.
                    if ResponseHead.equalsIgnoringCase(name, "x-forwarded-for".utf8) { forwardedFor.append(text(line.value)) }
                case .authorization:
                    if !forward.credentialInAuthorization { ResponseHead.writeField(name, bytes(line.value), into: &buffer) }
                case .host:
                    originalHost = text(line.value)
                }
            }
        }
        // A request body keeps the framing it came with (docs/security.md, request smuggling);
        // a POST, PUT or PATCH without a length is sent chunked, as SwiftNIO's encoder does.
        var chunked = request.chunked
        if !hasLength {
            switch request.method {
            case .POST, .PUT, .PATCH: chunked = true
            default: break
            }
        } else {
            chunked = false
        }
        if chunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        let addresses = ClientAddresses(peer: clientAddress, forwardedFor: forwardedFor, trusted: edge.trustedProxies)
        ResponseHead.writeField("Host", forward.route.upstreamHost, into: &buffer)
        ResponseHead.writeField("X-Consumer-ID", forward.consumer.customer, into: &buffer)
        ResponseHead.writeField("X-Consumer-Username", forward.consumer.subscription, into: &buffer)
        if let secret = product.upstreamHeader { ResponseHead.writeField(secret.name, secret.value, into: &buffer) }
        ResponseHead.writeField("X-Forwarded-For", addresses.chain, into: &buffer)
        buffer.writeStaticString(overTLS ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n")
        if let originalHost { ResponseHead.writeField("X-Forwarded-Host", originalHost, into: &buffer) }
        buffer.writeStaticString("X-Forwarded-Prefix: /")
        buffer.writeString(product.id)
        buffer.writeStaticString("\r\n")
        ResponseHead.writeField("X-Real-IP", addresses.client, into: &buffer)
        writeForwarded(client: addresses.client, host: originalHost, overTLS: overTLS, into: &buffer)
        ResponseHead.writeField("X-Request-ID", requestID, into: &buffer)
        buffer.writeStaticString("\r\n")
        return chunked
    }

    /// The `Forwarded` header line: RFC 7239's `for=...;proto=http[s][;host=...]`, with IPv6
    /// addresses and hosts quoted, written piece by piece into `buffer`.
    static func writeForwarded(client: String, host: String?, overTLS: Bool = false, into buffer: inout ByteBuffer) {
        if client.utf8.contains(UInt8(ascii: ":")) {
            buffer.writeStaticString("Forwarded: for=\"[")
            buffer.writeString(client)
            buffer.writeStaticString("]\"")
        } else {
            buffer.writeStaticString("Forwarded: for=")
            buffer.writeString(client)
        }
        buffer.writeStaticString(overTLS ? ";proto=https" : ";proto=http")
        if let host, !host.isEmpty, host.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            buffer.writeStaticString(";host=\"")
            buffer.writeString(host)
            buffer.writeStaticString("\"")
        }
        buffer.writeStaticString("\r\n")
    }

    /// Whether a response header is hop-by-hop; most names are told apart by their length alone,
    /// the others compared byte by byte, without a lower-cased copy.
    static func isHopByHop(_ name: some Collection<UInt8>) -> Bool {
        switch name.count {
        case 2, 6, 7, 10, 16, 17, 18, 19: hopByHopNames.contains { ResponseHead.equalsIgnoringCase(name, $0.utf8) }
        default: false
        }
    }

    /// The hop-by-hop names of `roles`.
    private static let hopByHopNames = roles.filter { $0.value == .hopByHop }.map(\.key)
}
