import Foundation
import Logging
import SQLKit
import Synchronization
import TollgateCore

/// Times are stored as whole microseconds since 1970 (UTC).
enum Timestamp {
    static var now: Int { micros(Date()) }
    static func micros(_ date: Date) -> Int { Int(Micros.of(date)) }
    static func date(_ micros: Int) -> Date { Micros.date(Int64(micros)) }
}

/// A storage failure that the HTTP edge can map to an answer. Its text never carries SQL or secrets.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, broadly.
    public enum Code: Sendable, Equatable {
        case notFound
        case conflict
    }

    public var code: Code
    public var message: String

    public static func notFound(_ message: String) -> StoreError { StoreError(code: .notFound, message: message) }
    public static func conflict(_ message: String) -> StoreError { StoreError(code: .conflict, message: message) }

    public var description: String { message }
}

/// A stored object with its bookkeeping.
public struct Stored<Value: Sendable>: Sendable {
    public var value: Value
    public var archived: Bool
    public var createdAt: Date
    public var updatedAt: Date
}

/// One page of a list, and the cursor of the next page (nil on the last).
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextCursor: String?

    /// The first `limit` of `fetched` (read with one extra to know whether more follow), with the
    /// cursor of the last one kept when more follow.
    init(_ fetched: [Item], limit: Int, cursor: (Item) -> String) {
        guard fetched.count > limit else {
            self.init(items: fetched, nextCursor: nil)
            return
        }
        let kept = Array(fetched.prefix(limit))
        self.init(items: kept, nextCursor: kept.last.map(cursor))
    }

    init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// Tollgate's one storage API, over SQLite or PostgreSQL.
public final class TollgateStore: Sendable {
    let backend: any SQLBackend
    let logger: Logger
    /// Meters and subscription periods that ingestion needs for every batch.
    let metering = Mutex(MeteringCache())
    /// Where usage events are written, several concurrent batches per transaction.
    let eventWriter: EventWriter

    init(backend: any SQLBackend, logger: Logger) {
        self.backend = backend
        self.logger = logger
        self.eventWriter = EventWriter(backend: backend)
    }

    public var kind: DatabaseKind { backend.kind }

    /// Brings the schema up to date.
    public func migrate() async throws {
        try await Migrations.run(on: backend)
    }

    // MARK: Catalog documents

    enum CatalogTable: String {
        case products, meters, plans

        var noun: String {
            switch self {
            case .products: "product"
            case .meters: "meter"
            case .plans: "plan"
            }
        }
    }

    /// How a save treats an existing object.
    public enum SaveMode: Sendable {
        /// Fails with a conflict if the id exists.
        case create
        /// Fails with not-found if the id does not exist.
        case update
        /// Creates or replaces (the declarative catalog at start).
        case upsert
    }

    /// Writes a catalog document; true when the stored text changed.
    @discardableResult
    private func save(_ table: CatalogTable, id: String, product: String?, body: DocumentNode, mode: SaveMode) async throws -> Bool {
        let text = body.jsonText()
        let now = Timestamp.now
        return try await backend.transaction { database in
            let existing = try await database.raw(
                "SELECT id, body FROM \(ident: table.rawValue) WHERE id = \(bind: id)"
            ).first()
            if mode != .create, let existing, try existing.decode(column: "body", as: String.self) == text { return false }
            switch (mode, existing) {
            case (.create, .some):
                throw StoreError.conflict("\(table.noun) \"\(id)\" already exists")
            case (.update, .none):
                throw StoreError.notFound("no \(table.noun) \"\(id)\"")
            case (_, .some):
                try await database.raw(
                    "UPDATE \(ident: table.rawValue) SET body = \(bind: text), updated_at = \(bind: now) WHERE id = \(bind: id)"
                ).run()
            case (_, .none):
                if let product {
                    try await database.raw("""
                        INSERT INTO \(ident: table.rawValue) (id, product_id, body, archived, created_at, updated_at)
                        VALUES (\(bind: id), \(bind: product), \(bind: text), 0, \(bind: now), \(bind: now))
                        """).run()
                } else {
                    try await database.raw("""
                        INSERT INTO \(ident: table.rawValue) (id, body, archived, created_at, updated_at)
                        VALUES (\(bind: id), \(bind: text), 0, \(bind: now), \(bind: now))
                        """).run()
                }
            }
            return true
        }
    }

