import Foundation
import TollgateCore

/// The gateway's credentials, compact enough for millions of tokens: consumers by token hash, and
/// each subscription's credential by its id so that it can be replaced or removed without a scan.
///
/// The entries themselves form an open-addressing table placed by token hash (linear probing, at
/// most four fifths full, a size that need not be a power of two): finding a token reads one place
/// in memory and the next ones while probing. An entry is fixed-width, 80 bytes: the 32-byte token
/// hash, the subscription id's bytes, the start of its periods and three small indices. Customer,
/// product and plan ids are interned: few distinct values are shared by many subscriptions, so an
/// entry keeps a 32-bit index and the table one `String` per distinct value. A subscription id of
/// up to 24 UTF-8 bytes (`sub_` and 20 random characters is 24) is kept in the entry itself; a
/// longer one, rare, in a side array. A second index of 8-byte slots (32 bits of the id's hash and
/// the entry's place) finds an entry by subscription id. Removal shifts the rest of a probe run
/// back instead of leaving tombstones, in both.
///
/// A value type without I/O: `GatewayDirectory` keeps one behind a lock.
public struct CredentialTable: Sendable {
    /// One credential. Keep its stride at 80 bytes (a test checks it).
    struct Entry {
        var hash: TokenHash
        /// The subscription id's UTF-8 bytes, zero-padded, when it fits (`idLength <= 24`);
        /// otherwise `id.0` is its position in `longIDs`.
        var id: (UInt64, UInt64, UInt64)
        var startedAt: Double
        var customer: UInt32
        var product: UInt32
        var plan: UInt32
        var idLength: UInt8
        /// Suspended for non-payment (in what was padding: the stride stays 80).
        var suspended: Bool
    }

    /// A subscription id as entries store it.
    enum SubscriptionKey {
        case inline((UInt64, UInt64, UInt64), length: UInt8)
        case long(String)

        static let inlineCapacity = 24
        /// `Entry.idLength` of an id kept in `longIDs`.
        static let longMarker: UInt8 = .max
        /// `Entry.idLength` of a free place.
        static let emptyMarker: UInt8 = .max - 1

        init(_ id: String) {
            guard id.utf8.count <= SubscriptionKey.inlineCapacity else {
                self = .long(id)
                return
            }
            var id = id
            var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
            let length = id.withUTF8 { bytes in
                withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
                return bytes.count
            }
            self = .inline(words, length: UInt8(length))
        }

        /// 32 bits of the id's hash (seeded per process, as `Hasher` is).
        var tag: UInt32 {
            var hasher = Hasher()
            switch self {
            case .inline(let words, let length):
                hasher.combine(words.0)
                hasher.combine(words.1)
                hasher.combine(words.2)
                hasher.combine(length)
            case .long(let id):
                hasher.combine(id)
            }
            return UInt32(truncatingIfNeeded: hasher.finalize())
        }
    }

    /// What a lookup found; `consumer` builds the subscription id's `String`, outside any lock.
    public struct Match: Sendable {
        let entry: Entry
        let customer: String
        let product: String
        let plan: String
        let longID: String?

