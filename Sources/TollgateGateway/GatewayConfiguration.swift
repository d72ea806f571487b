import NIOCore
import TollgateCore

/// Settings of the proxy port.
public struct GatewayConfiguration: Sendable {
    /// Address to listen on.
    public var host: String = "127.0.0.1"
    /// Port to listen on; 0 picks a free one.
    public var port: Int = 8000
    /// How long connecting to an upstream may take before the call fails with 502.
    public var connectTimeout: TimeAmount = .seconds(5)
    /// How long the upstream may stay silent (before its answer or between its parts) before 504.
    public var readTimeout: TimeAmount = .seconds(60)
    /// Idle upstream connections kept per upstream and event loop.
    public var maxIdleConnectionsPerUpstream: Int = 128
    /// Time and count limits of client connections, and whom to trust for forwarding headers.
    public var edge = EdgePolicy()
    /// The proxy port's certificate when it serves HTTPS (`--tls-cert`, `--tls-key`); nil: HTTP.
    public var tls: ServerTLS?

    public init() {}
}

/// The limits every client connection lives within, and the proxies whose forwarding headers
/// are believed (docs/security.md). Each is a `tollgate serve` flag.
public struct EdgePolicy: Sendable {
    /// How long a client may take to send a whole request head, from its first byte.
    public var requestHeadTimeout: TimeAmount = .seconds(30)
    /// How long a keep-alive connection may stay silent between requests.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// How long a request body may pause between two of its parts.
    public var bodyTimeout: TimeAmount = .seconds(30)
    /// The largest request head (request line and headers) accepted, in bytes; larger: 431.
    public var maxRequestHeadBytes: Int = 32 * 1024
    /// Client connections open at once; more are closed as soon as they are accepted.
    public var maxClientConnections: Int = 4096
    /// Connections open at once to one product's upstream; a call that would need another is
    /// answered 503 (not billed, no quota used).
    public var maxUpstreamConnectionsPerProduct: Int = 1024
    /// How long a graceful shutdown waits for calls in flight before it cuts them.
    public var drainTimeout: TimeAmount = .seconds(30)
    /// Peers (load balancers) whose `X-Forwarded-For` is extended instead of replaced.
    public var trustedProxies: [AddressRange] = []

    public init() {}
}
