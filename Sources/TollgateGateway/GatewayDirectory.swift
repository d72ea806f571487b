import Foundation
import NIOConcurrencyHelpers
import TollgateCore

/// Who is calling: what the gateway knows about a valid token.
public struct Consumer: Sendable, Equatable {
    public var subscription: String
    public var customer: String
    public var product: String
    public var plan: String
    /// The anchor of the subscription's billing periods.
    public var startedAt: Date
    /// Suspended for non-payment (DESIGN §3.8): the token is known, and answered 402.
    public var suspended: Bool

    public init(subscription: String, customer: String, product: String, plan: String, startedAt: Date, suspended: Bool = false) {
        self.subscription = subscription
        self.customer = customer
        self.product = product
        self.plan = plan
        self.startedAt = startedAt
        self.suspended = suspended
    }

    public init(_ subscription: Subscription) {
        self.init(
            subscription: subscription.id, customer: subscription.customer, product: subscription.product,
            plan: subscription.plan, startedAt: subscription.startedAt, suspended: subscription.status == .suspended)
    }
}

/// A product as the gateway routes it: endpoints ordered from the most specific.
///
/// A class: every call holds its route, and a reference is one retain where a copy of the
/// product's strings, endpoints and settings would be dozens.
public final class ProductRoute: Sendable {
    public let product: Product
    let endpoints: EndpointTable
    /// The `Host` header sent upstream, computed once.
    let upstreamHost: String
    /// How an `https://` upstream is reached (nil for `http://`).
    let tls: UpstreamTLS?
    /// The upstream pool's key of the product's connections, computed once.
    let upstreamKey: UpstreamKey

    public init(product: Product) {
        self.product = product
        self.upstreamHost = product.upstream.hostHeader
        self.endpoints = EndpointTable(product)
        self.tls = product.upstream.isTLS ? UpstreamTLS(product) : nil
        self.upstreamKey = UpstreamKey(
            product: product.id, host: product.upstream.host, port: product.upstream.port, tls: product.upstream.isTLS)
    }

    /// The identifier of the endpoint a call matches, by method and the path below the
    /// product prefix.
    func endpointIdentifier(method: String, path: Substring) -> String? {
        endpoints.identifier(method: method, path: path)
    }
}

/// Everything the proxy decides from, in memory: routes by product and consumers by token hash.
/// Reads take an uncontended lock; the control plane replaces entries as it changes them, so a
/// terminated or rotated token stops working on the very next call.
public final class GatewayDirectory: Sendable {
    private let routes = NIOLockedValueBox<[String: ProductRoute]>([:])
    /// The plans with prepaid quotas, by id.
    private let plans = NIOLockedValueBox<[String: Plan]>([:])
    /// Consumers by token hash, and each subscription's entry by its id (see `CredentialTable`).
    private let credentials = NIOLockedValueBox(Credentials())

    /// The table, and the consumers of recently used tokens: the table keeps a subscription id as
    /// bytes, so a lookup there builds its `String` (an allocation); a token that calls again finds
    /// its consumer here. Every change of the table empties it.
    private struct Credentials {
        static let recentCount = 256
        var table = CredentialTable()
        var recent = [(hash: TokenHash, consumer: Consumer)?](repeating: nil, count: recentCount)
        /// Counts the changes made here directly (`apply(stored:ifUnchangedSince:)` excepted).
        var generation: UInt64 = 0

        static func recentIndex(_ hash: TokenHash) -> Int { Int(truncatingIfNeeded: hash.words.1) & (recentCount - 1) }

        mutating func changed() {
            for index in recent.indices { recent[index] = nil }
        }

        /// A change made directly (by this node's control plane), which stored state read
        /// before it must not undo; `tableChanged` when it changed the table.
        mutating func changedDirectly(tableChanged: Bool = true) {
            if tableChanged { changed() }
            generation &+= 1
        }
    }

    public init() {}

    public func route(product: Substring) -> ProductRoute? {
        let key = String(product)
        return routes.withLockedValue { $0[key] }
    }

    public func consumer(token: Substring) -> Consumer? {
        consumer(tokenHash: APIToken.hash(token))
    }

