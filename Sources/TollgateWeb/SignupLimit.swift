import Foundation
import Synchronization

/// How many self-serve signups one client address may make per window. Pure: the caller passes
/// the time. At most `maxAddresses` addresses are remembered; when full, the one whose window
/// started first is forgotten (nothing anonymous is kept without bound).
public struct SignupLimit: Sendable {
    public var limit: Int
    public var window: TimeInterval
    public var maxAddresses: Int
    private var windows: [String: (start: Date, count: Int)] = [:]

    public init(limit: Int = 5, window: TimeInterval = 3600, maxAddresses: Int = 10_000) {
        self.limit = limit
        self.window = window
        self.maxAddresses = maxAddresses
    }

    /// Counts a signup from `address` at `now` if the address has signups left; false otherwise.
    public mutating func admit(_ address: String, now: Date) -> Bool {
        if var entry = windows[address], now.timeIntervalSince(entry.start) < window {
            guard entry.count < limit else { return false }
            entry.count += 1
            windows[address] = entry
            return true
        }
        guard limit > 0 else { return false }
        if windows.count >= maxAddresses {
            windows = windows.filter { now.timeIntervalSince($0.value.start) < window }
            if windows.count >= maxAddresses, let oldest = windows.min(by: { $0.value.start < $1.value.start }) {
                windows.removeValue(forKey: oldest.key)
            }
        }
        windows[address] = (now, 1)
        return true
    }

    /// How many addresses are remembered.
    public var trackedAddresses: Int { windows.count }
}

/// A `SignupLimit` shared by concurrent requests.
final class SharedSignupLimit: Sendable {
    private let state: Mutex<SignupLimit>

    init(_ limit: SignupLimit) {
        state = Mutex(limit)
    }

    func admit(_ address: String, now: Date) -> Bool {
        state.withLock { $0.admit(address, now: now) }
    }
}
