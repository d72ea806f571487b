import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// A port's own certificate and key, read from PEM files: TLS 1.2 or later, ALPN `http/1.1`.
/// `reload()` reads the files again (on `SIGHUP`); connections made afterwards use the new
/// certificate, those already open keep theirs.
public final class ServerTLS: Sendable {
    public let certificatePath: String
    public let keyPath: String
    private let current: NIOLockedValueBox<Loaded>

    /// What the files held when last read.
    private struct Loaded {
        var context: NIOSSLContext
        var chain: [NIOSSLCertificateSource]
        var key: NIOSSLPrivateKeySource
    }

    /// Reads the files; throws `ServerTLSError` when they cannot be used.
    public init(certificate: String, key: String) throws {
        certificatePath = certificate
        keyPath = key
        current = NIOLockedValueBox(try Self.load(certificate: certificate, key: key))
    }

    /// Reads the files again. On failure the certificate in use stays and the error is thrown.
    public func reload() throws {
        let loaded = try Self.load(certificate: certificatePath, key: keyPath)
        current.withLockedValue { $0 = loaded }
    }

    /// The context new connections use.
    var context: NIOSSLContext { current.withLockedValue { $0.context } }

    /// A server configuration for a port that does not build its own handlers (the admin
    /// port's HTTP server): each handshake takes the certificate and key read last.
    public func configuration() -> TLSConfiguration {
        let loaded = current.withLockedValue { $0 }
        var configuration = Self.configuration(chain: loaded.chain, key: loaded.key)
        configuration.sslContextCallback = { [current] _, promise in
            var override = NIOSSLContextConfigurationOverride()
            let loaded = current.withLockedValue { $0 }
            override.certificateChain = loaded.chain
            override.privateKey = loaded.key
            promise.succeed(override)
        }
        return configuration
    }

    private static func configuration(chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        return configuration
    }

    private static func read(certificate: String, key: String) throws -> ([NIOSSLCertificateSource], NIOSSLPrivateKeySource) {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate)
            guard !chain.isEmpty else { throw ServerTLSError(reason: "no certificate in \(certificate)") }
            return (chain.map { .certificate($0) }, .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        } catch let error as ServerTLSError {
            throw error
        } catch {
            throw ServerTLSError(reason: "cannot read the certificate \(certificate) or its key \(key): \(error)")
        }
    }

    private static func load(certificate: String, key: String) throws -> Loaded {
        let (chain, privateKey) = try read(certificate: certificate, key: key)
        do {
            return Loaded(
                context: try NIOSSLContext(configuration: configuration(chain: chain, key: privateKey)), chain: chain, key: privateKey)
        } catch {
            throw ServerTLSError(reason: "the certificate \(certificate) and key \(key) do not make a TLS context: \(error)")
        }
    }
}

/// Why a port's certificate or key could not be used.
public struct ServerTLSError: Error, CustomStringConvertible, Sendable {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// The first handler of a TLS port: a connection whose first byte does not start a TLS
/// handshake is a plain-HTTP client, answered a clear 400 in plain HTTP and closed (not left
/// hanging in a handshake it never sends); otherwise it steps aside.
final class PlainHTTPOnTLSPort: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A TLS record of type handshake starts with this byte.
    private static let handshakeRecord: UInt8 = 0x16

    static let answer: String = {
        let body = #"{"message":"This port speaks HTTPS: use https://"}"#
        return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
    }()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        if first == Self.handshakeRecord {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Self.answer))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