    private func documents(_ table: CatalogTable, after cursor: String?, limit: Int?, includeArchived: Bool = true) async throws
        -> [Stored<DocumentNode>]
    {
        let rows = try await backend.read { database in
            var query: SQLQueryString = "SELECT id, body, archived, created_at, updated_at FROM \(ident: table.rawValue) WHERE id > \(bind: cursor ?? "")"
            if !includeArchived { query += " AND archived = 0" }
            query += " ORDER BY id"
            if let limit { query += " LIMIT \(bind: limit)" }
            return try await database.raw(query).all()
        }
        return try rows.map { row in
            let body = try row.decode(column: "body", as: String.self)
            return Stored(
                value: try DocumentNode.parseJSON(Array(body.utf8)),
                archived: try row.decode(column: "archived", as: Int.self) != 0,
                createdAt: Timestamp.date(try row.decode(column: "created_at", as: Int.self)),
                updatedAt: Timestamp.date(try row.decode(column: "updated_at", as: Int.self)))
        }
    }

    private func document(_ table: CatalogTable, id: String) async throws -> Stored<DocumentNode>? {
        let row = try await backend.read { database in
            try await database.raw(
                "SELECT id, body, archived, created_at, updated_at FROM \(ident: table.rawValue) WHERE id = \(bind: id)"
            ).first()
        }
        guard let row else { return nil }
        let body = try row.decode(column: "body", as: String.self)
        return Stored(
            value: try DocumentNode.parseJSON(Array(body.utf8)),
            archived: try row.decode(column: "archived", as: Int.self) != 0,
            createdAt: Timestamp.date(try row.decode(column: "created_at", as: Int.self)),
            updatedAt: Timestamp.date(try row.decode(column: "updated_at", as: Int.self)))
    }

    private func setArchived(_ table: CatalogTable, id: String, _ archived: Bool) async throws {
        let found = try await backend.withSQL { database in
            try await database.raw(
                "UPDATE \(ident: table.rawValue) SET archived = \(bind: archived ? 1 : 0), updated_at = \(bind: Timestamp.now) WHERE id = \(bind: id) RETURNING id"
            ).first()
        }
        if found == nil { throw StoreError.notFound("no \(table.noun) \"\(id)\"") }
    }

    /// Decodes a stored document with the same reader that validates input.
    private func decode<T>(_ stored: Stored<DocumentNode>, _ read: (DocumentNode, String, DocumentReader) -> T?) throws -> Stored<T> {
        let reader = DocumentReader()
        guard let value = read(stored.value, "", reader) else { throw InvalidDocument(reader.problems) }
        return Stored(value: value, archived: stored.archived, createdAt: stored.createdAt, updatedAt: stored.updatedAt)
    }

    private func page<T>(_ items: [Stored<T>], limit: Int, id: (T) -> String) -> Page<Stored<T>> {
        Page(items, limit: limit) { id($0.value) }
    }

    public func saveProduct(_ product: Product, mode: SaveMode) async throws {
        try await save(.products, id: product.id, product: nil, body: product.document(secrets: true), mode: mode)
        invalidateMeteringCache()
    }

    public func product(_ id: String) async throws -> Stored<Product>? {
        try await document(.products, id: id).map { try decode($0, Product.read) }
    }

    public func products(after cursor: String? = nil, limit: Int) async throws -> Page<Stored<Product>> {
        let items = try await documents(.products, after: cursor, limit: limit + 1).map { try decode($0, Product.read) }
        return page(items, limit: limit, id: \.id)
    }

    public func allProducts() async throws -> [Stored<Product>] {
        try await documents(.products, after: nil, limit: nil).map { try decode($0, Product.read) }
    }