        /// The consumer the token belongs to.
        public var consumer: Consumer {
            let subscription =
                longID
                ?? withUnsafeBytes(of: entry.id) { raw in
                    String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<Int(entry.idLength)]), as: UTF8.self)
                }
            return Consumer(
                subscription: subscription, customer: customer, product: product, plan: plan,
                startedAt: Date(timeIntervalSinceReferenceDate: entry.startedAt), suspended: entry.suspended)
        }
    }

    /// The entries themselves, placed by token hash (open addressing, linear probing): a lookup
    /// reads one place in memory. `Entry.idLength == SubscriptionKey.emptyMarker` marks a free place.
    private(set) var entries: ContiguousArray<Entry>
    private(set) var count = 0
    /// Entry positions by subscription id.
    private(set) var bySubscription: SlotIndex
    private(set) var customers = Interner()
    private(set) var products = Interner()
    private(set) var plans = Interner()
    private(set) var longIDs: [String] = []
    private var freeLongIDs: [UInt32] = []

    static let emptyEntry = Entry(
        hash: TokenHash(words: (0, 0, 0, 0)), id: (0, 0, 0), startedAt: 0, customer: 0, product: 0, plan: 0,
        idLength: SubscriptionKey.emptyMarker, suspended: false)

    /// The entry count for `count` credentials: at most four fifths full (not a power of two, so
    /// that a million credentials take 1.25 million places, not two million).
    static func capacity(for count: Int) -> Int {
        precondition(count < Int(UInt32.max) / 2, "a CredentialTable holds fewer than 2^31 credentials")
        return Swift.max(16, count / 4 * 5 + 5)
    }

    /// An empty table with room for `minimumCapacity` credentials before it grows.
    public init(minimumCapacity: Int = 0) {
        entries = ContiguousArray(repeating: Self.emptyEntry, count: Self.capacity(for: minimumCapacity))
        bySubscription = SlotIndex(capacity: SlotIndex.capacity(for: minimumCapacity))
    }

    /// Makes room for `capacity` credentials in all, so that a load of known size never regrows.
    public mutating func reserveCapacity(_ capacity: Int) {
        if Self.capacity(for: capacity) > entries.count { resize(to: capacity) }
    }

    // MARK: Reads

    /// The credential of a token hash; the hashes are compared in constant time (`TokenHash ==`).
    public func match(_ hash: TokenHash) -> Match? {
        guard let position = position(of: hash) else { return nil }
        let entry = entries[position]
        return Match(
            entry: entry, customer: customers[entry.customer], product: products[entry.product],
            plan: plans[entry.plan], longID: entry.idLength == SubscriptionKey.longMarker ? longIDs[Int(entry.id.0)] : nil)
    }

    /// The consumer a token hash belongs to.
    public func consumer(_ hash: TokenHash) -> Consumer? {
        match(hash)?.consumer
    }

    /// The token hash of a subscription's credential.
    public func hash(subscription: String) -> TokenHash? {
        let key = SubscriptionKey(subscription)
        return subscriptionPosition(key, tag: key.tag).map { entries[bySubscription.entry(at: $0)].hash }
    }

    /// Where a hash's entry starts its probe.
    @inline(__always)
    static func home(_ hash: TokenHash, capacity: Int) -> Int {
        Int(truncatingIfNeeded: hash.words.0.multipliedFullWidth(by: UInt64(capacity)).high)
    }

    func position(of hash: TokenHash) -> Int? {
        entries.withUnsafeBufferPointer { entries in
            let capacity = entries.count
            var position = Self.home(hash, capacity: capacity)
            while true {
                let entry = entries[position]
                if entry.idLength == SubscriptionKey.emptyMarker { return nil }
                if entry.hash == hash { return position }
                position += 1
                if position == capacity { position = 0 }
            }
        }
    }

    private func subscriptionPosition(_ key: SubscriptionKey, tag: UInt32) -> Int? {
        bySubscription.position(tag: tag) { index in
            let entry = entries[index]
            switch key {
            case .inline(let words, let length):
                return entry.idLength == length && entry.id.0 == words.0 && entry.id.1 == words.1 && entry.id.2 == words.2
            case .long(let id):
                return entry.idLength == SubscriptionKey.longMarker && longIDs[Int(entry.id.0)] == id
            }
        }
    }

    private func subscriptionKey(of entry: Entry) -> SubscriptionKey {
        entry.idLength == SubscriptionKey.longMarker
            ? .long(longIDs[Int(entry.id.0)]) : .inline(entry.id, length: entry.idLength)
    }

    // MARK: Changes

    /// Sets the one credential of `consumer.subscription`, replacing its previous token; a credential
    /// of another subscription with the same hash is removed.
    public mutating func set(_ hash: TokenHash, _ consumer: Consumer) {
        let key = SubscriptionKey(consumer.subscription)
        if let position = subscriptionPosition(key, tag: key.tag) {
            let index = bySubscription.entry(at: position)
            if entries[index].hash == hash {
                update(index, consumer)
                return
            }
            removeEntry(at: index)
        }
        if let index = self.position(of: hash) { removeEntry(at: index) }
        if Self.capacity(for: count + 1) > entries.count { resize(to: Swift.max(count + 1, count * 2)) }
        var entry = Entry(
            hash: hash, id: (0, 0, 0), startedAt: consumer.startedAt.timeIntervalSinceReferenceDate,
            customer: customers.retain(consumer.customer), product: products.retain(consumer.product),
            plan: plans.retain(consumer.plan), idLength: 0, suspended: consumer.suspended)
        switch key {
        case .inline(let words, let length):
            entry.id = words
            entry.idLength = length
        case .long(let id):
            let slot: UInt32
            if let free = freeLongIDs.popLast() {
                slot = free
                longIDs[Int(free)] = id
            } else {
                slot = UInt32(longIDs.count)
                longIDs.append(id)
            }
            entry.id = (UInt64(slot), 0, 0)
            entry.idLength = SubscriptionKey.longMarker
        }
        place(entry, subscriptionTag: key.tag)
    }

    /// Puts an entry whose hash and subscription are absent at the first free place of its probe.
    private mutating func place(_ entry: Entry, subscriptionTag: UInt32) {
        let capacity = entries.count
        var position = Self.home(entry.hash, capacity: capacity)
        while entries[position].idLength != SubscriptionKey.emptyMarker {
            position += 1
            if position == capacity { position = 0 }
        }
        entries[position] = entry
        bySubscription.insert(tag: subscriptionTag, entry: position)
        count += 1
    }

    /// The same credentials in room for `count` of them.
    private mutating func resize(to count: Int) {
        var resized = CredentialTable(minimumCapacity: count)
        for entry in entries where entry.idLength != SubscriptionKey.emptyMarker {
            resized.place(entry, subscriptionTag: subscriptionKey(of: entry).tag)
        }
        entries = resized.entries
        bySubscription = resized.bySubscription
    }

    /// Removes a subscription's credential; `false` when it had none.
    @discardableResult
    public mutating func remove(subscription: String) -> Bool {
        let key = SubscriptionKey(subscription)
        guard let position = subscriptionPosition(key, tag: key.tag) else { return false }
        removeEntry(at: bySubscription.entry(at: position))
        return true
    }

    /// Changes the plan of a subscription's credential; `false` when it has none.
    @discardableResult
    public mutating func updatePlan(subscription: String, plan: String) -> Bool {
        let key = SubscriptionKey(subscription)
        guard let position = subscriptionPosition(key, tag: key.tag) else { return false }
        let index = bySubscription.entry(at: position)
        let previous = entries[index].plan
        entries[index].plan = plans.retain(plan)
        plans.release(previous)
        return true
    }

    /// Suspends a subscription's credential for non-payment, or lifts it; `false` when it has none.
    @discardableResult
    public mutating func setSuspended(subscription: String, _ suspended: Bool) -> Bool {
        let key = SubscriptionKey(subscription)
        guard let position = subscriptionPosition(key, tag: key.tag) else { return false }
        entries[bySubscription.entry(at: position)].suspended = suspended
        return true
    }

    private mutating func update(_ index: Int, _ consumer: Consumer) {
        let previous = entries[index]
        entries[index].customer = customers.retain(consumer.customer)
        entries[index].product = products.retain(consumer.product)
        entries[index].plan = plans.retain(consumer.plan)
        entries[index].startedAt = consumer.startedAt.timeIntervalSinceReferenceDate
        entries[index].suspended = consumer.suspended
        customers.release(previous.customer)
        products.release(previous.product)
        plans.release(previous.plan)
    }

    /// Empties the entry at `position` and moves back every later entry of its run that may move
    /// (no tombstones), keeping the subscription index pointing at each moved entry.
    private mutating func removeEntry(at position: Int) {
        let entry = entries[position]
        bySubscription.remove(at: bySubscription.position(tag: subscriptionKey(of: entry).tag) { $0 == position }!)
        customers.release(entry.customer)
        products.release(entry.product)
        plans.release(entry.plan)
        if entry.idLength == SubscriptionKey.longMarker {
            longIDs[Int(entry.id.0)] = ""
            freeLongIDs.append(UInt32(entry.id.0))
        }
        let capacity = entries.count
        var hole = position
        var next = position + 1 == capacity ? 0 : position + 1
        while entries[next].idLength != SubscriptionKey.emptyMarker {
            let home = Self.home(entries[next].hash, capacity: capacity)
            // The entry at `next` may fill the hole when the hole lies on its probe, home...next.
            let fromHome = next >= home ? next - home : next + capacity - home
            let fromHole = next >= hole ? next - hole : next + capacity - hole
            if fromHome >= fromHole {
                let moved = entries[next]
                let tag = subscriptionKey(of: moved).tag
                let movedFrom = next
                bySubscription.setEntry(at: bySubscription.position(tag: tag) { $0 == movedFrom }!, hole, tag: tag)
                entries[hole] = moved
                hole = next
            }
            next = next + 1 == capacity ? 0 : next + 1
        }
        entries[hole] = Self.emptyEntry
        count -= 1
    }
}

