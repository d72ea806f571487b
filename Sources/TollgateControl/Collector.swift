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
        // What was read, and each one's position in the batch.
        var collected: [CollectedEvent] = []
        var collectedIndexes: [Int] = []
        collected.reserveCapacity(items.count)
        collectedIndexes.reserveCapacity(items.count)
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
            case .success(let collectedEvent):
                collected.append(collectedEvent)
                collectedIndexes.append(index)
            case .failure(let refusal): outcome.refused.append((index, refusal.message))
            }
        }
        let attribution = try await Attribution.load(for: collected, store: store)
        var events: [UsageEvent] = []
        var indexes: [Int] = []
        events.reserveCapacity(collected.count)
        for (index, item) in zip(collectedIndexes, collected) {
            switch attribution.attribute(item) {
            case .success(let event):
                events.append(event)
                indexes.append(index)
            case .failure(let refusal): outcome.refused.append((index, refusal.message))
            }
        }
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
    var subscriptions: [String: Subscription] = [:]
    var byCustomer: [String: [Subscription]] = [:]
    var userCustomers: [String: String] = [:]
    var endpoints: [String: EndpointTable] = [:]

    static func load(for items: [CollectedEvent], store: TollgateStore) async throws -> Attribution {
        var attribution = Attribution()
        let unknownUsers = items.distinctValues { $0.company == nil && $0.subscription == nil ? $0.user : nil }
        if !unknownUsers.isEmpty { attribution.userCustomers = try await store.collectorUserCustomers(Array(unknownUsers)) }
        let ids = items.distinctValues(\.subscription).union(items.distinctValues { $0.subjectMayBeSubscription ? $0.company : nil })
        let customers = items.distinctValues(\.company).union(attribution.userCustomers.values)
        guard !ids.isEmpty || !customers.isEmpty else { return attribution }
        for subscription in try await store.subscriptions(ids: Array(ids), customers: Array(customers)) {
            attribution.subscriptions[subscription.id] = subscription
            attribution.byCustomer[subscription.customer, default: []].append(subscription)
        }
        for product in Set(attribution.subscriptions.values.map(\.product)) {
            if let stored = try await store.productForIngestion(product) { attribution.endpoints[product] = EndpointTable(stored) }
        }
        return attribution
    }

    /// The event with its subscription, customer, product and endpoint, or why it cannot be stored.
    func attribute(_ item: CollectedEvent) -> Result<UsageEvent, CollectorFormat.Refusal> {
        var event = item.event
        let at = event.occurredAt
        var customer = item.company ?? item.user.flatMap { userCustomers[$0] }
        var chosen: Subscription?
        if item.subjectMayBeSubscription, let subject = item.company, let subscription = subscriptions[subject] {
            chosen = subscription
            customer = subscription.customer
        } else if let id = item.subscription {
            guard let subscription = subscriptions[id] else { return .failure(.init("unknown subscription \"\(id)\"")) }
            if let customer, customer != subscription.customer {
                return .failure(.init("subscription \"\(id)\" belongs to another customer than \"\(customer)\""))
            }
            chosen = subscription
        } else if let customer, let owned = byCustomer[customer] {
            // Usually one of them is alive: found without making a list.
            guard let first = owned.firstIndex(where: { Self.isAlive($0, at: at) }) else {
                return .failure(.init("occurred outside the life of every subscription of customer \"\(customer)\""))
            }
            if !owned[(first + 1)...].contains(where: { Self.isAlive($0, at: at) }) {
                chosen = owned[first]
            } else {
                let matching = owned.filter { Self.isAlive($0, at: at) && endpoint(of: event, in: $0) != nil }
                guard matching.count == 1 else {
                    return .failure(.init(
                        "customer \"\(customer)\" has several subscriptions this event could belong to; name one in subscription_id"))
                }
                chosen = matching[0]
            }
        }
        event.customer = customer
        guard let subscription = chosen else { return .success(event) }
        guard Self.isAlive(subscription, at: at) else {
            return .failure(.init("occurred outside the life of subscription \"\(subscription.id)\""))
        }
        event.subscription = subscription.id
        event.customer = subscription.customer
        event.product = subscription.product
        if event.source == .apiLog { event.endpoint = endpoint(of: event, in: subscription) }
        return .success(event)
    }

    private static func isAlive(_ subscription: Subscription, at date: Date) -> Bool {
        date >= subscription.startedAt && subscription.terminatedAt.map { date < $0 } ?? true
    }

    /// The endpoint of the subscription's product an API event matches: by its path as sent, or
    /// below the product's prefix when the path went through the gateway's form.
    private func endpoint(of event: UsageEvent, in subscription: Subscription) -> String? {
        guard let method = event.method, let path = event.path, let table = endpoints[subscription.product] else { return nil }
        if let endpoint = table.endpoint(method: method, path: Substring(path)) { return endpoint.identifier }
        let prefix = "/" + subscription.product
        if path.hasPrefix(prefix + "/") {
            return table.endpoint(method: method, path: path.dropFirst(prefix.count))?.identifier
        }
        return nil
    }
}
