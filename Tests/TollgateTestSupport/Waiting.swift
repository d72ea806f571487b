/// Waiting for a condition instead of sleeping: tests poll what they wait for, with a deadline
/// that only a broken (or stuck) system reaches, so that they neither pass by luck nor fail
/// because the machine is slow.

/// Polls `probe` until it returns a value (not nil), and returns that value; throws a `TestFailure`
/// naming `what` once `timeout` has passed without one.
public func waitForValue<T>(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(20),
    _ probe: () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await probe() { return value }
        guard ContinuousClock.now < deadline else { throw TestFailure("gave up after \(timeout) waiting for \(what())") }
        try await Task.sleep(for: interval)
    }
}

/// Polls `condition` until it holds; throws a `TestFailure` naming `what` once `timeout` has passed.
public func waitUntil(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let _: Bool = try await waitForValue(what(), timeout: timeout, every: interval) { try await condition() ? true : nil }
}