extension CredentialTable {
    /// What is wrong with the table's internal consistency, for tests: every entry found by its
    /// hash and by its subscription at its own place, no stray index slot, at most four fifths
    /// full, interned values counted once per entry that uses them.
    func invariantViolations() -> [String] {
        var problems: [String] = []
        let used = entries.indices.filter { entries[$0].idLength != SubscriptionKey.emptyMarker }
        if used.count != count { problems.append("\(used.count) entries for a count of \(count)") }
        if count > 0, Self.capacity(for: count) > entries.count { problems.append("entries over four fifths full") }
        if count > bySubscription.slots.count / 4 * 3 { problems.append("subscription index over three quarters full") }
        let slots = bySubscription.slots.indices.filter { bySubscription.slots[$0] != 0 }
        if slots.count != count { problems.append("subscription index has \(slots.count) slots for \(count) entries") }
        if Set(slots.map { bySubscription.entry(at: $0) }) != Set(used) { problems.append("subscription index points elsewhere") }
        for position in used {
            let entry = entries[position]
            if self.position(of: entry.hash) != position { problems.append("entry \(position) not found by its hash") }
            let key = subscriptionKey(of: entry)
            if subscriptionPosition(key, tag: key.tag).map({ bySubscription.entry(at: $0) }) != position {
                problems.append("entry \(position) not found by its subscription")
            }
        }
        let live = used.map { entries[$0] }
        for (name, interner, field) in [
            ("customer", customers, \Entry.customer), ("product", products, \Entry.product), ("plan", plans, \Entry.plan),
        ] {
            var uses: [UInt32: UInt32] = [:]
            for entry in live { uses[entry[keyPath: field], default: 0] += 1 }
            if uses.count != interner.distinctCount { problems.append("\(name): \(interner.distinctCount) values for \(uses.count) in use") }
            for (index, count) in uses where interner.uses[Int(index)] != count {
                problems.append("\(name) \(index) counted \(interner.uses[Int(index)]) times, used \(count)")
            }
        }
        let longInUse = live.filter { $0.idLength == SubscriptionKey.longMarker }.count
        if longInUse != longIDs.count - freeLongIDs.count { problems.append("long ids: \(longInUse) in use, \(longIDs.count - freeLongIDs.count) kept") }
        return problems
    }
}