    public func setProductArchived(_ id: String, _ archived: Bool) async throws {
        try await setArchived(.products, id: id, archived)
    }

    public func saveMeter(_ meter: Meter, mode: SaveMode) async throws {
        let changed = try await save(.meters, id: meter.id, product: nil, body: meter.document(), mode: mode)
        invalidateMeteringCache()
        if changed { try await rebuildAggregates(of: meter) }
    }

    public func meter(_ id: String) async throws -> Stored<Meter>? {
        try await document(.meters, id: id).map { try decode($0, Meter.read) }
    }

    public func meters(after cursor: String? = nil, limit: Int) async throws -> Page<Stored<Meter>> {
        let items = try await documents(.meters, after: cursor, limit: limit + 1).map { try decode($0, Meter.read) }
        return page(items, limit: limit, id: \.id)
    }

    public func allMeters() async throws -> [Stored<Meter>] {
        try await documents(.meters, after: nil, limit: nil).map { try decode($0, Meter.read) }
    }

    public func setMeterArchived(_ id: String, _ archived: Bool) async throws {
        try await setArchived(.meters, id: id, archived)
        invalidateMeteringCache()
        if !archived, let meter = try await meter(id) { try await rebuildAggregates(of: meter.value) }
    }

    public func savePlan(_ plan: Plan, mode: SaveMode) async throws {
        if try await save(.plans, id: plan.id, product: plan.product, body: plan.document(), mode: mode) {
            invalidateMeteringCache()
        }
    }

    public func plan(_ id: String) async throws -> Stored<Plan>? {
        try await document(.plans, id: id).map { try decode($0, Plan.read) }
    }

    public func plans(after cursor: String? = nil, limit: Int) async throws -> Page<Stored<Plan>> {
        let items = try await documents(.plans, after: cursor, limit: limit + 1).map { try decode($0, Plan.read) }
        return page(items, limit: limit, id: \.id)
    }

    public func allPlans() async throws -> [Stored<Plan>] {
        try await documents(.plans, after: nil, limit: nil).map { try decode($0, Plan.read) }
    }

    public func setPlanArchived(_ id: String, _ archived: Bool) async throws {
        try await setArchived(.plans, id: id, archived)
    }

    // MARK: Customers

    public func saveCustomer(_ customer: Customer, mode: SaveMode) async throws {
        let now = Timestamp.now
        try await backend.transaction { database in
            let existing = try await database.raw("SELECT id FROM customers WHERE id = \(bind: customer.id)").first()
            switch (mode, existing) {
            case (.create, .some): throw StoreError.conflict("customer \"\(customer.id)\" already exists")
            case (.update, .none): throw StoreError.notFound("no customer \"\(customer.id)\"")
            case (_, .some):
                // A customer saved without a Stripe id (the collector's upserts) keeps the one it has.
                try await database.raw("""
                    UPDATE customers SET name = \(bind: customer.name), email = \(bind: customer.email),
                    stripe_customer = COALESCE(\(bind: customer.stripeCustomer), stripe_customer),
                    updated_at = \(bind: now) WHERE id = \(bind: customer.id)
                    """).run()
            case (_, .none):
                try await database.raw("""
                    INSERT INTO customers (id, name, email, stripe_customer, archived, created_at, updated_at)
                    VALUES (\(bind: customer.id), \(bind: customer.name), \(bind: customer.email),
                    \(bind: customer.stripeCustomer), 0,
                    \(bind: Timestamp.micros(customer.createdAt)), \(bind: now))
                    """).run()
            }
        }
    }

    private func customer(from row: any SQLRow) throws -> Stored<Customer> {
        Stored(
            value: Customer(
                id: try row.decode(column: "id", as: String.self),
                name: try row.decode(column: "name", as: String.self),
                email: try row.decode(column: "email", as: String?.self),
                createdAt: Timestamp.date(try row.decode(column: "created_at", as: Int.self)),
                stripeCustomer: try row.decode(column: "stripe_customer", as: String?.self)),
            archived: try row.decode(column: "archived", as: Int.self) != 0,
            createdAt: Timestamp.date(try row.decode(column: "created_at", as: Int.self)),
            updatedAt: Timestamp.date(try row.decode(column: "updated_at", as: Int.self)))
    }

