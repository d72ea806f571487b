import ArgumentParser
import NIOCore
import TollgateCore
import TollgateGateway

/// `tollgate serve`'s flags for the proxy port's connection limits and trusted proxies; each
/// default is `EdgePolicy`'s.
struct EdgeOptions: ParsableArguments {
    @Option(name: .customLong("request-head-timeout"), help: "Seconds a client may take to send a request head.")
    var requestHeadTimeout = 30

    @Option(name: .customLong("idle-timeout"), help: "Seconds a keep-alive client connection may stay silent between requests.")
    var idleTimeout = 60

    @Option(name: .customLong("body-timeout"), help: "Seconds a request body may pause between two parts.")
    var bodyTimeout = 30

    @Option(name: .customLong("max-request-head"), help: "Largest request head accepted, in bytes (larger: 431).")
    var maxRequestHead = 32 * 1024

    @Option(name: .customLong("max-connections"), help: "Client connections open at once on the proxy port.")
    var maxConnections = 4096

    @Option(name: .customLong("max-upstream-connections"), help: "Connections open at once to one product's upstream (more: 503).")
    var maxUpstreamConnections = 1024

    @Option(name: .customLong("drain-timeout"), help: "Seconds a graceful shutdown waits for calls in flight before cutting them.")
    var drainTimeout = 30

    @Option(
        name: .customLong("trusted-proxy"),
        help: "A load balancer's address or CIDR range whose X-Forwarded-For is extended, not replaced (repeatable).")
    var trustedProxies: [String] = []

    func policy() throws -> EdgePolicy {
        var policy = EdgePolicy()
        for (flag, seconds) in [
            ("--request-head-timeout", requestHeadTimeout), ("--idle-timeout", idleTimeout), ("--body-timeout", bodyTimeout),
            ("--drain-timeout", drainTimeout),
        ] where seconds <= 0 {
            throw ValidationError("\(flag) must be 1 or more seconds")
        }
        for (flag, count) in [
            ("--max-request-head", maxRequestHead), ("--max-connections", maxConnections),
            ("--max-upstream-connections", maxUpstreamConnections),
        ] where count <= 0 {
            throw ValidationError("\(flag) must be 1 or more")
        }
        policy.requestHeadTimeout = .seconds(Int64(requestHeadTimeout))
        policy.idleTimeout = .seconds(Int64(idleTimeout))
        policy.bodyTimeout = .seconds(Int64(bodyTimeout))
        policy.drainTimeout = .seconds(Int64(drainTimeout))
        policy.maxRequestHeadBytes = maxRequestHead
        policy.maxClientConnections = maxConnections
        policy.maxUpstreamConnectionsPerProduct = maxUpstreamConnections
        policy.trustedProxies = try trustedProxies.map { text in
            guard let range = AddressRange(text) else {
                throw ValidationError("--trusted-proxy \(text): not an IP address or CIDR range")
            }
            return range
        }
        return policy
    }
}
