import Foundation
import Testing
@testable import TollgateWeb

@Suite("Signup rate limit")
struct SignupLimitTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("an address gets its signups per window, then again in the next window")
    func perAddress() {
        var limit = SignupLimit(limit: 2, window: 3600)
        #expect(limit.admit("a", now: start))
        #expect(limit.admit("a", now: start.addingTimeInterval(10)))
        #expect(!limit.admit("a", now: start.addingTimeInterval(20)))
        #expect(limit.admit("b", now: start.addingTimeInterval(20)))
        #expect(limit.admit("a", now: start.addingTimeInterval(3600)))
    }

    @Test("no more than maxAddresses addresses are remembered")
    func bounded() {
        var limit = SignupLimit(limit: 1, window: 3600, maxAddresses: 3)
        for index in 0..<10 {
            #expect(limit.admit("10.0.0.\(index)", now: start.addingTimeInterval(Double(index))))
            #expect(limit.trackedAddresses <= 3)
        }
    }

    @Test("a limit of 0 refuses every signup")
    func zero() {
        var limit = SignupLimit(limit: 0)
        #expect(!limit.admit("a", now: start))
    }
}
