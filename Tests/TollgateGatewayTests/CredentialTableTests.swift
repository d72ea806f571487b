import Foundation
import Synchronization
import Testing
import TollgateCore

@testable import TollgateGateway

/// The gateway's compact credential table, in memory: lookups, replacement, removal, growth,
/// colliding keys, and a long random run checked against a Dictionary model.
@Suite("Credential table")
struct CredentialTableTests {
    /// A deterministic generator (SplitMix64), so that a failing run can be repeated.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func hash(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) -> TokenHash {
        TokenHash(words: (w0, w1, w2, w3))
    }

    static func randomHash(_ generator: inout SeededGenerator) -> TokenHash {
        hash(generator.next(), generator.next(), generator.next(), generator.next())
    }

    static func consumer(
        _ subscription: String, customer: String = "cus_a", product: String = "invoices", plan: String = "starter",
        startedAt: Double = 800_000_000
    ) -> Consumer {
        Consumer(
            subscription: subscription, customer: customer, product: product, plan: plan,
            startedAt: Date(timeIntervalSinceReferenceDate: startedAt))
    }

    @Test func anEntryTakesEightyBytes() {
        #expect(MemoryLayout<CredentialTable.Entry>.stride == 80)
    }

    @Test func findsWhatWasSetAndNothingElse() {
        var table = CredentialTable()
        let one = Self.hash(1, 2, 3, 4)
        let two = Self.hash(5, 6, 7, 8)
        let first = Self.consumer("sub_aaaaaaaaaaaaaaaaaaaa", startedAt: 812_345_678.123456)
        let second = Self.consumer("sub_bbbbbbbbbbbbbbbbbbbb", customer: "cus_b", plan: "pro")
        table.set(one, first)
        table.set(two, second)
        #expect(table.count == 2)
        #expect(table.consumer(one) == first)
        #expect(table.consumer(two) == second)
        #expect(table.consumer(Self.hash(1, 2, 3, 5)) == nil)
        #expect(table.hash(subscription: "sub_aaaaaaaaaaaaaaaaaaaa") == one)
        #expect(table.hash(subscription: "sub_cccccccccccccccccccc") == nil)
        #expect(table.invariantViolations() == [])
    }

    @Test func aNewTokenReplacesTheSubscriptionsPreviousOne() {
        var table = CredentialTable()
        let old = Self.hash(1, 1, 1, 1)
        let new = Self.hash(2, 2, 2, 2)
        table.set(old, Self.consumer("sub_1"))
        table.set(new, Self.consumer("sub_1"))
        #expect(table.count == 1)
        #expect(table.consumer(old) == nil)
        #expect(table.consumer(new)?.subscription == "sub_1")
        #expect(table.hash(subscription: "sub_1") == new)
        #expect(table.invariantViolations() == [])
    }

    @Test func settingTheSameTokenAgainUpdatesTheConsumerInPlace() {
        var table = CredentialTable()
        let token = Self.hash(9, 9, 9, 9)
        table.set(token, Self.consumer("sub_1", customer: "cus_a", plan: "starter"))
        table.set(token, Self.consumer("sub_1", customer: "cus_b", plan: "pro", startedAt: 1))
        #expect(table.count == 1)
        #expect(table.consumer(token) == Self.consumer("sub_1", customer: "cus_b", plan: "pro", startedAt: 1))
        // The values no entry uses any more are dropped.
        #expect(table.customers.distinctCount == 1)
        #expect(table.plans.distinctCount == 1)
        #expect(table.invariantViolations() == [])
    }

    @Test func aHashTakenByAnotherSubscriptionMovesToTheNewOne() {
        var table = CredentialTable()
        let token = Self.hash(3, 3, 3, 3)
        table.set(token, Self.consumer("sub_1"))
        table.set(token, Self.consumer("sub_2"))
        #expect(table.count == 1)
        #expect(table.consumer(token)?.subscription == "sub_2")
        #expect(table.hash(subscription: "sub_1") == nil)
        #expect(table.invariantViolations() == [])
    }

    @Test func removingLeavesTheOthersFindable() {
        var table = CredentialTable()
        let hashes = (0..<5).map { Self.hash(UInt64($0), 0, 0, UInt64($0)) }
        for (index, hash) in hashes.enumerated() { table.set(hash, Self.consumer("sub_\(index)")) }
        let changed1 = table.remove(subscription: "sub_1")
        #expect(changed1)
        let changed2 = table.remove(subscription: "sub_1")
        #expect(!changed2)
        let changed3 = table.remove(subscription: "sub_unknown")
        #expect(!changed3)
        #expect(table.count == 4)
        #expect(table.consumer(hashes[1]) == nil)
        for index in [0, 2, 3, 4] { #expect(table.consumer(hashes[index])?.subscription == "sub_\(index)") }
        // Removing the last entry and the first.
        let changed4 = table.remove(subscription: "sub_4")
        #expect(changed4)
        let changed5 = table.remove(subscription: "sub_0")
        #expect(changed5)
        #expect(table.count == 2)
        for index in [2, 3] { #expect(table.consumer(hashes[index])?.subscription == "sub_\(index)") }
        #expect(table.invariantViolations() == [])
    }

    @Test func updatePlanChangesOnlyThePlan() {
        var table = CredentialTable()
        let token = Self.hash(4, 4, 4, 4)
        table.set(token, Self.consumer("sub_1", plan: "starter"))
        let changed6 = table.updatePlan(subscription: "sub_1", plan: "pro")
        #expect(changed6)
        let changed7 = table.updatePlan(subscription: "sub_2", plan: "pro")
        #expect(!changed7)
        #expect(table.consumer(token) == Self.consumer("sub_1", plan: "pro"))
        #expect(table.plans.distinctCount == 1)
        #expect(table.invariantViolations() == [])
    }

    @Test(arguments: [
        "", "s", "sub_12345678901234567890", "sub_123456789012345678901", "sub_é12345678901234567",
        "sub_é1234567890123456789",
        "sub_ünïcødé-ids-are-kept-whole-however-long", String(repeating: "x", count: 300),
    ])
    func subscriptionIdsOfAnyLengthComeBackWhole(id: String) {
        var table = CredentialTable()
        let token = Self.hash(5, 5, 5, 5)
        let other = Self.hash(6, 6, 6, 6)
        table.set(other, Self.consumer("sub_other_and_longer_than_twenty_four_bytes"))
        table.set(token, Self.consumer(id))
        #expect(table.consumer(token)?.subscription == id)
        #expect(table.hash(subscription: id) == token)
        // Ids that share the first 24 bytes are different ids.
        #expect(table.hash(subscription: id + "0") == nil)
        let changed8 = table.remove(subscription: id)
        #expect(changed8)
        #expect(table.consumer(token) == nil)
        #expect(table.consumer(other)?.subscription == "sub_other_and_longer_than_twenty_four_bytes")
        #expect(table.invariantViolations() == [])
    }

    @Test func hashesThatShareTheirFirstWordAreToldApart() {
        // The same first word: the same home place, so only the full comparison tells them apart.
        var table = CredentialTable()
        let hashes = (0..<12).map { Self.hash(0xABCD_EF01_2345_6789, 7, 7, UInt64($0)) }
        for (index, hash) in hashes.enumerated() { table.set(hash, Self.consumer("sub_\(index)")) }
        // Others whose probe starts a little earlier run through the same places.
        let neighbours = (0..<6).map { Self.hash(0xABCD_EF01_2345_6789 &- UInt64($0 + 1) << 56, 1, 1, 1) }
        for (index, hash) in neighbours.enumerated() { table.set(hash, Self.consumer("sub_n\(index)")) }
        #expect(table.consumer(Self.hash(0xABCD_EF01_2345_6789, 7, 7, 99)) == nil)
        for (index, hash) in hashes.enumerated() { #expect(table.consumer(hash)?.subscription == "sub_\(index)") }
        for index in stride(from: 0, to: 12, by: 3) {
            let removed = table.remove(subscription: "sub_\(index)")
            #expect(removed)
        }
        for (index, hash) in hashes.enumerated() {
            #expect(table.consumer(hash)?.subscription == (index % 3 == 0 ? nil : "sub_\(index)"))
        }
        for (index, hash) in neighbours.enumerated() { #expect(table.consumer(hash)?.subscription == "sub_n\(index)") }
        #expect(table.invariantViolations() == [])
    }

    @Test func aRunThatWrapsAroundTheEndIsFoundAndShiftedBack() {
        // Home places at the very end of the table: their run continues at its start.
        var table = CredentialTable()
        let hashes = (0..<8).map { Self.hash(UInt64.max - UInt64($0), 2, 2, 2) }
        for (index, hash) in hashes.enumerated() { table.set(hash, Self.consumer("sub_\(index)")) }
        let start = (0..<3).map { Self.hash(UInt64($0), 3, 3, 3) }
        for (index, hash) in start.enumerated() { table.set(hash, Self.consumer("sub_s\(index)")) }
        #expect(table.invariantViolations() == [])
        for index in [7, 0, 3] {
            let removed = table.remove(subscription: "sub_\(index)")
            #expect(removed)
        }
        for (index, hash) in hashes.enumerated() {
            #expect(table.consumer(hash)?.subscription == ([7, 0, 3].contains(index) ? nil : "sub_\(index)"))
        }
        for (index, hash) in start.enumerated() { #expect(table.consumer(hash)?.subscription == "sub_s\(index)") }
        #expect(table.invariantViolations() == [])
    }

    @Test func growsFromTheSmallestSizeAndSurvivesChurn() {
        var generator = SeededGenerator(state: 7)
        var table = CredentialTable()
        #expect(table.entries.count == 16)
        var live: [String: TokenHash] = [:]
        for round in 0..<20 {
            for index in 0..<200 {
                let id = "sub_\(round)_\(index)"
                let hash = Self.randomHash(&generator)
                table.set(hash, Self.consumer(id, customer: "cus_\(index % 7)"))
                live[id] = hash
            }
            // Remove about half, in an order unrelated to insertion.
            for id in live.keys.sorted().filter({ _ in generator.next() % 2 == 0 }) {
                let changed9 = table.remove(subscription: id)
                #expect(changed9)
                live[id] = nil
            }
            #expect(table.invariantViolations() == [])
        }
        #expect(table.count == live.count)
        #expect(table.entries.count >= live.count * 5 / 4)
        for (id, hash) in live { #expect(table.consumer(hash)?.subscription == id) }
        for id in Array(live.keys) { table.remove(subscription: id) }
        #expect(table.count == 0)
        #expect(table.bySubscription.slots.allSatisfy { $0 == 0 })
        #expect(table.customers.distinctCount == 0)
        #expect(table.invariantViolations() == [])
    }

    @Test func reservedCapacityIsNotRegrown() {
        var table = CredentialTable(minimumCapacity: 1000)
        let places = table.entries.count
        var generator = SeededGenerator(state: 11)
        for index in 0..<1000 { table.set(Self.randomHash(&generator), Self.consumer("sub_\(index)")) }
        #expect(table.entries.count == places)
        #expect(table.invariantViolations() == [])
    }

    /// 100,000 random operations (new subscriptions, rotations, terminations, plan changes,
    /// consumer updates, a hash moved to another subscription) against a Dictionary model.
    @Test func agreesWithADictionaryModelOverARandomRun() {
        var generator = SeededGenerator(state: 2026)
        var table = CredentialTable()
        var model: [String: (hash: TokenHash, consumer: Consumer)] = [:]
        var ids: [String] = []
        var retired: [TokenHash] = []
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")

        func newID() -> String {
            let kind = generator.next() % 20
            let length = kind == 0 ? 40 : (kind == 1 ? 3 : 20)
            return "sub_" + String((0..<length).map { _ in alphabet[Int(generator.next() % 36)] })
        }
        func randomConsumer(_ id: String) -> Consumer {
            Self.consumer(
                id, customer: "cus_\(generator.next() % 50)", product: "product-\(generator.next() % 3)",
                plan: "plan-\(generator.next() % 5)", startedAt: Double(generator.next() % 1_000_000_000) / 7)
        }
        func existingID() -> String? {
            while let index = ids.indices.randomElement(using: &generator) {
                if model[ids[index]] != nil { return ids[index] }
                ids.swapAt(index, ids.count - 1)
                ids.removeLast()
            }
            return nil
        }

        for step in 0..<100_000 {
            let operation = generator.next() % 100
            if operation < 45 || model.isEmpty {
                let id = newID()
                let hash = Self.randomHash(&generator)
                let consumer = randomConsumer(id)
                table.set(hash, consumer)
                if let previous = model[id] { retired.append(previous.hash) }
                model[id] = (hash, consumer)
                ids.append(id)
            } else if operation < 60, let id = existingID() {
                // Rotation.
                let hash = Self.randomHash(&generator)
                retired.append(model[id]!.hash)
                table.set(hash, model[id]!.consumer)
                model[id]!.hash = hash
            } else if operation < 80, let id = existingID() {
                let changed10 = table.remove(subscription: id)
                #expect(changed10)
                retired.append(model[id]!.hash)
                model[id] = nil
            } else if operation < 90, let id = existingID() {
                let plan = "plan-\(generator.next() % 5)"
                let changed11 = table.updatePlan(subscription: id, plan: plan)
                #expect(changed11)
                model[id]!.consumer.plan = plan
            } else if operation < 98, let id = existingID() {
                // The same token set again with another customer, plan and start.
                var consumer = randomConsumer(id)
                consumer.product = model[id]!.consumer.product
                table.set(model[id]!.hash, consumer)
                model[id]!.consumer = consumer
            } else if let from = existingID() {
                // Another subscription given this one's token hash: this one loses it.
                let to = newID()
                let hash = model[from]!.hash
                let consumer = randomConsumer(to)
                table.set(hash, consumer)
                model[from] = nil
                if let previous = model[to] { retired.append(previous.hash) }
                model[to] = (hash, consumer)
                ids.append(to)
            }
            if step % 5_000 == 0 {
                #expect(table.count == model.count)
            }
        }
        #expect(table.count == model.count)
        var mismatches = 0
        for (id, expected) in model {
            if table.consumer(expected.hash) != expected.consumer || table.hash(subscription: id) != expected.hash {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
        let live = Set(model.values.map { $0.hash.description })
        #expect(retired.filter { !live.contains($0.description) }.allSatisfy { table.consumer($0) == nil })
        #expect(table.customers.distinctCount == Set(model.values.map(\.consumer.customer)).count)
        #expect(table.plans.distinctCount == Set(model.values.map(\.consumer.plan)).count)
        #expect(table.invariantViolations() == [])
    }

    /// Suspension for non-payment (DESIGN §3.8) lives in the entry's padding: set, read, lifted,
    /// kept across a plan change and a rotation, and the stride stays 80 bytes.
    @Test func aSuspendedSubscriptionIsKnownAndMarked() {
        let directory = GatewayDirectory()
        let token = APIToken.generate()
        var suspended = Self.consumer("sub_1")
        suspended.suspended = true
        directory.replaceCredentials([(APIToken.hash(token), suspended)])
        #expect(directory.consumer(token: Substring(token))?.suspended == true)
        directory.updatePlan(subscription: "sub_1", plan: "pro")
        #expect(directory.consumer(token: Substring(token))?.suspended == true)
        directory.setSuspended(subscription: "sub_1", false)
        #expect(directory.consumer(token: Substring(token)) == Self.consumer("sub_1", plan: "pro"))
        directory.setSuspended(subscription: "sub_1", true)
        #expect(directory.consumer(token: Substring(token))?.suspended == true)
        directory.setSuspended(subscription: "sub_unknown", true)
        #expect(directory.credentialCount == 1)
        #expect(MemoryLayout<CredentialTable.Entry>.stride == 80)
    }

    @Test func theDirectoryServesTokensThroughTheTable() {
        let directory = GatewayDirectory()
        let first = APIToken.generate()
        let second = APIToken.generate()
        directory.replaceCredentials([
            (APIToken.hash(first), Self.consumer("sub_1")), (APIToken.hash(second), Self.consumer("sub_2")),
        ])
        #expect(directory.credentialCount == 2)
        #expect(directory.consumer(token: Substring(first))?.subscription == "sub_1")
        #expect(directory.consumer(token: Substring(APIToken.generate())) == nil)

        let rotated = APIToken.generate()
        directory.setCredential(APIToken.hash(rotated), Self.consumer("sub_1"))
        #expect(directory.consumer(token: Substring(first)) == nil)
        #expect(directory.consumer(token: Substring(rotated))?.subscription == "sub_1")

        // Looked up first, so that the directory remembers it: the change must still show.
        #expect(directory.consumer(token: Substring(second))?.plan == "starter")
        directory.updatePlan(subscription: "sub_2", plan: "pro")
        #expect(directory.consumer(token: Substring(second))?.plan == "pro")

        directory.removeCredentials(subscription: "sub_2")
        #expect(directory.consumer(token: Substring(second)) == nil)
        #expect(directory.credentialCount == 1)

        var table = CredentialTable()
        table.set(APIToken.hash(second), Self.consumer("sub_3"))
        directory.replaceCredentials(table)
        #expect(directory.consumer(token: Substring(rotated)) == nil)
        #expect(directory.consumer(token: Substring(second))?.subscription == "sub_3")
        #expect(directory.credentialCount == 1)
    }

    @Test func theDirectoryTellsApartTokensThatShareARememberedPlace() {
        // 600 tokens for 256 remembered places: many share one, and each must still find its own.
        let directory = GatewayDirectory()
        let tokens = (0..<600).map { _ in APIToken.generate() }
        directory.replaceCredentials(tokens.enumerated().map { (APIToken.hash($1), Self.consumer("sub_\($0)")) })
        var wrong = 0
        for _ in 0..<2 {
            for (index, token) in tokens.enumerated() where directory.consumer(token: Substring(token))?.subscription != "sub_\(index)" {
                wrong += 1
            }
        }
        #expect(wrong == 0)
        directory.removeCredentials(subscription: "sub_599")
        #expect(directory.consumer(token: Substring(tokens[599])) == nil)
        #expect(directory.consumer(token: Substring(tokens[598]))?.subscription == "sub_598")
    }

    static func subscription(_ id: String, status: SubscriptionStatus = .active) -> Subscription {
        let start = Date(timeIntervalSinceReferenceDate: 800_000_000)
        return Subscription(id: id, customer: "cus_a", plan: "starter", product: "invoices", status: status, startedAt: start, createdAt: start)
    }

    @Test func storedSubscriptionsSetReplaceAndRemoveTokens() {
        let directory = GatewayDirectory()
        let (kept, old, terminated) = (APIToken.generate(), APIToken.generate(), APIToken.generate())
        directory.replaceCredentials([
            (APIToken.hash(kept), Self.consumer("sub_kept")), (APIToken.hash(old), Self.consumer("sub_rotated")),
            (APIToken.hash(terminated), Self.consumer("sub_terminated")),
        ])
        let (rotated, created) = (APIToken.generate(), APIToken.generate())
        #expect(directory.apply(stored: [
            (Self.subscription("sub_kept"), APIToken.hash(kept)),
            (Self.subscription("sub_rotated"), APIToken.hash(rotated)),
            (Self.subscription("sub_terminated", status: .terminated), APIToken.hash(terminated)),
            (Self.subscription("sub_new", status: .suspended), APIToken.hash(created)),
        ], ifUnchangedSince: directory.generation))
        #expect(directory.consumer(token: Substring(kept))?.subscription == "sub_kept")
        #expect(directory.consumer(token: Substring(old)) == nil)
        #expect(directory.consumer(token: Substring(rotated))?.subscription == "sub_rotated")
        #expect(directory.consumer(token: Substring(terminated)) == nil)
        #expect(directory.consumer(token: Substring(created))?.suspended == true)
        #expect(directory.credentialCount == 3)
    }

    @Test func aTokenAppliedAgainUnchangedIsNeverMissingMeanwhile() async {
        // A gateway node applies every subscription changed in the last seconds at each look; a
        // call made during a look must still find a token that did not change. One thread applies
        // the same subscription over and over while another looks its token up.
        let directory = GatewayDirectory()
        let token = APIToken.generate()
        let stored = [(subscription: Self.subscription("sub_1"), tokenHash: APIToken.hash(token))]
        directory.apply(stored: stored, ifUnchangedSince: directory.generation)
        let applying = Atomic(true)
        let misses = Atomic(0)
        let lookups = Atomic(0)
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            if worker == 0 {
                let generation = directory.generation
                for _ in 0..<100_000 { directory.apply(stored: stored, ifUnchangedSince: generation) }
                applying.store(false, ordering: .releasing)
            } else {
                while applying.load(ordering: .acquiring) {
                    if directory.consumer(token: Substring(token)) == nil { misses.add(1, ordering: .relaxed) }
                    lookups.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(lookups.load(ordering: .relaxed) > 0)
        #expect(misses.load(ordering: .relaxed) == 0)
    }

    @Test func storedRowsReadBeforeADirectChangeDoNotUndoIt() {
        // The sync reads a subscription as active; meanwhile this node terminates it. The rows
        // read before must not bring the token back.
        let directory = GatewayDirectory()
        let token = APIToken.generate()
        let active = [(subscription: Self.subscription("sub_1"), tokenHash: APIToken.hash(token))]
        #expect(directory.apply(stored: active, ifUnchangedSince: directory.generation))
        let readAt = directory.generation
        directory.removeCredentials(subscription: "sub_1")
        #expect(!directory.apply(stored: active, ifUnchangedSince: readAt))
        #expect(directory.consumer(token: Substring(token)) == nil)
        // Read again after the change, the stored rows say terminated.
        let terminated = [(subscription: Self.subscription("sub_1", status: .terminated), tokenHash: APIToken.hash(token))]
        #expect(directory.apply(stored: terminated, ifUnchangedSince: directory.generation))
        #expect(directory.consumer(token: Substring(token)) == nil)
        // Every direct change counts, whether or not it changed the table.
        for change in [
            { directory.setCredential(APIToken.hash(token), Self.consumer("sub_2")) },
            { directory.updatePlan(subscription: "sub_unknown", plan: "pro") },
            { directory.setSuspended(subscription: "sub_unknown", true) },
            { directory.replaceCredentials([]) },
        ] {
            let before = directory.generation
            change()
            #expect(directory.generation != before)
        }
    }
}
