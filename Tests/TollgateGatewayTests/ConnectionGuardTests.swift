import NIOCore
import NIOEmbedded
import Testing
@testable import TollgateGateway

/// The connection guard's limits and the deadline ticker, in memory: an `EmbeddedChannel` on
/// an `EmbeddedEventLoop` whose clock the test moves.
@Suite("Connection guard and deadline ticker (in memory)")
struct ConnectionGuardTests {
    static let resolution = TimeAmount.milliseconds(100)

    static func policy() -> EdgePolicy {
        var policy = EdgePolicy()
        policy.idleTimeout = .seconds(10)
        policy.requestHeadTimeout = .seconds(2)
        policy.maxRequestHeadBytes = 64
        return policy
    }

    /// A connected channel with a guard; what the guard passes on is read back as inbound.
    static func channel() throws -> (EmbeddedChannel, EmbeddedEventLoop, ConnectionGuard, DeadlineTicker) {
        let loop = EmbeddedEventLoop()
        let ticker = DeadlineTicker(eventLoop: loop, resolution: resolution)
        let connectionGuard = ConnectionGuard(policy: policy(), ticker: ticker)
        let channel = EmbeddedChannel(handler: connectionGuard, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, loop, connectionGuard, ticker)
    }

    static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test("A silent keep-alive connection is closed after the idle limit, not before")
    func idleConnectionCloses() throws {
        let (channel, loop, _, watched) = try Self.channel()
        loop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        #expect(watched.watcherCount == 1)
        loop.advanceTime(by: .seconds(1) + Self.resolution)
        #expect(!channel.isActive)
        #expect(try Self.written(channel).isEmpty)
        #expect(watched.watcherCount == 0)
    }

    @Test("A head still incomplete at its limit is answered 408 and the connection closed")
    func slowHeadIs408() throws {
        let (channel, loop, _, _) = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHo"))
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "GET / HTTP/1.1\r\nHo")
        loop.advanceTime(by: .seconds(2) + Self.resolution)
        let answer = try Self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(answer.hasSuffix(#"{"message":"Request head timed out"}"#))
        #expect(!channel.isActive)
    }

    @Test("A head that outgrows the limit is answered 431 at once")
    func largeHeadIs431() throws {
        let (channel, _, _, _) = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "GET /" + String(repeating: "a", count: 100)))
        #expect(try Self.written(channel).hasPrefix("HTTP/1.1 431 "))
        #expect(!channel.isActive)
    }

    @Test("While a request is answered the guard sets no limit; afterwards the idle limit runs again")
    func requestPhaseHasNoGuardDeadline() throws {
        let (channel, loop, connectionGuard, _) = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        connectionGuard.requestStarted()
        loop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        connectionGuard.requestFinished()
        loop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(1) + Self.resolution)
        #expect(!channel.isActive)
    }

    @Test("The ticker runs only while something is watched")
    func tickerStopsWhenEmpty() throws {
        let loop = EmbeddedEventLoop()
        let ticker = DeadlineTicker(eventLoop: loop, resolution: Self.resolution)
        let watcher = CountingWatcher()
        ticker.add(watcher)
        loop.advanceTime(by: .milliseconds(350))
        #expect(watcher.ticks == 3)
        ticker.remove(watcher)
        loop.advanceTime(by: .seconds(1))
        #expect(watcher.ticks == 3)
        // Added again, it ticks again, once per resolution (not twice).
        ticker.add(watcher)
        loop.advanceTime(by: .milliseconds(200))
        #expect(watcher.ticks == 5)
    }

    @Test("The deadline resolution is a third of the shortest limit, within 10-100 ms")
    func resolutionFollowsTheShortestLimit() {
        var policy = EdgePolicy()
        #expect(policy.deadlineResolution(readTimeout: .seconds(60)) == .milliseconds(100))
        policy.bodyTimeout = .milliseconds(150)
        #expect(policy.deadlineResolution(readTimeout: .seconds(60)) == .milliseconds(50))
        #expect(policy.deadlineResolution(readTimeout: .milliseconds(3)) == .milliseconds(10))
    }
}

private final class CountingWatcher: DeadlineWatcher {
    var ticks = 0
    func deadlinesDue(at now: NIODeadline) { ticks += 1 }
}
