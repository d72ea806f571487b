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

    public init(subscription: String, customer: String, product: String, plan: String, startedAt: Date) {
        self.subscription = subscription
        self.customer = customer
        self.product = product
        self.plan = plan
        self.startedAt = startedAt
    }

    public init(_ subscription: Subscription) {
        self.init(
            subscription: subscription.id, customer: subscription.customer, product: subscription.product,
            plan: subscription.plan, startedAt: subscription.startedAt)
    }
}

/// A product as the gateway routes it: endpoints ordered from the most specific.
public struct ProductRoute: Sendable {
    public let product: Product
    let endpoints: EndpointTable
    /// The `Host` header sent upstream, computed once.
    let upstreamHost: String

    public init(product: Product) {
        self.product = product
        self.upstreamHost = product.upstream.hostHeader
        self.endpoints = EndpointTable(product)
    }

    /// The endpoint a call matches, by method and the path below the product prefix.
    public func endpoint(method: String, path: Substring) -> Endpoint? {
        endpoints.endpoint(method: method, path: path)
    }
}

/// Everything the proxy decides from, in memory: routes by product and consumers by token hash.
/// Reads take an uncontended lock; the control plane replaces entries as it changes them, so a
/// terminated or rotated token stops working on the very next call.
public final class GatewayDirectory: Sendable {
    private let routes = NIOLockedValueBox<[String: ProductRoute]>([:])
    private let plans = NIOLockedValueBox<[String: Plan]>([:])
    /// Consumers by token hash, and each subscription's entry by its id (see `CredentialTable`).
    private let credentials = NIOLockedValueBox(CredentialTable())

    public init() {}

    public func route(product: Substring) -> ProductRoute? {
        let key = String(product)
        return routes.withLockedValue { $0[key] }
    }

    public func consumer(token: Substring) -> Consumer? {
        let hash = APIToken.hash(token)
        // The table finds the entry by 32 bits of the hash; `==` on TokenHash then compares all of
        // it in constant time. The subscription id's String is built after the lock is released.
        return credentials.withLockedValue { $0.match(hash) }?.consumer
    }

    public func plan(_ id: String) -> Plan? {
        plans.withLockedValue { $0[id] }
    }

    /// Replaces the plans the gateway enforces quotas from.
    public func replacePlans(_ all: [Plan]) {
        let table = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
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
        credentials.withLockedValue { swap(&$0, &table) }
        // The previous table is freed here, after the lock is released.
    }

    /// Sets the one credential of a subscription, replacing its previous token.
    public func setCredential(_ hash: TokenHash, _ consumer: Consumer) {
        credentials.withLockedValue { $0.set(hash, consumer) }
    }

    /// Removes a subscription's credential (terminate); its token stops working.
    public func removeCredentials(subscription: String) {
        credentials.withLockedValue { _ = $0.remove(subscription: subscription) }
    }

    /// Updates the plan of a subscription's credential (change-plan).
    public func updatePlan(subscription: String, plan: String) {
        credentials.withLockedValue { _ = $0.updatePlan(subscription: subscription, plan: plan) }
    }

    public var credentialCount: Int { credentials.withLockedValue { $0.count } }
}
