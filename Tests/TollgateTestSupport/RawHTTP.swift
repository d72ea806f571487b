import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

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

    private final class Collector: ChannelInboundHandler {
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