// MARK: - Parts

/// Open addressing with linear probing over 8-byte slots: 32 bits of the key's hash (which also
/// give the slot the probe starts from) and the entry's position plus one; 0 is an empty slot.
/// Deletion shifts the rest of the run back, so no tombstones pile up.
struct SlotIndex: Sendable {
    private(set) var slots: [UInt64]

    init(capacity: Int) {
        slots = [UInt64](repeating: 0, count: capacity)
    }

    /// The slot count for `count` keys: a power of two, at most three quarters full.
    static func capacity(for count: Int) -> Int {
        var capacity = 16
        while count > capacity / 4 * 3 { capacity *= 2 }
        return capacity
    }

    private var mask: Int { slots.count - 1 }

    private static func home(_ slot: UInt64, mask: Int) -> Int { Int(truncatingIfNeeded: slot >> 32) & mask }

    func entry(at position: Int) -> Int { Int(truncatingIfNeeded: slots[position] & 0xFFFF_FFFF) - 1 }

    /// The position of the slot with `tag` whose entry satisfies `matches`.
    func position(tag: UInt32, where matches: (Int) -> Bool) -> Int? {
        let mask = self.mask
        var position = Int(tag) & mask
        while true {
            let slot = slots[position]
            if slot == 0 { return nil }
            if UInt32(truncatingIfNeeded: slot >> 32) == tag, matches(Int(truncatingIfNeeded: slot & 0xFFFF_FFFF) - 1) {
                return position
            }
            position = (position + 1) & mask
        }
    }

