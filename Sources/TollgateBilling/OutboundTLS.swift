import NIOSSL

/// How Tollgate's own HTTPS requests (webhooks to the vendor, the billing provider) verify
/// their peers: the full chain and the host name, against the system's trust store and, when
/// given, an extra PEM file of CAs.
public enum OutboundTLS {
    public static func configuration(extraCA: String?) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let extraCA { configuration.additionalTrustRoots = [.file(extraCA)] }
        return configuration
    }
}