    /// The consumer of the token whose hash this is.
    public func consumer(tokenHash hash: TokenHash) -> Consumer? {
        // `==` on TokenHash compares all of a hash in constant time, here and in the table.
        let index = Credentials.recentIndex(hash)
        return credentials.withLockedValue { credentials in
            if let recent = credentials.recent[index], recent.hash == hash { return recent.consumer }
            guard let consumer = credentials.table.match(hash)?.consumer else { return nil }
            credentials.recent[index] = (hash, consumer)
            return consumer
        }
    }

    /// The plan of that id if it has prepaid quotas; nil otherwise, its calls then being counted
    /// against nothing (most calls: no plan is copied for them).
    public func quotaPlan(_ id: String) -> Plan? {
        plans.withLockedValue { $0[id] }
    }

    /// Replaces the plans the gateway enforces quotas from (those without quotas are not kept).
    public func replacePlans(_ all: [Plan]) {
        let table = Dictionary(all.filter { !$0.prepaidQuotas.isEmpty }.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        plans.withLockedValue { $0 = table }
    }

    /// Replaces the whole routing table (archived products are not routed).
    public func replaceRoutes(_ products: [(product: Product, archived: Bool)]) {
        var table: [String: ProductRoute] = [:]
        for entry in products where !entry.archived {
            table[entry.product.id] = ProductRoute(product: entry.product)
        }
        routes.withLockedValue { $0 = table }
    }

    /// Replaces every credential at once (at start).
    public func replaceCredentials(_ entries: [(TokenHash, Consumer)]) {
        var table = CredentialTable(minimumCapacity: entries.count)
        for (hash, consumer) in entries { table.set(hash, consumer) }
        replaceCredentials(table)
    }

    /// Replaces every credential at once with a table built beforehand (at start, page by page).
    public func replaceCredentials(_ table: CredentialTable) {
        var table = table
        credentials.withLockedValue { credentials in
            swap(&credentials.table, &table)
            credentials.changedDirectly()
        }
        // The previous table is freed here, after the lock is released.
    }

    /// Sets the one credential of a subscription, replacing its previous token.
    public func setCredential(_ hash: TokenHash, _ consumer: Consumer) {
        credentials.withLockedValue { credentials in
            credentials.table.set(hash, consumer)
            credentials.changedDirectly()
        }
    }

    /// Where the direct changes stand: read before reading stored subscriptions, for
    /// `apply(stored:ifUnchangedSince:)`.
    public var generation: UInt64 { credentials.withLockedValue { $0.generation } }

    /// Brings subscriptions as stored (changed by another node) into the table under one lock: a
    /// subscription that has a credential gets its token set, replacing any previous one, and any
    /// other loses its token. A token whose subscription is applied again unchanged never goes
    /// missing in between, whatever a concurrent call looks up.
    ///
    /// Applies nothing and returns false when a change was made directly since `generation`
    /// (read before the subscriptions were): they may predate it, and a terminated token would
    /// come back until the next look. The caller reads them again.
    @discardableResult
    public func apply(stored subscriptions: [(subscription: Subscription, tokenHash: TokenHash)], ifUnchangedSince generation: UInt64) -> Bool {
        credentials.withLockedValue { credentials in
            guard credentials.generation == generation else { return false }
            guard !subscriptions.isEmpty else { return true }
            for (subscription, hash) in subscriptions {
                if subscription.status.hasCredential {
                    credentials.table.set(hash, Consumer(subscription))
                } else {
                    _ = credentials.table.remove(subscription: subscription.id)
                }
            }
            credentials.changed()
            return true
        }
    }

    /// Removes a subscription's credential (terminate); its token stops working.
    public func removeCredentials(subscription: String) {
        credentials.withLockedValue { credentials in
            credentials.changedDirectly(tableChanged: credentials.table.remove(subscription: subscription))
        }
    }

    /// Updates the plan of a subscription's credential (change-plan).
    public func updatePlan(subscription: String, plan: String) {
        credentials.withLockedValue { credentials in
            credentials.changedDirectly(tableChanged: credentials.table.updatePlan(subscription: subscription, plan: plan))
        }
    }

    /// Suspends a subscription's token for non-payment (402), or lets it through again.
    public func setSuspended(subscription: String, _ suspended: Bool) {
        credentials.withLockedValue { credentials in
            credentials.changedDirectly(tableChanged: credentials.table.setSuspended(subscription: subscription, suspended))
        }
    }

    public var credentialCount: Int { credentials.withLockedValue { $0.table.count } }
}
