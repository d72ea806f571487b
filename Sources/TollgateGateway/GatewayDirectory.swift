import NIOConcurrencyHelpers
import TollgateCore

/// Who is calling: what the gateway knows about a valid token.
public struct Consumer: Sendable, Equatable {
    public var subscription: String
    public var customer: String
    public var product: String
    public var plan: String

    public init(subscription: String, customer: String, product: String, plan: String) {
        self.subscription = subscription
        self.customer = customer
        self.product = product
        self.plan = plan
    }
}

/// A product as the gateway routes it: endpoints ordered from the most specific.
public struct ProductRoute: Sendable {
    public let product: Product
    let endpoints: [Endpoint]

    public init(product: Product, archived: Bool) {
        self.product = product
        self.endpoints = product.endpoints.filter { !$0.archived }.sorted { $0.path.specificity > $1.path.specificity }
    }

    /// The endpoint a call matches, by method and the path below the product prefix.
    public func endpoint(method: String, path: Substring) -> Endpoint? {
        endpoints.first { $0.method == method && $0.path.matches(path) }
    }
}

/// Everything the proxy decides from, in memory: routes by product and consumers by token hash.
/// Reads take an uncontended lock; the control plane replaces entries as it changes them, so a
/// terminated or rotated token stops working on the very next call.
public final class GatewayDirectory: Sendable {
    private let routes = NIOLockedValueBox<[String: ProductRoute]>([:])
    private let consumers = NIOLockedValueBox<[TokenHash: Consumer]>([:])

    public init() {}

    public func route(product: Substring) -> ProductRoute? {
        let key = String(product)
        return routes.withLockedValue { $0[key] }
    }

    public func consumer(token: Substring) -> Consumer? {
        let hash = APIToken.hash(token)
        return consumers.withLockedValue { table in
            // The dictionary finds the entry by its hash; `==` on TokenHash then compares all of it
            // in constant time.
            table[hash]
        }
    }

    /// Replaces the whole routing table (archived products are not routed).
    public func replaceRoutes(_ products: [(product: Product, archived: Bool)]) {
        var table: [String: ProductRoute] = [:]
        for entry in products where !entry.archived {
            table[entry.product.id] = ProductRoute(product: entry.product, archived: entry.archived)
        }
        routes.withLockedValue { $0 = table }
    }

    /// Replaces every credential at once (at start).
    public func replaceCredentials(_ entries: [(TokenHash, Consumer)]) {
        let table = Dictionary(entries, uniquingKeysWith: { $1 })
        consumers.withLockedValue { $0 = table }
    }

    /// Sets or replaces one credential; nil removes it.
    public func setCredential(_ hash: TokenHash, _ consumer: Consumer?) {
        consumers.withLockedValue { $0[hash] = consumer }
    }

    /// Removes every credential of a subscription (terminate, rotate), whatever its token.
    public func removeCredentials(subscription: String) {
        consumers.withLockedValue { table in
            for (hash, consumer) in table where consumer.subscription == subscription {
                table[hash] = nil
            }
        }
    }

    /// Updates the plan of a subscription's credentials (change-plan).
    public func updatePlan(subscription: String, plan: String) {
        consumers.withLockedValue { table in
            for (hash, consumer) in table where consumer.subscription == subscription {
                table[hash]?.plan = plan
            }
        }
    }

    public var credentialCount: Int { consumers.withLockedValue { $0.count } }
}
