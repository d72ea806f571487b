import Foundation
import SQLKit
import TollgateCore

/// One webhook event in the outbox, with where its delivery stands.
public struct WebhookDelivery: Sendable, Equatable {
    /// Where a delivery stands.
    public enum Status: String, Sendable, CaseIterable {
        case pending, delivered, failed
    }

    /// The event id, the same on every attempt.
    public var id: String
    public var type: String
    public var product: String
    public var subscription: String?
    public var url: String
    /// The exact JSON body that is sent (and signed).
    public var payload: String
    public var status: Status
    public var attempts: Int
    public var lastStatus: Int?
    public var lastError: String?
    public var nextAttemptAt: Date
    public var firstAttemptAt: Date?
    public var createdAt: Date
    public var deliveredAt: Date?

    /// A new pending event, due at once.
    public init(id: String, type: String, product: String, subscription: String?, url: String, payload: String, createdAt: Date) {
        self.id = id
        self.type = type
        self.product = product
        self.subscription = subscription
        self.url = url
        self.payload = payload
        self.status = .pending
        self.attempts = 0
        self.nextAttemptAt = createdAt
        self.createdAt = createdAt
    }
}

extension WebhookDelivery {
    /// The event `{"id","type","created_at","data"}` for a product's webhook (DESIGN §3.6).
    public static func event(
        _ type: WebhookEventType, id: String, data: DocumentNode, product: String, subscription: String?, target: WebhookTarget,
        at now: Date
    ) -> WebhookDelivery {
        let payload = DocumentNode.object([
            ("id", .text(id)),
            ("type", .text(type.rawValue)),
            ("created_at", .text(RFC3339.string(now))),
            ("data", data),
        ]).jsonText()
        return WebhookDelivery(
            id: id, type: type.rawValue, product: product, subscription: subscription, url: target.url, payload: payload, createdAt: now)
    }
}

/// What one attempt to deliver came to.
public enum DeliveryOutcome: Sendable {
    case delivered(status: Int)
    case retry(at: Date, status: Int?, error: String)
    case gaveUp(status: Int?, error: String)
}

extension TollgateStore {
    /// Adds an event to the outbox inside a transaction the caller is running.
    func enqueue(_ delivery: WebhookDelivery, on database: any SQLDatabase) async throws {
        try await database.raw(Self.insertDelivery(delivery)).run()
    }

    static func insertDelivery(_ delivery: WebhookDelivery) -> SQLQueryString {
        """
        INSERT INTO webhook_outbox (id, type, product_id, subscription_id, url, payload, status, attempts,
        next_attempt_at, created_at)
        VALUES (\(bind: delivery.id), \(bind: delivery.type), \(bind: delivery.product), \(bind: delivery.subscription),
        \(bind: delivery.url), \(bind: delivery.payload), 'pending', 0, \(bind: Timestamp.micros(delivery.nextAttemptAt)),
        \(bind: Timestamp.micros(delivery.createdAt))) ON CONFLICT (id) DO NOTHING
        """
    }

    /// SQLite's outbox statement (`SQLiteUsageLog`), in the column order of `insertDelivery`.
    static let outboxInsert = """
        INSERT INTO webhook_outbox (id, type, product_id, subscription_id, url, payload, status, attempts,
        next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (id) DO NOTHING
        """

    /// Adds events to the outbox on their own; an id already there is left alone (an event with
    /// a deterministic id, such as `quota.exhausted` of one window, is enqueued at most once).
    public func enqueueWebhooks(_ deliveries: [WebhookDelivery]) async throws {
        guard !deliveries.isEmpty else { return }
        if try await backend.withUsageLog({ log in try log.transaction { try log.write(webhooks: deliveries) } }) != nil { return }
        try await backend.transaction { database in
            for delivery in deliveries { try await database.raw(Self.insertDelivery(delivery)).run() }
        }
    }

    private func delivery(from row: any SQLRow) throws -> WebhookDelivery {
        var delivery = WebhookDelivery(
            id: try row.decode(column: "id", as: String.self), type: try row.decode(column: "type", as: String.self),
            product: try row.decode(column: "product_id", as: String.self),
            subscription: try row.decode(column: "subscription_id", as: String?.self),
            url: try row.decode(column: "url", as: String.self), payload: try row.decode(column: "payload", as: String.self),
            createdAt: Timestamp.date(try row.decode(column: "created_at", as: Int.self)))
        delivery.status = WebhookDelivery.Status(rawValue: try row.decode(column: "status", as: String.self)) ?? .pending
        delivery.attempts = try row.decode(column: "attempts", as: Int.self)
        delivery.lastStatus = try row.decode(column: "last_status", as: Int?.self)
        delivery.lastError = try row.decode(column: "last_error", as: String?.self)
        delivery.nextAttemptAt = Timestamp.date(try row.decode(column: "next_attempt_at", as: Int.self))
        delivery.firstAttemptAt = try row.decode(column: "first_attempt_at", as: Int?.self).map(Timestamp.date)
        delivery.deliveredAt = try row.decode(column: "delivered_at", as: Int?.self).map(Timestamp.date)
        return delivery
    }

