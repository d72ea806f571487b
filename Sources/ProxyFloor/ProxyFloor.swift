import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// `proxy-floor bytes|http1|decoders PORT UPSTREAM_PORT`: the floors `scripts/bench` measures
/// beside nginx and Tollgate. A relay on 127.0.0.1:PORT to 127.0.0.1:UPSTREAM_PORT on SwiftNIO's
/// event loops (as many as cores, like Tollgate's), one upstream connection per client
/// connection: `bytes` copies bytes unparsed, `http1` passes HTTP/1.1 parts through NIOHTTP1's
/// codec, `decoders` through its two decoders only and writes the heads back as bytes (as
/// Tollgate does). Neither authenticates, routes or meters: they show what the framework and its HTTP
/// codec cost per call on this machine, not a gateway.
@main
enum ProxyFloor {
    static func main() async throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard arguments.count == 3, let mode = arguments.first, ["bytes", "http1", "decoders"].contains(mode),
              let port = Int(arguments[arguments.startIndex + 1]), let upstreamPort = Int(arguments[arguments.startIndex + 2])
        else {
            FileHandle.standardError.write(Data("usage: proxy-floor bytes|http1|decoders PORT UPSTREAM_PORT\n".utf8))
            exit(2)
        }
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if mode == "bytes" {
                        try pipeline.addHandler(Relays.bytes(upstreamPort: upstreamPort))
                    } else if mode == "decoders" {
                        try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                        try pipeline.addHandler(Relays.decoders(upstreamPort: upstreamPort))
                    } else {
                        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                        try pipeline.addHandler(Relays.http1(upstreamPort: upstreamPort))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        print("proxy-floor \(mode) listening on 127.0.0.1:\(port), upstream 127.0.0.1:\(upstreamPort)")
        try await server.closeFuture.get()
    }
}