    public func customer(_ id: String) async throws -> Stored<Customer>? {
        let row = try await backend.read { database in
            try await database.raw("SELECT * FROM customers WHERE id = \(bind: id)").first()
        }
        return try row.map(customer(from:))
    }

    public func customers(after cursor: String? = nil, limit: Int) async throws -> Page<Stored<Customer>> {
        let rows = try await backend.read { database in
            try await database.raw(
                "SELECT * FROM customers WHERE id > \(bind: cursor ?? "") ORDER BY id LIMIT \(bind: limit + 1)"
            ).all()
        }
        return page(try rows.map(customer(from:)), limit: limit, id: \.id)
    }

    public func setCustomerArchived(_ id: String, _ archived: Bool) async throws {
        let found = try await backend.withSQL { database in
            try await database.raw(
                "UPDATE customers SET archived = \(bind: archived ? 1 : 0), updated_at = \(bind: Timestamp.now) WHERE id = \(bind: id) RETURNING id"
            ).first()
        }
        if found == nil { throw StoreError.notFound("no customer \"\(id)\"") }
    }

    // MARK: Subscriptions

    func subscription(from row: any SQLRow) throws -> Subscription {
        Subscription(
            id: try row.decode(column: "id", as: String.self),
            customer: try row.decode(column: "customer_id", as: String.self),
            plan: try row.decode(column: "plan_id", as: String.self),
            product: try row.decode(column: "product_id", as: String.self),
            status: SubscriptionStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .terminated,
            startedAt: Timestamp.date(try row.decode(column: "started_at", as: Int.self)),
            terminatedAt: try row.decode(column: "terminated_at", as: Int?.self).map(Timestamp.date),
            createdAt: Timestamp.date(try row.decode(column: "created_at", as: Int.self)))
    }

    /// Stores a new subscription and, in the same transaction, its webhook event.
    public func createSubscription(_ subscription: Subscription, tokenHash: TokenHash, webhook: WebhookDelivery? = nil) async throws {
        let now = Timestamp.now
        try await backend.transaction { database in
            let existing = try await database.raw("SELECT id FROM subscriptions WHERE id = \(bind: subscription.id)").first()
            if existing != nil { throw StoreError.conflict("subscription \"\(subscription.id)\" already exists") }
            try await database.raw("""
                INSERT INTO subscriptions (id, customer_id, plan_id, product_id, status, token_hash, started_at,
                terminated_at, created_at, updated_at)
                VALUES (\(bind: subscription.id), \(bind: subscription.customer), \(bind: subscription.plan),
                \(bind: subscription.product), \(bind: subscription.status.rawValue), \(bind: tokenHash.description),
                \(bind: Timestamp.micros(subscription.startedAt)), \(bind: subscription.terminatedAt.map(Timestamp.micros)),
                \(bind: Timestamp.micros(subscription.createdAt)), \(bind: now))
                """).run()
            try await self.recordPlan(subscription.plan, of: subscription.id, from: Timestamp.micros(subscription.startedAt), on: database)
            if let webhook { try await self.enqueue(webhook, on: database) }
        }
    }

    public func subscription(_ id: String) async throws -> Subscription? {
        let row = try await backend.read { database in
            try await database.raw("SELECT * FROM subscriptions WHERE id = \(bind: id)").first()
        }
        return try row.map(subscription(from:))
    }

    public func subscriptions(customer: String? = nil, after cursor: String? = nil, limit: Int) async throws -> Page<Subscription> {
        let rows = try await backend.read { database in
            var query: SQLQueryString = "SELECT * FROM subscriptions WHERE id > \(bind: cursor ?? "")"
            if let customer { query += " AND customer_id = \(bind: customer)" }
            query += " ORDER BY id LIMIT \(bind: limit + 1)"
            return try await database.raw(query).all()
        }
        return Page(try rows.map(subscription(from:)), limit: limit, cursor: \.id)
    }

