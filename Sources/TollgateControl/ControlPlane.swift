import Foundation
import Logging
import TollgateBilling
import TollgateCore
import TollgateGateway
import TollgateStore

/// A request the domain refuses, with the reason; the HTTP edge maps it to 422.
public struct InvalidRequest: Error, Sendable {
    public var problems: [DocumentProblem]

    public init(_ problems: [DocumentProblem]) {
        self.problems = problems
    }

    public init(path: String, _ message: String) {
        self.problems = [DocumentProblem(path: path, line: nil, message: message)]
    }
}

/// A subscription together with its token, which exists only in this answer.
public struct IssuedSubscription: Sendable {
    public var subscription: Subscription
    public var token: String
}

/// Every change that the gateway must see at once goes through here: the store is written
/// first, then the gateway's in-memory directory, so that a terminated or rotated token stops
/// working on the very next call.
public final class ControlPlane: Sendable {
    public let store: TollgateStore
    public let directory: GatewayDirectory
    /// The quota counters of this node's gateway (nil on a control-only node).
    public let quotas: QuotaLedger?
    /// Closes billing periods on demand (`POST /v1/billing/close`).
    public let periodClose: PeriodClose
    /// Where invoices are collected (`POST /v1/invoices/{id}/pay`): built in, or Stripe.
    public let billingProvider: any BillingProvider
    /// Where the consumer portal is reached: one-time sign-in links are made from it.
    public let portalAddress = PortalAddress()
    let logger: Logger

    public init(
        store: TollgateStore, directory: GatewayDirectory, quotas: QuotaLedger?, invoiceDrafts: Bool = false,
        billingProvider: (any BillingProvider)? = nil, logger: Logger
    ) {
        self.store = store
        self.directory = directory
        self.quotas = quotas
        self.periodClose = PeriodClose(store: store, drafts: invoiceDrafts)
        self.billingProvider = billingProvider ?? BuiltInBillingProvider(store: store)
        self.logger = logger
    }

    /// Shows the gateway subscriptions whose status a payment changed: suspended ones are
    /// answered 402 from the next call on, paid ones pass again at once.
    public func apply(_ changes: [DunningChange]) {
        for change in changes {
            directory.setSuspended(subscription: change.after.id, change.after.status == .suspended)
        }
    }

    /// Loads routes and credentials from the store into the gateway (at start).
    /// Credentials are read a page at a time, so that a million tokens never sit in memory
    /// twice; the pages' memory is then handed back to the system.
    public func loadGateway() async throws {
        try await reloadRoutes()
        // Page by page straight into a table sized for them all: no array of every row, no regrowth.
        // A subscription activated between the count and the pages only makes the table grow.
        var table = CredentialTable(minimumCapacity: try await store.activeCredentialCount())
        var cursor = ""
        while true {
            let page = try await store.activeCredentials(after: cursor, limit: 20_000)
            guard let last = page.last else { break }
            for (subscription, hash) in page { table.set(hash, Consumer(subscription)) }
            cursor = last.subscription.id
        }
        directory.replaceCredentials(table)
        table = CredentialTable()
        SystemMemory.returnFreedMemory()
    }

    /// Republishes the routing table and the plans after the catalog changed.
    public func reloadRoutes() async throws {
        directory.replaceRoutes(try await store.allProducts().map { ($0.value, $0.archived) })
        directory.replacePlans(try await store.allPlans().map(\.value))
    }

    /// What catalog objects may refer to right now: stored objects plus `extra`.
    public func references(adding extra: Catalog = Catalog()) async throws -> CatalogReferences {
        var products = try await store.allProducts().map(\.value)
        products.removeAll { product in extra.products.contains { $0.id == product.id } }
        var meters = try await store.allMeters().map(\.value)
        meters.removeAll { meter in extra.meters.contains { $0.id == meter.id } }
        return CatalogReferences(products: products + extra.products, meters: meters + extra.meters)
    }

    /// Applies a declarative catalog: creates or updates every object by id.
    public func apply(_ catalog: Catalog) async throws {
        let references = try await references(adding: catalog)
        var problems: [DocumentProblem] = []
        for (index, plan) in catalog.plans.enumerated() {
            problems += references.problems(in: plan).map {
                DocumentProblem(path: "plans[\(index)].\($0.path)", line: nil, message: $0.message)
            }
        }
        guard problems.isEmpty else { throw InvalidRequest(problems) }
        for product in catalog.products { try await store.saveProduct(product, mode: .upsert) }
        for meter in catalog.meters { try await store.saveMeter(meter, mode: .upsert) }
        for plan in catalog.plans { try await store.savePlan(plan, mode: .upsert) }
        try await reloadRoutes()
    }

    // MARK: Subscriptions

