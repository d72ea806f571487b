import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Sends bytes exactly as written (no client-side path clean-up) and returns the whole answer.
public enum RawHTTP {
    /// Sends `GET TARGET` with `headers` and `Connection: close`; returns the status and body.
    public static func get(port: Int, target: String, headers: [(String, String)] = []) async throws -> (status: Int, body: String) {
        var request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let answer = try await exchange(port: port, bytes: request)
        let statusLine = answer.prefix { $0 != "\r" }
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? ""
        return (status, body)
    }

    /// Writes `bytes` to 127.0.0.1:`port` and reads until the server closes.
    public static func exchange(port: Int, bytes: String) async throws -> String {
        let received = NIOLockedValueBox(ByteBuffer())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: bytes))
        try await channel.closeFuture.get()
        return String(buffer: received.withLockedValue { $0 })
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<ByteBuffer>

        init(received: NIOLockedValueBox<ByteBuffer>) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            _ = received.withLockedValue { $0.writeBuffer(&buffer) }
        }
    }
}

/// One raw TCP connection to a server: bytes written exactly as given, everything received
/// kept, and whether the server closed it.
public final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: NIOLockedValueBox<ByteBuffer>

    private init(channel: any Channel, received: NIOLockedValueBox<ByteBuffer>) {
        self.channel = channel
        self.received = received
    }

    /// Opens a connection; with `tls`, over TLS verified with that context (no SNI: the server
    /// is 127.0.0.1).
    public static func open(port: Int, tls: NIOSSLContext? = nil) async throws -> RawConnection {
        let received = NIOLockedValueBox(ByteBuffer())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    try channel.pipeline.syncOperations.addHandler(RawHTTP.Collector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    /// The certificate the server showed (TLS connections, once a response has arrived).
    public func peerCertificate() async throws -> NIOSSLCertificate? {
        try await channel.eventLoop.submit { [channel] in
            try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
        }.get()
    }

    public func send(_ bytes: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: bytes))
    }

    /// Everything received so far, as text.
    public var text: String { String(buffer: received.withLockedValue { $0 }) }

    /// The status codes of the responses received so far, in order.
    public var statuses: [Int] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
    }

    public var isClosed: Bool { !channel.isActive }

    /// Waits until the server has closed the connection; false if it is still open after
    /// `limit` (a bound on a hung test, not a measurement).
    public func waitForClose(limit: Duration = .seconds(20)) async -> Bool {
        (try? await waitUntil("the server to close the connection", timeout: limit) { !self.channel.isActive }) != nil
    }

    /// Waits until `count` responses have arrived; false if fewer came within `limit`.
    public func waitForResponses(_ count: Int, limit: Duration = .seconds(20)) async -> Bool {
        _ = try? await waitUntil("\(count) responses", timeout: limit) {
            let text = self.text
            return self.statuses.count >= count && (text.hasSuffix("}") || text.hasSuffix("\r\n\r\n")) || !self.channel.isActive
        }
        return statuses.count >= count
    }

    public func close() async {
        try? await channel.close()
    }
}