    /// Applies `change` to the subscription in one transaction and returns the result.
    /// `change` may throw to refuse (nothing is written then). `webhook` tells, from the
    /// subscription before and after, which event to add to the outbox in the same transaction.
    public func updateSubscription(
        _ id: String, newTokenHash: TokenHash? = nil, _ change: @Sendable (inout Subscription) throws -> Void,
        webhook: @Sendable (_ before: Subscription, _ after: Subscription) -> WebhookDelivery? = { _, _ in nil }
    ) async throws -> Subscription {
        defer { metering.withLock { _ = $0.clocks.removeValue(forKey: id) } }
        return try await backend.transaction { database in
            guard let row = try await database.raw("SELECT * FROM subscriptions WHERE id = \(bind: id)").first() else {
                throw StoreError.notFound("no subscription \"\(id)\"")
            }
            let before = try self.subscription(from: row)
            var subscription = before
            try change(&subscription)
            var query: SQLQueryString = """
                UPDATE subscriptions SET plan_id = \(bind: subscription.plan), status = \(bind: subscription.status.rawValue),
                terminated_at = \(bind: subscription.terminatedAt.map(Timestamp.micros)), updated_at = \(bind: Timestamp.now)
                """
            if let newTokenHash { query += ", token_hash = \(bind: newTokenHash.description)" }
            query += " WHERE id = \(bind: id)"
            try await database.raw(query).run()
            if subscription.plan != before.plan { try await self.recordPlan(subscription.plan, of: id, from: Timestamp.now, on: database) }
            if let delivery = webhook(before, subscription) { try await self.enqueue(delivery, on: database) }
            return subscription
        }
    }

    /// How many subscriptions have a token (active, past due or suspended): the gateway sizes its credential table before loading it.
    public func activeCredentialCount() async throws -> Int {
        try await backend.read { database in
            try await database.raw("SELECT COUNT(*) AS count FROM subscriptions WHERE status <> 'terminated'")
                .first()?.decode(column: "count", as: Int.self) ?? 0
        }
    }

    /// Every subscription with a token (not terminated) with the hash of its token, for the
    /// gateway's in-memory table (a suspended one is answered 402 there).
    /// Pages through `limit` at a time, in id order, after `cursor`.
    public func activeCredentials(after cursor: String = "", limit: Int = Int.max) async throws
        -> [(subscription: Subscription, tokenHash: TokenHash)]
    {
        let rows = try await backend.read { database in
            try await database.raw("""
                SELECT * FROM subscriptions WHERE status <> 'terminated' AND id > \(bind: cursor) ORDER BY id
                LIMIT \(bind: min(limit, Int(Int32.max)))
                """).all()
        }
        return try rows.compactMap { row in
            guard let hash = TokenHash(hex: try row.decode(column: "token_hash", as: String.self)) else { return nil }
            return (try subscription(from: row), hash)
        }
    }

    /// Subscriptions changed at or after `since`, with their token hashes, for gateways that
    /// follow changes made by other nodes.
    public func subscriptionsChanged(since: Date) async throws -> [(subscription: Subscription, tokenHash: TokenHash)] {
        let rows = try await backend.read { database in
            try await database.raw(
                "SELECT * FROM subscriptions WHERE updated_at >= \(bind: Timestamp.micros(since))"
            ).all()
        }
        return try rows.compactMap { row in
            guard let hash = TokenHash(hex: try row.decode(column: "token_hash", as: String.self)) else { return nil }
            return (try subscription(from: row), hash)
        }
    }

    /// The channel PostgreSQL notifies on when the catalog or a subscription changes.
    static let changeChannel = "tollgate_changes"

    /// PostgreSQL: calls `changed` whenever a change to the catalog or to a subscription is
    /// committed (by any node), until cancelled or the connection fails (then it throws).
    /// SQLite: returns at once; one process writes it, and it sees its own changes.
    public func followChanges(_ changed: @escaping @Sendable () -> Void) async throws {
        guard let postgres = backend as? PostgresBackend else { return }
        try await postgres.listen(on: Self.changeChannel) { _ in changed() }
    }

