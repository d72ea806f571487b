import Foundation
import Testing
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// Sessions and one-time portal links (issue 18), the same on SQLite and PostgreSQL.
@Suite("Web sessions and portal links")
struct WebSessionStoreTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func seedCustomer(_ store: TollgateStore) async throws {
        try await store.saveCustomer(Customer(id: "cus_1", name: "Ada", createdAt: Date()), mode: .create)
    }

    @Test(arguments: TestDatabase.allCases)
    func aLinkWorksOnceAndOnlyWithinItsHour(database: TestDatabase) async throws {
        let now = self.now
        try await database.withStore { store in
            try await Self.seedCustomer(store)
            try await store.createPortalLink(tokenHash: "h1", customer: "cus_1", expiresAt: now.addingTimeInterval(3600), now: now)
            try await store.createPortalLink(tokenHash: "h2", customer: "cus_1", expiresAt: now.addingTimeInterval(3600), now: now)
            #expect(try await store.consumePortalLink(tokenHash: "h1", now: now.addingTimeInterval(10)) == "cus_1")
            #expect(try await store.consumePortalLink(tokenHash: "h1", now: now.addingTimeInterval(11)) == nil)
            #expect(try await store.consumePortalLink(tokenHash: "h2", now: now.addingTimeInterval(3600)) == nil)
            #expect(try await store.consumePortalLink(tokenHash: "unknown", now: now) == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func twoBrowsersRacingWithOneLinkGetOneSession(database: TestDatabase) async throws {
        let now = self.now
        try await database.withStore { store in
            try await Self.seedCustomer(store)
            try await store.createPortalLink(tokenHash: "race", customer: "cus_1", expiresAt: now.addingTimeInterval(3600), now: now)
            let winners = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<8 { group.addTask { try await store.consumePortalLink(tokenHash: "race", now: now.addingTimeInterval(1)) } }
                var found: [String] = []
                for try await customer in group { if let customer { found.append(customer) } }
                return found
            }
            #expect(winners == ["cus_1"])
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func sessionsLastUntilTheyExpireOrEnd(database: TestDatabase) async throws {
        let now = self.now
        try await database.withStore { store in
            try await Self.seedCustomer(store)
            let portal = WebSession(kind: .portal, customer: "cus_1", expiresAt: now.addingTimeInterval(600))
            try await store.createWebSession(idHash: "s1", portal, now: now)
            try await store.createWebSession(
                idHash: "s2", WebSession(kind: .dashboard, customer: nil, expiresAt: now.addingTimeInterval(600)), now: now)
            #expect(try await store.webSession(idHash: "s1", now: now.addingTimeInterval(599)) == portal)
            #expect(try await store.webSession(idHash: "s1", now: now.addingTimeInterval(600)) == nil)
            #expect(try await store.webSession(idHash: "s2", now: now)?.kind == .dashboard)
            try await store.deleteWebSession(idHash: "s2")
            #expect(try await store.webSession(idHash: "s2", now: now) == nil)
            #expect(try await store.webSession(idHash: "nope", now: now) == nil)
        }
    }
}
