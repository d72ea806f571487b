import Crypto
import Foundation
import Synchronization
import TollgateBilling
import TollgateCore
import TollgateGateway
import TollgateStore

/// Where the consumer portal is reached from outside (`--portal-url`), or, when not given, the
/// proxy port's own address once it listens. One-time sign-in links are made from it.
public final class PortalAddress: Sendable {
    private let base = Mutex<String?>(nil)

    public init() {}

    /// The portal's base URL without a trailing slash, e.g. `https://api.example.com`.
    public var baseURL: String? { base.withLock { $0 } }

    /// Sets the base URL (a trailing slash is dropped).
    public func set(_ url: String) {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        base.withLock { $0 = url }
    }
}

/// A one-time sign-in link to the consumer portal.
public struct PortalLink: Sendable {
    public var url: String
    public var expiresAt: Date
}

/// What a subscription has used and owes in its current period, as pages show it.
public struct SubscriptionAccount: Sendable {
    public var subscription: Subscription
    public var plan: Plan
    public var period: TimeSpan
    /// Each prepaid quota in its current window.
    public var quotas: [LimitState]
}

/// Usage over a range: the total, and one step per day.
public struct UsageReport: Sendable {
    public var total: UsageSummary
    public var days: [UsageSummary]
}

extension ControlPlane {
    /// How long a one-time portal link stays valid.
    public static let portalLinkLifetime: TimeInterval = 3600

    /// The SHA-256 digest (hex) under which a browser secret (session id, link token) is stored.
    public static func secretDigest(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// 32 random bytes as 64 hex characters: a session id or a link token.
    public static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let word = generator.next() as UInt64
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Makes a one-time sign-in link for a customer (`POST /v1/customers/{id}/portal-sessions`).
    public func createPortalLink(customer: String, now: Date = Date()) async throws -> PortalLink {
        guard let stored = try await store.customer(customer), !stored.archived else {
            throw StoreError.notFound("no customer \"\(customer)\"")
        }
        let token = Self.randomSecret()
        let expiresAt = now.addingTimeInterval(Self.portalLinkLifetime)
        try await store.createPortalLink(tokenHash: Self.secretDigest(token), customer: customer, expiresAt: expiresAt, now: now)
        let base = portalAddress.baseURL ?? ""
        return PortalLink(url: "\(base)/_portal/sign-in/\(token)", expiresAt: expiresAt)
    }

    /// A subscription with its plan, current period and quotas.
    public func account(_ subscription: Subscription, now: Date = Date()) async throws -> SubscriptionAccount {
        guard let plan = try await store.plan(subscription.plan)?.value else {
            throw StoreError.notFound("no plan \"\(subscription.plan)\"")
        }
        return SubscriptionAccount(
            subscription: subscription, plan: plan,
            period: SubscriptionView.period(subscription, unit: plan.period, now: now),
            quotas: try await quotaStates(subscription, plan: plan, now: now))
    }

    /// Each prepaid quota of the subscription's plan in its current window: on PostgreSQL what
    /// all nodes counted together; on SQLite this node's own counters, or, on a control-only
    /// node, the leases (an upper bound of what the gateway counted).
    public func quotaStates(_ subscription: Subscription, plan: Plan, now: Date = Date()) async throws -> [LimitState] {
        let period = SubscriptionView.period(subscription, unit: plan.period, now: now)
        let limits = AppliedLimit.all(plan: plan, at: now, billingPeriod: period)
        if store.sharesQuotas {
            let counted = try await store.quotaCounterUse(subscription: subscription.id)
            return limits.map { limit in
                let counter = QuotaCounter(subscription: subscription.id, plan: plan.id, limit: limit)
                return LimitState(limit: limit, used: min(limit.quota, counted[counter] ?? 0))
            }
        }
        if let quotas {
            return quotas.status(consumer: Consumer(subscription), plan: plan, at: now)
        }
        let leases = try await store.quotaLeases(since: now).filter { $0.subscription == subscription.id && $0.plan == plan.id }
        let book = QuotaBook(used: Dictionary(leases.map {
            (QuotaBook.Key(endpoint: $0.endpoint, window: $0.window, windowStart: $0.windowStart), $0.leased)
        }, uniquingKeysWith: { max($0, $1) }))
        return book.states(limits)
    }

    /// Billable calls per endpoint and meter values over `span`, in total and per UTC day.
    public func usageReport(_ subscription: Subscription, span: TimeSpan) async throws -> UsageReport {
        let rows = try await store.meterRows(subscription: subscription.id, from: span.start, to: span.end)
        let endpoints = try await store.product(subscription.product)?.value.endpoints.map(\.identifier) ?? []
        let meters = try await store.allMeters().filter { !$0.archived }.map(\.value)
        return UsageReport(
            total: UsageSummary.summarize(rows, span: span, endpoints: endpoints, meters: meters),
            days: UsageSummary.series(rows, span: span, granularity: .day, endpoints: endpoints, meters: meters))
    }

    /// The usage charges run up so far in the current period, rated at the plan's prices.
    public func runningCharges(_ account: SubscriptionAccount, now: Date = Date()) async throws -> [InvoiceLine] {
        let span = TimeSpan(start: account.period.start, end: max(account.period.start, min(now, account.period.end)))
        let priced = Set(account.plan.prices.compactMap { price -> String? in
            if case .usage(let usage) = price { return usage.meter }
            return nil
        })
        let meters = try await store.allMeters().map(\.value).filter { priced.contains($0.id) }
        let usage = span.end > span.start
            ? try await store.meterValues(subscription: account.subscription.id, span: span, meters: meters) : [:]
        return Invoicing.runningUsage(account.plan, usage: usage, span: span)
    }

    /// The catalog as stored now (archived objects left out), for showing and editing as YAML.
    public func currentCatalog() async throws -> Catalog {
        Catalog(
            products: try await store.allProducts().filter { !$0.archived }.map(\.value),
            meters: try await store.allMeters().filter { !$0.archived }.map(\.value),
            plans: try await store.allPlans().filter { !$0.archived }.map(\.value))
    }
}
