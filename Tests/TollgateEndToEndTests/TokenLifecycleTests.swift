import Foundation
import Testing
import TollgateApp
import TollgateStore
import TollgateTestSupport

/// Tokens: shown once, stored hashed, dead at once when terminated or rotated.
@Suite("Token lifecycle")
struct TokenLifecycleTests {
    @Test func aTokenIsShownOnceWithItsPrefixAndNeverAgain() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            #expect(token.hasPrefix("tg_"))
            #expect(token.count >= 35)
            let read = try await server.admin("GET", "/v1/subscriptions/\(id)")
            #expect(read.status == 200)
            #expect(try read.json()["token"] == nil)
            #expect(!read.body.contains(token))
            let list = try await server.admin("GET", "/v1/subscriptions")
            #expect(!list.body.contains(token))
        }
    }

    @Test func tokensAreStoredOnlyAsHashes() async throws {
        try await withTollgate { server in
            let (_, token) = try await server.subscribe(plan: "shop-basic")
            guard case .sqlite(let path) = server.database else { throw TestFailure("expected SQLite") }
            let database = try Data(contentsOf: URL(fileURLWithPath: path))
            let wal = (try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data()
            #expect(database.count + wal.count > 0)
            #expect(database.range(of: Data(token.utf8)) == nil)
            #expect(wal.range(of: Data(token.utf8)) == nil)
        }
    }

    @Test func terminateKillsTheTokenOnTheNextCall() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 200)
            let terminated = try await server.admin("POST", "/v1/subscriptions/\(id)/terminate")
            #expect(terminated.status == 200)
            #expect(try terminated.json()["status"] as? String == "terminated")
            #expect(try terminated.json()["terminated_at"] as? String != nil)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 401)
            // Terminating again changes nothing; rotating a terminated subscription is refused.
            #expect(try await server.admin("POST", "/v1/subscriptions/\(id)/terminate").status == 200)
            #expect(try await server.admin("POST", "/v1/subscriptions/\(id)/tokens").status == 422)
        }
    }

    @Test func rotateReplacesTheTokenAtOnce() async throws {
        try await withTollgate { server in
            let (id, old) = try await server.subscribe(plan: "shop-basic")
            let rotated = try await server.admin("POST", "/v1/subscriptions/\(id)/tokens")
            #expect(rotated.status == 200)
            let new = try #require(try rotated.json()["token"] as? String)
            #expect(new != old)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", old)]).status == 401)
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", new)]).status == 200)
        }
    }

    @Test func changePlanKeepsTheTokenAndAnswersTheSubscription() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            let changed = try await server.admin("POST", "/v1/subscriptions/\(id)/change-plan", body: #"{"plan":"shop-pro"}"#)
            #expect(changed.status == 200)
            #expect(try changed.json()["plan"] as? String == "shop-pro")
            #expect(try await server.proxy("/shop/hello", headers: [("apikey", token)]).status == 200)
            let same = try await server.admin("POST", "/v1/subscriptions/\(id)/change-plan", body: #"{"plan":"shop-pro"}"#)
            #expect(same.status == 200)
            let otherProduct = try await server.admin("POST", "/v1/subscriptions/\(id)/change-plan", body: #"{"plan":"strict-basic"}"#)
            #expect(otherProduct.status == 422)
        }
    }

    @Test func tokensSurviveARestartOfTheServer() async throws {
        let database = try TestDatabase.sqlite.makeURL()
        let issued = Shared("")
        try await withTollgate(configure: { $0.database = database }) { server in
            let token = try await server.subscribe(plan: "shop-basic").token
            issued.update { $0 = token }
        }
        try await withTollgate(configure: { $0.database = database }) { server in
            let response = try await server.proxy("/shop/hello", headers: [("apikey", issued.value)])
            #expect(response.status == 200)
        }
    }
}
