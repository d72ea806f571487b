import Foundation
import Metrics
import TollgateCore
import TollgateStore

/// The collector (DESIGN §3.5): reads Moesif events and actions and CloudEvents, attributes each
/// to a subscription, and stores them through the same ledger as the gateway's calls.
struct Collector: Sendable {
    let store: TollgateStore

    /// Which reader an item goes through.
    enum Kind: Sendable {
        case apiEvent, action, cloudEvent
    }

    /// What became of a request's items.
    struct Outcome: Sendable {
        var accepted = 0
        /// Accepted items already stored (the same key: `UsageEvent.Key`).
        var duplicates = 0
        var refused: [(index: Int, message: String)] = []
        /// Accepted items whose period was already invoiced: stored, not re-rated.
        var late: [(index: Int, invoice: String)] = []

        var document: DocumentNode {
            .object([
                ("accepted", .integer(accepted)),
                ("duplicates", .integer(duplicates)),
                ("refused", DocumentNode(.list(refused.map { .object([("index", .integer($0.index)), ("message", .text($0.message))]) }))),
                ("late", DocumentNode(.list(late.map { item in
                    .object([("index", .integer(item.index)), ("invoice", .text(item.invoice)),
                             ("message", .text("falls in a period already invoiced (\(item.invoice)); stored, not re-rated"))])
                }))),
            ])
        }
    }

    /// Reads, attributes and stores items (each with its JSON text, which is what the ledger
    /// keeps); refused items are reported, the others stored in one transaction.
    func ingest(_ items: [ScannedJSON], kind: Kind, now: Date = Date()) async throws -> Outcome {
        var outcome = Outcome()
        // What was read, who its sender says it belongs to, and its position in the batch.
        // Events are completed in place and moved, never copied: each is a dozen references.
        var events: [UsageEvent] = []
        var claims: [Attribution.Claim] = []
        var indexes: [Int] = []
        events.reserveCapacity(items.count)
        claims.reserveCapacity(items.count)
        indexes.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            if item.arrivedSize > CollectorFormat.largestEvent {
                outcome.refused.append((index, "larger than 1 MB"))
                continue
            }
            let result = switch kind {
            case .apiEvent: CollectorFormat.apiEvent(item, receivedAt: now)
            case .action: CollectorFormat.action(item, receivedAt: now)
            case .cloudEvent: CollectorFormat.cloudEvent(item, receivedAt: now)
            }
            switch result {
            case .success(let collected):
                claims.append(Attribution.Claim(collected))
                events.append(collected.event)
                indexes.append(index)
            case .failure(let refusal): outcome.refused.append((index, refusal.message))
            }
        }
        let attribution = try await Attribution.load(for: claims, store: store)
        // Attributed events are kept in order at the front; refused ones end up behind them.
        var kept = 0
        for position in events.indices {
            if let refusal = attribution.attribute(&events[position], claimedBy: claims[position]) {
                outcome.refused.append((indexes[position], refusal.message))
                continue
            }
            events.swapAt(kept, position)
            indexes.swapAt(kept, position)
            kept += 1
        }
        events.removeLast(events.count - kept)
        indexes.removeLast(indexes.count - kept)
        outcome.refused.sort { $0.index < $1.index }
        // The store takes the events; their keys are kept to report late ones.
        let keys = events.map(\.key)
        let stored = try await store.insertEvents(consume events)
        outcome.accepted = keys.count
        outcome.duplicates = keys.count - stored.inserted.count
        Self.count(accepted: stored.inserted.count, duplicates: outcome.duplicates, refused: outcome.refused.count)
        if !stored.late.isEmpty {
            for (index, key) in zip(indexes, keys) {
                if let invoice = stored.late[key] { outcome.late.append((index, invoice)) }
            }
        }
        return outcome
    }

    /// `tollgate_collector_events_total{result}`: events newly stored (`accepted`), already
    /// stored (`duplicate`) and refused (unreadable, unattributable or too large).
    private static func count(accepted: Int, duplicates: Int, refused: Int) {
        for (result, count) in [("accepted", accepted), ("duplicate", duplicates), ("refused", refused)] where count > 0 {
            Counter(label: "tollgate_collector_events_total", dimensions: [("result", result)]).increment(by: Int64(count))
        }
    }
}

/// What attributing a batch needs, loaded once per batch: the subscriptions named or owned by
/// the customers named, users' customers, and the endpoints of the products involved.
struct Attribution: Sendable {
    /// The subscriptions loaded for the batch; the look-ups below give places in it, so that
    /// attributing an event copies none of them.
    var loaded: [Subscription] = []
    var subscriptions: [String: Int] = [:]
    var byCustomer: [String: [Int]] = [:]
    var userCustomers: [String: String] = [:]
    var endpoints: [String: EndpointTable] = [:]

