import NIOCore

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

    public init() {}
}
