import Foundation
import NIOConcurrencyHelpers

/// The built `tollgate` executable run as a child process, for what only a real process shows:
/// exit codes, signals, `kill -9`.
public final class TollgateProcess: Sendable {
    private let process: Process
    private let printed: NIOLockedValueBox<String>
    private let pipe: Pipe

    /// The `tollgate` binary next to the test bundle in the build folder.
    public static var executable: URL {
        get throws {
            var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            for _ in 0..<3 {
                let candidate = folder.appendingPathComponent("tollgate")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
                folder = folder.deletingLastPathComponent()
            }
            throw TestFailure("the tollgate executable was not built next to the tests (run `swift build` first)")
        }
    }

    private init(process: Process, printed: NIOLockedValueBox<String>, pipe: Pipe) {
        self.process = process
        self.printed = printed
        self.pipe = pipe
    }

    /// Runs `tollgate ARGUMENTS` to completion; returns its exit code and everything it printed.
    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (code: Int32, output: String) {
        let started = try start(arguments, environment: environment)
        started.process.waitUntilExit()
        started.collectRest()
        return (started.process.terminationStatus, started.output)
    }

    /// Reads what the exited process left in the pipe. Once it exited, everything it wrote is in
    /// the pipe's buffer, so a non-blocking read gets all of it; waiting for the pipe's end could
    /// wait for another child that inherited the pipe (two processes started at once).
    private func collectRest() {
        let handle = pipe.fileHandleForReading
        handle.readabilityHandler = nil
        // A handler call that was running has appended its bytes once it releases the lock.
        printed.withLockedValue { _ in }
        let descriptor = handle.fileDescriptor
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            guard count > 0 else { break }
            printed.withLockedValue { $0 += String(decoding: buffer[..<count], as: UTF8.self) }
        }
    }

    /// Starts `tollgate ARGUMENTS` in the background; stdout and stderr are collected.
    public static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> TollgateProcess {
        let process = Process()
        process.executableURL = try executable
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = NIOLockedValueBox("")
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil  // End of file.
            } else {
                output.withLockedValue { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
        try process.run()
        return TollgateProcess(process: process, printed: output, pipe: pipe)
    }

    /// Everything printed so far.
    public var output: String { printed.withLockedValue { $0 } }

    public var processIdentifier: Int32 { process.processIdentifier }

    /// How the process looks from outside, for failure messages: Foundation's view and /proc's.
    public var diagnosis: String {
        let stat = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)) ?? "no /proc entry"
        return "pid \(process.processIdentifier), Foundation isRunning \(process.isRunning), /proc: \(stat.prefix(60))"
    }

    /// Whether the process still runs: a killed child that is not reaped yet (a zombie) does not.
    public var isRunning: Bool {
        guard process.isRunning else { return false }
        // Gone from /proc: reaped already, though Foundation may not have said so yet.
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8) else { return false }
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    /// Waits until the server logs both listening ports; returns them.
    public func waitUntilListening(timeout: Duration = .seconds(60)) async throws -> (proxy: Int, admin: Int) {
        try await waitForValue("tollgate to listen on both ports; it printed:\n\(output)", timeout: timeout) {
            let text = output
            if let proxy = Self.port(in: text, after: "address=127.0.0.1:", line: "proxy listening"),
               let admin = Self.port(in: text, after: "listening on 127.0.0.1:", line: "Server started") {
                return (proxy, admin)
            }
            guard process.isRunning else { throw TestFailure("tollgate exited early:\n\(text)") }
            return nil
        }
    }

    /// Waits until a node that serves one port listens (`--role gateway`: the proxy port,
    /// `--role control`: the admin port) and returns that port.
    public func waitUntilListening(proxyOnly: Bool, timeout: Duration = .seconds(60)) async throws -> Int {
        try await waitForValue("tollgate to listen; it printed:\n\(output)", timeout: timeout) {
            let text = output
            let port = proxyOnly
                ? Self.port(in: text, after: "address=127.0.0.1:", line: "proxy listening")
                : Self.port(in: text, after: "listening on 127.0.0.1:", line: "Server started")
            if let port { return port }
            guard process.isRunning else { throw TestFailure("tollgate exited early:\n\(text)") }
            return nil
        }
    }

    private static func port(in text: String, after marker: String, line needle: String) -> Int? {
        for line in text.split(separator: "\n") where line.contains(needle) {
            guard let range = line.range(of: marker) else { continue }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        return nil
    }

    /// Sends a signal (SIGTERM, SIGKILL).
    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to end and for everything it printed to be read; returns its exit status.
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        do {
            try await waitUntil("tollgate to exit", timeout: timeout) { !process.isRunning }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            throw TestFailure("tollgate did not exit in time:\n\(output)")
        }
        collectRest()
        return process.terminationStatus
    }
}