    /// Pending deliveries due at `now`, oldest first, each the earliest pending one of its
    /// subscription (a later event waits until the earlier one is delivered or given up).
    public func dueDeliveries(now: Date, limit: Int) async throws -> [WebhookDelivery] {
        let rows = try await backend.read { database in
            try await database.raw("""
                SELECT * FROM webhook_outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= \(bind: Timestamp.micros(now))
                AND NOT EXISTS (SELECT 1 FROM webhook_outbox e WHERE e.status = 'pending'
                    AND e.subscription_id = o.subscription_id AND e.seq < o.seq)
                ORDER BY o.seq LIMIT \(bind: limit)
                """).all()
        }
        return try rows.map(delivery(from:))
    }

    /// The earliest time a pending delivery is due, if any.
    public func nextDeliveryDue() async throws -> Date? {
        try await backend.read { database in
            try await database.raw("SELECT MIN(next_attempt_at) AS due FROM webhook_outbox WHERE status = 'pending'")
                .first()?.decode(column: "due", as: Int?.self).map(Timestamp.date)
        }
    }

    /// Records the outcome of an attempt made at `now`.
    public func recordAttempt(_ id: String, at now: Date, _ outcome: DeliveryOutcome) async throws {
        let (status, httpStatus, error, next, delivered): (WebhookDelivery.Status, Int?, String?, Date?, Date?) = switch outcome {
        case .delivered(let code): (.delivered, code, nil, nil, now)
        case .retry(let at, let code, let message): (.pending, code, message, at, nil)
        case .gaveUp(let code, let message): (.failed, code, message, nil, nil)
        }
        try await backend.withSQL { database in
            try await database.raw("""
                UPDATE webhook_outbox SET status = \(bind: status.rawValue), attempts = attempts + 1,
                last_status = \(bind: httpStatus), last_error = \(bind: error),
                next_attempt_at = \(bind: Timestamp.micros(next ?? now)),
                first_attempt_at = COALESCE(first_attempt_at, \(bind: Timestamp.micros(now))),
                delivered_at = \(bind: delivered.map(Timestamp.micros))
                WHERE id = \(bind: id)
                """).run()
        }
    }

    /// Deliveries, newest first, optionally of one status.
    public func deliveries(status: WebhookDelivery.Status?, before cursor: Int?, limit: Int) async throws
        -> (items: [WebhookDelivery], nextCursor: Int?)
    {
        let rows = try await backend.read { database in
            var query: SQLQueryString = "SELECT * FROM webhook_outbox WHERE seq < \(bind: cursor ?? Int.max)"
            if let status { query += " AND status = \(bind: status.rawValue)" }
            query += " ORDER BY seq DESC LIMIT \(bind: limit + 1)"
            return try await database.raw(query).all()
        }
        let sequences = try rows.map { try $0.decode(column: "seq", as: Int.self) }
        let items = try rows.prefix(limit).map(delivery(from:))
        return (items, rows.count > limit ? sequences[limit - 1] : nil)
    }

    public func webhookDelivery(_ id: String) async throws -> WebhookDelivery? {
        let row = try await backend.read { database in
            try await database.raw("SELECT * FROM webhook_outbox WHERE id = \(bind: id)").first()
        }
        return try row.map(delivery(from:))
    }

    /// Makes a delivery due again now, with a fresh give-up clock (a failed one becomes pending).
    public func retryDelivery(_ id: String, now: Date) async throws -> WebhookDelivery {
        let found = try await backend.withSQL { database in
            try await database.raw("""
                UPDATE webhook_outbox SET status = 'pending', next_attempt_at = \(bind: Timestamp.micros(now)),
                first_attempt_at = NULL WHERE id = \(bind: id) AND status <> 'delivered' RETURNING id
                """).first()
        }
        guard let delivery = try await webhookDelivery(id) else { throw StoreError.notFound("no delivery \"\(id)\"") }
        if found == nil { throw StoreError.conflict("delivery \"\(id)\" was already delivered") }
        return delivery
    }
}