    /// The latest change of any product or plan, to notice catalog changes made by other nodes.
    public func catalogChangedAt() async throws -> Date? {
        try await backend.read { database in
            try await database.raw("""
                SELECT MAX(latest) AS latest FROM (SELECT MAX(updated_at) AS latest FROM products
                UNION ALL SELECT MAX(updated_at) AS latest FROM plans UNION ALL SELECT MAX(updated_at) AS latest FROM meters) AS changes
                """).first()?.decode(column: "latest", as: Int?.self).map(Timestamp.date)
        }
    }

    // MARK: Quota leases

    /// Raises leases (never lowers them): what the gateway takes ahead before admitting calls.
    public func raiseQuotaLeases(_ leases: [QuotaLease]) async throws {
        try await writeLeases(leases, onlyUpward: true)
    }

    private func writeLeases(_ leases: [QuotaLease], onlyUpward: Bool) async throws {
        guard !leases.isEmpty else { return }
        if try await backend.withUsageLog({ log in try log.transaction { try log.write(leases: leases, onlyUpward: onlyUpward) } }) != nil {
            return
        }
        try await backend.transaction { try await Self.writeLeases(leases, onlyUpward: onlyUpward, to: $0) }
    }

    static func writeLeases(_ leases: [QuotaLease], onlyUpward: Bool, to database: any SQLDatabase) async throws {
        for lease in leases {
            let query: SQLQueryString = """
                INSERT INTO quota_leases (subscription_id, plan_id, endpoint, quota_window, window_start, leased)
                VALUES (\(bind: lease.subscription), \(bind: lease.plan), \(bind: lease.endpoint ?? ""),
                \(bind: lease.window.rawValue), \(bind: Timestamp.micros(lease.windowStart)), \(bind: lease.leased))
                \(unsafeRaw: leaseConflict(onlyUpward: onlyUpward))
                """
            try await database.raw(query).run()
        }
    }

    /// Raising a lease keeps the larger count; settling sets it.
    static func leaseConflict(onlyUpward: Bool) -> String {
        "ON CONFLICT (subscription_id, plan_id, endpoint, quota_window, window_start) DO UPDATE SET leased = excluded.leased"
            + (onlyUpward ? " WHERE excluded.leased > quota_leases.leased" : "")
    }

    /// SQLite's lease statement (`SQLiteUsageLog`).
    static func leaseUpsert(onlyUpward: Bool) -> String {
        """
        INSERT INTO quota_leases (subscription_id, plan_id, endpoint, quota_window, window_start, leased)
        VALUES (?, ?, ?, ?, ?, ?) \(leaseConflict(onlyUpward: onlyUpward))
        """
    }

    /// Every lease of windows that end after `date` could still matter; older ones are left out.
    public func quotaLeases(since date: Date) async throws -> [QuotaLease] {
        let rows = try await backend.read { database in
            // A year is the longest window; billing periods are at most a year too.
            try await database.raw(
                "SELECT * FROM quota_leases WHERE window_start >= \(bind: Timestamp.micros(date.addingTimeInterval(-367 * 86_400)))"
            ).all()
        }
        return try rows.compactMap { row in
            guard let window = QuotaWindow(rawValue: try row.decode(column: "quota_window", as: String.self)) else { return nil }
            let endpoint = try row.decode(column: "endpoint", as: String.self)
            return QuotaLease(
                subscription: try row.decode(column: "subscription_id", as: String.self),
                plan: try row.decode(column: "plan_id", as: String.self), endpoint: endpoint.isEmpty ? nil : endpoint,
                window: window, windowStart: Timestamp.date(try row.decode(column: "window_start", as: Int.self)),
                leased: try row.decode(column: "leased", as: Int.self))
        }
    }

    // MARK: Usage events

    /// The number of stored events (all sources), for checks and benchmarks.
    public func eventCount() async throws -> Int {
        try await backend.read { database in
            try await database.raw("SELECT COUNT(*) AS n FROM usage_events").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }
}