    /// Adds a key known to be absent; the caller keeps the index below three quarters full.
    mutating func insert(tag: UInt32, entry: Int) {
        let mask = self.mask
        var position = Int(tag) & mask
        while slots[position] != 0 { position = (position + 1) & mask }
        slots[position] = UInt64(tag) << 32 | UInt64(entry + 1)
    }

    mutating func setEntry(at position: Int, _ entry: Int, tag: UInt32) {
        slots[position] = UInt64(tag) << 32 | UInt64(entry + 1)
    }

    /// Empties slot `position`, moving back every later slot of its run that may move.
    mutating func remove(at position: Int) {
        let mask = self.mask
        var hole = position
        var next = (hole + 1) & mask
        while slots[next] != 0 {
            let home = Self.home(slots[next], mask: mask)
            // The slot at `next` may fill the hole when the hole lies on its probe path, home...next.
            if (next &- home) & mask >= (next &- hole) & mask {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = 0
    }

    /// The same keys in `capacity` slots (a power of two, more than the keys).
    func resized(to capacity: Int) -> SlotIndex {
        var resized = SlotIndex(capacity: capacity)
        for slot in slots where slot != 0 {
            let mask = capacity - 1
            var position = Self.home(slot, mask: mask)
            while resized.slots[position] != 0 { position = (position + 1) & mask }
            resized.slots[position] = slot
        }
        return resized
    }
}

/// Strings shared by many credentials, each kept once and referred to by a 32-bit index; an index
/// whose last user is gone is reused.
struct Interner: Sendable {
    private(set) var values: [String] = []
    private(set) var uses: [UInt32] = []
    private var indices: [String: UInt32] = [:]
    private var free: [UInt32] = []

    /// How many distinct values are in use.
    var distinctCount: Int { indices.count }

    subscript(index: UInt32) -> String { values[Int(index)] }

    /// The index of `value`, counted as one more use.
    mutating func retain(_ value: String) -> UInt32 {
        if let index = indices[value] {
            uses[Int(index)] += 1
            return index
        }
        let index: UInt32
        if let reused = free.popLast() {
            index = reused
            values[Int(index)] = value
            uses[Int(index)] = 1
        } else {
            index = UInt32(values.count)
            values.append(value)
            uses.append(1)
        }
        indices[value] = index
        return index
    }

    /// One use of `index` fewer; the value is dropped with its last use.
    mutating func release(_ index: UInt32) {
        uses[Int(index)] -= 1
        if uses[Int(index)] == 0 {
            indices[values[Int(index)]] = nil
            values[Int(index)] = ""
            free.append(index)
        }
    }
}
