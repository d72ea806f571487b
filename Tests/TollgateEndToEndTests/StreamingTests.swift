import Synchronization
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateApp
import TollgateTestSupport

/// 100 MB each way pass through the proxy without being held in memory.
@Suite("Streaming bodies")
struct StreamingTests {
    static let size = 100 * 1024 * 1024
    /// Resident memory may grow by less than this while 100 MB pass (client, proxy and upstream
    /// all live in this process).
    static let allowedGrowth = 48 * 1024 * 1024

    @Test func a100MBDownloadIsStreamed() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            var request = HTTPClientRequest(url: server.proxyURL + "/shop/bytes/\(Self.size)")
            request.headers.add(name: "apikey", value: token)
            let baseline = ResidentMemory.current()
            var peak = baseline
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
            #expect(response.status == .ok)
            var received = 0
            var parts = 0
            for try await part in response.body {
                received += part.readableBytes
                parts += 1
                if parts % 64 == 0 { peak = max(peak, ResidentMemory.current()) }
            }
            #expect(received == Self.size)
            #expect(peak - baseline < Self.allowedGrowth, "resident memory grew by \(peak - baseline) bytes")
            #expect(try await server.billedCalls(id)["bytes"] == 1)
        }
    }

    @Test func a100MBUploadIsStreamed() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            let baseline = ResidentMemory.current()
            let body = ChunkedBody(total: Self.size)
            var request = HTTPClientRequest(url: server.proxyURL + "/shop/upload")
            request.method = .POST
            request.headers.add(name: "apikey", value: token)
            request.body = .stream(body, length: .known(Int64(Self.size)))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
            #expect(response.status == .ok)
            #expect(text == #"{"received":\#(Self.size)}"#)
            #expect(body.peak.value - baseline < Self.allowedGrowth, "resident memory grew by \(body.peak.value - baseline) bytes")
            #expect(try await server.billedCalls(id)["upload"] == 1)
        }
    }
}

/// The resident set size of this process, from /proc.
enum ResidentMemory {
    static func current() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kilobytes * 1024
        }
        return 0
    }
}

/// A request body produced 64 KiB at a time, sampling memory as it goes.
struct ChunkedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let total: Int
    let peak = PeakMemory()

    final class PeakMemory: Sendable {
        private let box = Mutex(0)
        var value: Int { box.withLock { $0 } }
        func sample() { let now = ResidentMemory.current(); box.withLock { $0 = Swift.max($0, now) } }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: Int
        let chunk = ByteBuffer(repeating: 0x61, count: 64 * 1024)
        let peak: PeakMemory
        var produced = 0

        mutating func next() async -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            let size = Swift.min(remaining, chunk.readableBytes)
            remaining -= size
            produced += 1
            if produced % 64 == 0 { peak.sample() }
            return chunk.getSlice(at: 0, length: size)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        peak.sample()
        return AsyncIterator(remaining: total, peak: peak)
    }
}
