import Foundation

/// One upstream API sold through Tollgate. Its `id` is a slug that is also its route prefix.
public struct Product: Sendable, Equatable {
    public var id: String
    public var name: String
    /// Where calls go; never shown to consumers.
    public var upstream: UpstreamURL
    /// The vendor's secret header added to every forwarded call.
    public var upstreamHeader: HeaderField?
    /// A PEM file of the certificate authorities an `https://` upstream is verified against,
    /// instead of the system's trust store (a private CA).
    public var upstreamCA: String?
    /// Where subscription lifecycle events are sent.
    public var webhook: WebhookTarget?
    public var unlistedEndpoints: UnlistedEndpointPolicy
    /// Whether endpoint paths match only in their exact case (default false: `/INVOICE` is the
    /// `/invoice` endpoint, as most upstream frameworks route it).
    public var caseSensitivePaths: Bool
    public var endpoints: [Endpoint]

    public init(
        id: String, name: String, upstream: UpstreamURL, upstreamHeader: HeaderField? = nil, upstreamCA: String? = nil,
        webhook: WebhookTarget? = nil, unlistedEndpoints: UnlistedEndpointPolicy = .allow, caseSensitivePaths: Bool = false,
        endpoints: [Endpoint] = []
    ) {
        self.caseSensitivePaths = caseSensitivePaths
        self.id = id
        self.name = name
        self.upstream = upstream
        self.upstreamHeader = upstreamHeader
        self.upstreamCA = upstreamCA
        self.webhook = webhook
        self.unlistedEndpoints = unlistedEndpoints
        self.endpoints = endpoints
    }
}

/// What the gateway does with a call that matches none of a product's endpoints.
public enum UnlistedEndpointPolicy: String, Sendable, CaseIterable {
    /// Proxied, recorded, not billed.
    case allow
    /// Answered 404 like an unknown route.
    case deny
}

/// A header name and its (secret) value.
public struct HeaderField: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A vendor's webhook receiver and the secret that signs deliveries.
public struct WebhookTarget: Sendable, Equatable {
    public var url: String
    public var secret: String

    public init(url: String, secret: String) {
        self.url = url
        self.secret = secret
    }
}

/// An upstream origin, over HTTP or HTTPS, with an optional base path.
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    /// Whether calls go over TLS (`https://`).
    public var isTLS: Bool
    public var host: String
    public var port: Int
    /// A prefix put before every forwarded path, without a trailing slash ("" for none).
    public var basePath: String

    /// Parses `http://HOST[:PORT][/BASE]` or `https://HOST[:PORT][/BASE]`.
    public init?(_ text: String) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty, components.query == nil, components.fragment == nil,
              components.user == nil else {
            return nil
        }
        self.isTLS = scheme == "https"
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? (isTLS ? 443 : 80)
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        self.basePath = path
    }

    public var description: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "\(isTLS ? "https" : "http")://\(hostText):\(port)\(basePath)"
    }

    /// The value of a `Host` header for this upstream.
    public var hostHeader: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? hostText : "\(hostText):\(port)"
    }

    /// Whether the host is an IP address (such a host is sent no SNI name).
    public var hostIsAddress: Bool {
        host.contains(":") || host.utf8.allSatisfy { $0 == UInt8(ascii: ".") || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }
    }
}

/// A billable resource of a product.
public struct Endpoint: Sendable, Equatable {
    /// Unique in its product; never changes.
    public var identifier: String
    public var name: String
    public var description: String
    /// An HTTP method in capitals.
    public var method: String
    public var path: PathTemplate
    /// An archived endpoint is no longer matched (nor billed) but stays known for its history.
    public var archived: Bool

    public init(
        identifier: String, name: String, description: String = "", method: String, path: PathTemplate, archived: Bool = false
    ) {
        self.identifier = identifier
        self.name = name
        self.description = description
        self.method = method
        self.path = path
        self.archived = archived
    }
}

/// What usage is counted: a source of events, filters and an aggregation.
public struct Meter: Sendable, Equatable {
    public var id: String
    public var name: String
    public var source: MeterSource
    public var filter: MeterFilter
    public var aggregation: Aggregation
    /// The dotted path of the aggregated value (every aggregation but `count`).
    public var property: String?