    /// Subscribes a customer to a plan and issues its token.
    public func subscribe(customer: String, plan planID: String, startedAt: Date?, id: String? = nil) async throws
        -> IssuedSubscription
    {
        var problems: [DocumentProblem] = []
        let storedCustomer = try await store.customer(customer)
        if storedCustomer == nil || storedCustomer?.archived == true {
            problems.append(DocumentProblem(path: "customer", line: nil, message: "unknown customer \"\(customer)\""))
        }
        let storedPlan = try await store.plan(planID)
        if storedPlan == nil || storedPlan?.archived == true {
            problems.append(DocumentProblem(path: "plan", line: nil, message: "unknown plan \"\(planID)\""))
        }
        let now = Date()
        if let startedAt, startedAt > now.addingTimeInterval(300) {
            problems.append(DocumentProblem(path: "started_at", line: nil, message: "must not lie in the future"))
        }
        guard problems.isEmpty, let plan = storedPlan?.value else { throw InvalidRequest(problems) }
        let token = APIToken.generate()
        let hash = APIToken.hash(token)
        let subscription = Subscription(
            id: id ?? RandomID.make("sub"), customer: customer, plan: plan.id, product: plan.product, status: .active,
            startedAt: startedAt ?? now, createdAt: now)
        let target = try await store.product(plan.product)?.value.webhook
        try await store.createSubscription(
            subscription, tokenHash: hash,
            webhook: SubscriptionView.webhook(.subscriptionCreated, subscription, unit: plan.period, target: target))
        directory.setCredential(hash, Consumer(subscription))
        return IssuedSubscription(subscription: subscription, token: token)
    }

    /// What webhook events of a subscription need: its plan's period and its product's webhook.
    private func webhookContext(_ id: String, plan planID: String? = nil) async throws -> (unit: BillingPeriodUnit, target: WebhookTarget?) {
        guard let existing = try await store.subscription(id) else { throw StoreError.notFound("no subscription \"\(id)\"") }
        let unit = try await store.plan(planID ?? existing.plan)?.value.period ?? .month
        return (unit, try await store.product(existing.product)?.value.webhook)
    }

    /// Terminates a subscription; its token dies at once. Terminating twice changes nothing.
    public func terminate(_ id: String) async throws -> Subscription {
        let (unit, target) = try await webhookContext(id)
        let subscription = try await store.updateSubscription(id) { subscription in
            guard subscription.status.hasCredential else { return }
            subscription.status = .terminated
            subscription.terminatedAt = Date()
        } webhook: { before, after in
            before.status == after.status ? nil : SubscriptionView.webhook(.subscriptionTerminated, after, unit: unit, target: target)
        }
        directory.removeCredentials(subscription: id)
        return subscription
    }

    /// Replaces a subscription's token; the old one stops working at once.
    public func rotateToken(_ id: String) async throws -> IssuedSubscription {
        let token = APIToken.generate()
        let hash = APIToken.hash(token)
        let (unit, target) = try await webhookContext(id)
        let subscription = try await store.updateSubscription(id, newTokenHash: hash) { subscription in
            guard subscription.status.hasCredential else {
                throw InvalidRequest(path: "", "subscription \"\(subscription.id)\" is terminated")
            }
        } webhook: { _, after in
            SubscriptionView.webhook(.subscriptionUpdated, after, unit: unit, target: target)
        }
        directory.setCredential(hash, Consumer(subscription))  // replaces the old token
        return IssuedSubscription(subscription: subscription, token: token)
    }

    /// Moves a subscription to another plan of the same product. The current plan again changes nothing.
    public func changePlan(_ id: String, to planID: String) async throws -> Subscription {
        guard let existing = try await store.subscription(id) else { throw StoreError.notFound("no subscription \"\(id)\"") }
        if existing.plan == planID { return existing }
        guard let plan = try await store.plan(planID), !plan.archived else {
            throw InvalidRequest(path: "plan", "unknown plan \"\(planID)\"")
        }
        guard plan.value.product == existing.product else {
            throw InvalidRequest(path: "plan", "plan \"\(planID)\" is for another product")
        }
        // One invoice has one currency, and periods stay anchored the same way: moving between
        // currencies or period lengths is a termination and a new subscription.
        if let current = try await store.plan(existing.plan)?.value {
            if current.currency != plan.value.currency {
                throw InvalidRequest(path: "plan", "plan \"\(planID)\" bills in \(plan.value.currency), the subscription in \(current.currency)")
            }
            if current.period != plan.value.period {
                throw InvalidRequest(
                    path: "plan", "plan \"\(planID)\" bills every \(plan.value.period.rawValue), the subscription every \(current.period.rawValue)")
            }
        }
        let (unit, target) = try await webhookContext(id, plan: planID)
        let subscription = try await store.updateSubscription(id) { subscription in
            guard subscription.status.hasCredential else {
                throw InvalidRequest(path: "", "subscription \"\(subscription.id)\" is terminated")
            }
            subscription.plan = planID
        } webhook: { _, after in
            SubscriptionView.webhook(.subscriptionUpdated, after, unit: unit, target: target)
        }
        directory.updatePlan(subscription: id, plan: planID)
        return subscription
    }
}