    /// Who the sender says an event belongs to: a `CollectedEvent` without its event.
    struct Claim: Sendable {
        var company: String?
        var user: String?
        var subscription: String?
        var subjectMayBeSubscription: Bool

        init(_ collected: CollectedEvent) {
            company = collected.company
            user = collected.user
            subscription = collected.subscription
            subjectMayBeSubscription = collected.subjectMayBeSubscription
        }
    }

    static func load(for claims: [Claim], store: TollgateStore) async throws -> Attribution {
        var attribution = Attribution()
        let unknownUsers = claims.distinctValues { $0.company == nil && $0.subscription == nil ? $0.user : nil }
        if !unknownUsers.isEmpty { attribution.userCustomers = try await store.collectorUserCustomers(Array(unknownUsers)) }
        let ids = claims.distinctValues(\.subscription).union(claims.distinctValues { $0.subjectMayBeSubscription ? $0.company : nil })
        let customers = claims.distinctValues(\.company).union(attribution.userCustomers.values)
        guard !ids.isEmpty || !customers.isEmpty else { return attribution }
        for subscription in try await store.subscriptions(ids: Array(ids), customers: Array(customers)) {
            attribution.subscriptions[subscription.id] = attribution.loaded.count
            attribution.byCustomer[subscription.customer, default: []].append(attribution.loaded.count)
            attribution.loaded.append(subscription)
        }
        for product in Set(attribution.loaded.map(\.product)) {
            if let stored = try await store.productForIngestion(product) { attribution.endpoints[product] = EndpointTable(stored) }
        }
        return attribution
    }

    /// Fills in the event's subscription, customer, product and endpoint; nil, or why it cannot be stored.
    func attribute(_ event: inout UsageEvent, claimedBy claim: Claim) -> CollectorFormat.Refusal? {
        let at = event.occurredAt
        var customer = claim.company ?? claim.user.flatMap { userCustomers[$0] }
        var chosen: Int?
        if claim.subjectMayBeSubscription, let subject = claim.company, let found = subscriptions[subject] {
            chosen = found
            customer = loaded[found].customer
        } else if let id = claim.subscription {
            guard let found = subscriptions[id] else { return .init("unknown subscription \"\(id)\"") }
            if let customer, customer != loaded[found].customer {
                return .init("subscription \"\(id)\" belongs to another customer than \"\(customer)\"")
            }
            chosen = found
        } else if let customer, let owned = byCustomer[customer] {
            // Usually one of them is alive: found without making a list.
            guard let first = owned.firstIndex(where: { isAlive(at: $0, at) }) else {
                return .init("occurred outside the life of every subscription of customer \"\(customer)\"")
            }
            if !owned[(first + 1)...].contains(where: { isAlive(at: $0, at) }) {
                chosen = owned[first]
            } else {
                let matching = owned.filter { isAlive(at: $0, at) && endpoint(of: event, in: loaded[$0].product) != nil }
                guard matching.count == 1 else {
                    return .init("customer \"\(customer)\" has several subscriptions this event could belong to; name one in subscription_id")
                }
                chosen = matching[0]
            }
        }
        event.customer = customer
        guard let chosen else { return nil }
        guard isAlive(at: chosen, at) else { return .init("occurred outside the life of subscription \"\(loaded[chosen].id)\"") }
        event.subscription = loaded[chosen].id
        event.customer = loaded[chosen].customer
        event.product = loaded[chosen].product
        if event.source == .apiLog { event.endpoint = endpoint(of: event, in: loaded[chosen].product) }
        return nil
    }

    /// Whether the loaded subscription at `place` was alive at `date`.
    private func isAlive(at place: Int, _ date: Date) -> Bool {
        date >= loaded[place].startedAt && loaded[place].terminatedAt.map { date < $0 } ?? true
    }

    /// The endpoint of the subscription's product an API event matches: by its path as sent, or
    /// below the product's prefix when the path went through the gateway's form.
    private func endpoint(of event: UsageEvent, in product: String) -> String? {
        guard let method = event.method, let path = event.path, let table = endpoints[product] else { return nil }
        if let endpoint = table.identifier(method: method, path: Substring(path)) { return endpoint }
        let prefix = "/" + product
        if path.hasPrefix(prefix + "/") {
            return table.identifier(method: method, path: path.dropFirst(prefix.count))
        }
        return nil
    }
}