    public init(
        id: String, name: String, source: MeterSource, filter: MeterFilter = MeterFilter(),
        aggregation: Aggregation, property: String? = nil
    ) {
        self.id = id
        self.name = name
        self.source = source
        self.filter = filter
        self.aggregation = aggregation
        self.property = property
    }
}

/// Where a meter's events come from.
public enum MeterSource: Sendable, Equatable, CustomStringConvertible {
    /// Gateway calls and API events from the collector.
    case apiCalls
    /// Actions and CloudEvents of one name or type.
    case event(String)

    public init?(_ text: String) {
        if text == "api_calls" {
            self = .apiCalls
        } else if text.hasPrefix("event:"), text.count > 6 {
            self = .event(String(text.dropFirst(6)))
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .apiCalls: "api_calls"
        case .event(let name): "event:\(name)"
        }
    }
}

/// Conditions an event must meet to count towards a meter.
public struct MeterFilter: Sendable, Equatable {
    public var endpoint: String?
    public var method: String?
    public var status: StatusFilter?
    /// Property paths and the exact (textual) values they must have.
    public var properties: [String: String]

    public init(endpoint: String? = nil, method: String? = nil, status: StatusFilter? = nil, properties: [String: String] = [:]) {
        self.endpoint = endpoint
        self.method = method
        self.status = status
        self.properties = properties
    }

    /// Whether a call with these attributes passes the endpoint, method and status conditions.
    public func matches(endpoint: String?, method: String, status: Int) -> Bool {
        if let wanted = self.endpoint, wanted != endpoint { return false }
        if let wanted = self.method, wanted != method { return false }
        if let wanted = self.status, !wanted.matches(status) { return false }
        return true
    }

    public var isEmpty: Bool { endpoint == nil && method == nil && status == nil && properties.isEmpty }
}

/// How a meter combines its events over a period.
public enum Aggregation: String, Sendable, CaseIterable {
    case count
    case uniqueCount = "unique_count"
    case sum
    case max
    case latest
}

/// A response-status condition: `2xx`, `404`, `<500`, `<=499`, `>=400`, `>399`.
public struct StatusFilter: Sendable, Equatable, CustomStringConvertible {
    public let description: String
    private let range: ClosedRange<Int>

    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        func code(_ digits: Substring) -> Int? {
            guard digits.count == 3, let value = Int(digits), (100...599).contains(value) else { return nil }
            return value
        }
        if trimmed.count == 3, trimmed.hasSuffix("xx"), let first = trimmed.first?.wholeNumberValue, (1...5).contains(first) {
            range = (first * 100)...(first * 100 + 99)
        } else if trimmed.hasPrefix("<="), let value = code(trimmed.dropFirst(2)) {
            range = 0...value
        } else if trimmed.hasPrefix(">="), let value = code(trimmed.dropFirst(2)) {
            range = value...999
        } else if trimmed.hasPrefix("<"), let value = code(trimmed.dropFirst()) {
            range = 0...(value - 1)
        } else if trimmed.hasPrefix(">"), let value = code(trimmed.dropFirst()) {
            range = (value + 1)...999
        } else if let value = code(trimmed[...]) {
            range = value...value
        } else {
            return nil
        }
        description = trimmed
    }

    public func matches(_ status: Int) -> Bool { range.contains(status) }

    public static func == (lhs: StatusFilter, rhs: StatusFilter) -> Bool { lhs.range == rhs.range }
}

/// What a customer buys for one product: currency, billing period, prices.
public struct Plan: Sendable, Equatable {
    public var id: String
    public var product: String
    public var name: String
    /// An ISO 4217 code.
    public var currency: String
    public var period: BillingPeriodUnit
    public var prices: [Price]
    /// Offered for self-serve signup in the consumer portal (`public: true`; default false).
    public var isPublic: Bool

    public init(
        id: String, product: String, name: String, currency: String, period: BillingPeriodUnit, prices: [Price],
        isPublic: Bool = false
    ) {
        self.id = id
        self.product = product
        self.name = name
        self.currency = currency
        self.period = period
        self.prices = prices
        self.isPublic = isPublic
    }

    /// The prepaid quotas of this plan.
    public var prepaidQuotas: [PrepaidQuota] {
        prices.compactMap { if case .prepaid(let quota) = $0 { quota } else { nil } }
    }
}

/// The length of a billing period, anchored at the subscription's start.
public enum BillingPeriodUnit: String, Sendable, CaseIterable {
    case day, week, month, year
}

