import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import TollgateGateway

/// The upstream side of a call in memory: the upstream handler, with its response decoder, on
/// an `EmbeddedChannel`, as `UpstreamPool.connect` makes it (without TLS).
@Suite("Upstream connection's bytes (in memory)")
struct UpstreamHandlerTests {
    /// What the handler hands its owner, as text.
    final class Owner: UpstreamOwner {
        var parts: [String] = []
        var closed = false

        func upstreamRead(_ part: UpstreamResponsePart) {
            switch part {
            case .head(let head): parts.append("head \(head.status.code)")
            case .body(let buffer): parts.append("body \(String(buffer: buffer))")
            case .end: parts.append("end")
            }
        }

        func upstreamReadComplete() {}
        func upstreamClosed(after error: (any Error)?) { closed = true }
        func upstreamWritabilityChanged(isWritable: Bool) {}
    }

    static func connection() throws -> (EmbeddedChannel, UpstreamHandler, Owner) {
        let channel = EmbeddedChannel()
        let handler = UpstreamHandler()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        let owner = Owner()
        handler.owner = owner
        return (channel, handler, owner)
    }

    static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test("A head goes as the bytes it was written as; the answer to a HEAD has no body whatever its length says")
    func headRequest() throws {
        let (channel, handler, owner) = try Self.connection()
        handler.sendHead(ByteBuffer(string: "HEAD /a HTTP/1.1\r\nHost: u\r\n\r\n"), isHead: true, chunked: false)
        handler.send(.end(nil))
        handler.flush()
        #expect(try Self.written(channel) == "HEAD /a HTTP/1.1\r\nHost: u\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"))
        #expect(owner.parts == ["head 200", "end"])
        // The connection is in step for the next call: a GET's answer has its body.
        owner.parts = []
        handler.sendHead(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: u\r\n\r\n"), isHead: false, chunked: false)
        handler.send(.end(nil))
        handler.flush()
        #expect(try Self.written(channel) == "GET /a HTTP/1.1\r\nHost: u\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        #expect(owner.parts == ["head 200", "body ok", "end"])
        _ = try? channel.finish()
    }

    @Test("A chunked body is framed chunk by chunk (no empty chunk) and ends with the last chunk; a sized one goes as it is")
    func bodies() throws {
        let (channel, handler, _) = try Self.connection()
        handler.sendHead(ByteBuffer(string: "POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"), isHead: false, chunked: true)
        handler.send(.body(.byteBuffer(ByteBuffer(string: "abc"))))
        handler.send(.body(.byteBuffer(ByteBuffer())))
        handler.send(.body(.byteBuffer(ByteBuffer(string: String(repeating: "z", count: 17)))))
        handler.send(.end(nil))
        handler.flush()
        #expect(
            try Self.written(channel)
                == "POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n11\r\n" + String(repeating: "z", count: 17)
                + "\r\n0\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 204 No Content\r\n\r\n"))
        handler.sendHead(ByteBuffer(string: "PUT /a HTTP/1.1\r\nContent-Length: 3\r\n\r\n"), isHead: false, chunked: false)
        handler.send(.body(.byteBuffer(ByteBuffer(string: "abc"))))
        handler.send(.end(nil))
        handler.flush()
        #expect(try Self.written(channel) == "PUT /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        _ = try? channel.finish()
    }

    @Test("An answer nobody asked for closes the connection")
    func unsolicited() throws {
        let (channel, handler, owner) = try Self.connection()
        handler.owner = nil
        _ = try? channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        #expect(!channel.isActive)
        #expect(owner.parts.isEmpty)
    }

    @Test("The idle list keeps open connections up to its limit, dropping closed ones when it looks full")
    func idleListLimit() throws {
        var idle: [UpstreamHandler] = []
        let first = try Self.connection(), second = try Self.connection(), third = try Self.connection()
        #expect(UpstreamPool.keep(first.1, in: &idle, limit: 2))
        #expect(UpstreamPool.keep(second.1, in: &idle, limit: 2))
        #expect(!UpstreamPool.keep(third.1, in: &idle, limit: 2))
        #expect(idle.count == 2)
        // A connection that closed while idle makes room once the list is full.
        try first.0.close().wait()
        #expect(UpstreamPool.keep(third.1, in: &idle, limit: 2))
        #expect(idle.map { ObjectIdentifier($0) } == [ObjectIdentifier(second.1), ObjectIdentifier(third.1)])
        // Below the limit a closed one may stay until taken: `takeIdle` skips it.
        try second.0.close().wait()
        #expect(idle.count == 2 && idle.filter(\.isActive).count == 1)
    }
}
