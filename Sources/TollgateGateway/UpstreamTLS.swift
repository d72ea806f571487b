import NIOSSL
import TollgateCore

/// The TLS client settings of an `https://` upstream, made once per routing table: the
/// certificate is verified (chain and host name or IP address) against the system's trust
/// store or the product's `upstream_ca`, SNI names the host, ALPN offers `http/1.1`.
struct UpstreamTLS: Sendable {
    /// The context connections are made with; an error when it could not be made (an
    /// unreadable `upstream_ca`): calls then fail with 502 and the log says why.
    let context: Result<NIOSSLContext, UpstreamTLSError>
    /// The SNI and verification name: nil for an IP address, which is matched against the
    /// certificate's IP addresses instead.
    let serverHostname: String?

    init(_ product: Product) {
        serverHostname = product.upstream.hostIsAddress ? nil : product.upstream.host
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        configuration.applicationProtocols = ["http/1.1"]
        if let path = product.upstreamCA { configuration.trustRoots = .file(path) }
        do {
            context = .success(try NIOSSLContext(configuration: configuration))
        } catch {
            context = .failure(UpstreamTLSError(
                reason: product.upstreamCA.map { "cannot use upstream_ca \($0): \(error)" } ?? "cannot set up TLS: \(error)"))
        }
    }
}

/// Why an upstream's TLS settings could not be made.
struct UpstreamTLSError: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}