/// One charge of a plan.
public enum Price: Sendable, Equatable {
    /// Recurring, charged in advance each period.
    case flat(amount: Amount)
    /// Charged once, at the start.
    case setup(amount: Amount)
    /// A quota the gateway enforces, optionally with its own fee.
    case prepaid(PrepaidQuota)
    /// A meter's value rated in arrears.
    case usage(UsagePrice)

    public var kind: String {
        switch self {
        case .flat: "flat"
        case .setup: "setup"
        case .prepaid: "prepaid"
        case .usage: "usage"
        }
    }
}

/// A quota of calls per window, on one endpoint or (without one) on every call of the product.
public struct PrepaidQuota: Sendable, Equatable {
    public var endpoint: String?
    public var quota: Int
    public var window: QuotaWindow
    public var amount: Amount?

    public init(endpoint: String? = nil, quota: Int, window: QuotaWindow, amount: Amount? = nil) {
        self.endpoint = endpoint
        self.quota = quota
        self.window = window
        self.amount = amount
    }
}

/// The window a prepaid quota counts in: UTC calendar units or the billing period.
public enum QuotaWindow: String, Sendable, CaseIterable {
    case second, minute, hour, day, month, year
    case billingPeriod = "billing_period"
}

/// A usage charge: a meter and the model that prices its value.
public struct UsagePrice: Sendable, Equatable {
    public var meter: String
    public var model: PricingModel

    public init(meter: String, model: PricingModel) {
        self.meter = meter
        self.model = model
    }
}

/// How a quantity is priced.
public enum PricingModel: Sendable, Equatable {
    case perUnit(unit: Amount)
    case graduated(tiers: [Tier])
    case volume(tiers: [Tier])
    case package(size: Int, amount: Amount, freeUnits: Int)

    public var name: String {
        switch self {
        case .perUnit: "per_unit"
        case .graduated: "graduated"
        case .volume: "volume"
        case .package: "package"
        }
    }
}

/// A pricing tier: units up to `upTo` (inclusive; nil for the open last tier) at `unit` each,
/// plus `flat` once when the tier is entered.
public struct Tier: Sendable, Equatable {
    public var upTo: Amount?
    public var unit: Amount
    public var flat: Amount?

    public init(upTo: Amount?, unit: Amount, flat: Amount? = nil) {
        self.upTo = upTo
        self.unit = unit
        self.flat = flat
    }
}

/// Who pays (Moesif's company); sent upstream as `X-Consumer-ID`.
public struct Customer: Sendable, Equatable {
    public var id: String
    public var name: String
    public var email: String?
    public var createdAt: Date
    /// The customer's id in Stripe (`cus_...`): linked by the vendor, or created before the
    /// customer's first invoice is pushed (DESIGN §3.8).
    public var stripeCustomer: String?

    public init(id: String, name: String, email: String? = nil, createdAt: Date, stripeCustomer: String? = nil) {
        self.id = id
        self.name = name
        self.email = email
        self.createdAt = createdAt
        self.stripeCustomer = stripeCustomer
    }
}

/// The state of a subscription (DESIGN §3.4): `active`; `past_due` when a payment failed (the
/// token still works); `suspended` when it stayed unpaid past the dunning grace (the gateway
/// answers 402); `terminated` (the token is dead).
public enum SubscriptionStatus: String, Sendable, CaseIterable {
    case active
    case pastDue = "past_due"
    case suspended
    case terminated

    /// Whether the subscription still has a token the gateway knows (answered or refused with 402).
    public var hasCredential: Bool { self != .terminated }
}

/// A customer on a plan; its id goes upstream as `X-Consumer-Username`.
public struct Subscription: Sendable, Equatable {
    public var id: String
    public var customer: String
    public var plan: String
    public var product: String
    public var status: SubscriptionStatus
    public var startedAt: Date
    public var terminatedAt: Date?
    public var createdAt: Date

    public init(
        id: String, customer: String, plan: String, product: String, status: SubscriptionStatus,
        startedAt: Date, terminatedAt: Date? = nil, createdAt: Date
    ) {
        self.id = id
        self.customer = customer
        self.plan = plan
        self.product = product
        self.status = status
        self.startedAt = startedAt
        self.terminatedAt = terminatedAt
        self.createdAt = createdAt
    }
}
