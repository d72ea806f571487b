import Foundation
import Testing
@testable import TollgateWeb

@Suite("Signup rate limit")
struct SignupLimitTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    /// Admits each (address, seconds after start) in turn; returns the answers.
    func admit(_ limit: inout SignupLimit, _ requests: [(String, Double)]) -> [Bool] {
        requests.map { limit.admit($0.0, now: start.addingTimeInterval($0.1)) }
    }

    @Test("an address gets its signups per window, then again in the next window")
    func perAddress() {
        var limit = SignupLimit(limit: 2, window: 3600)
        let answers = admit(&limit, [("a", 0), ("a", 10), ("a", 20), ("b", 20), ("a", 3600)])
        #expect(answers == [true, true, false, true, true])
    }

    @Test("no more than maxAddresses addresses are remembered")
    func bounded() {
        var limit = SignupLimit(limit: 1, window: 3600, maxAddresses: 3)
        for index in 0..<10 {
            let admitted = limit.admit("10.0.0.\(index)", now: start.addingTimeInterval(Double(index)))
            #expect(admitted)
            #expect(limit.trackedAddresses <= 3)
        }
    }

    @Test("a limit of 0 refuses every signup")
    func zero() {
        var limit = SignupLimit(limit: 0)
        let admitted = limit.admit("a", now: start)
        #expect(!admitted)
    }
}
