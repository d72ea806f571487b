import Foundation
import SQLKit
import TollgateCore

/// A person or app of a customer as the collector received it (Moesif's user).
public struct CollectorRecord: Sendable {
    public var id: String
    public var customer: String?
    /// The object as it arrived.
    public var body: DocumentNode

    public init(id: String, customer: String?, body: DocumentNode) {
        self.id = id
        self.customer = customer
        self.body = body
    }
}

extension TollgateStore {
    /// The subscriptions with these ids, and every subscription of these customers.
    public func subscriptions(ids: [String], customers: [String]) async throws -> [Subscription] {
        var found: [String: Subscription] = [:]
        for (column, values) in [("id", ids), ("customer_id", customers)] {
            for start in stride(from: 0, to: values.count, by: 500) {
                let slice = Array(values[start..<min(start + 500, values.count)])
                let rows = try await backend.read { database in
                    try await database.raw("SELECT * FROM subscriptions WHERE \(ident: column) IN (\(binds: slice))").all()
                }
                for row in rows {
                    let subscription = try self.subscription(from: row)
                    found[subscription.id] = subscription
                }
            }
        }
        return found.values.sorted { $0.id < $1.id }
    }

    /// Creates or merges collector users or subscriptions: a later record replaces the body,
    /// a record without a customer keeps the one stored.
    public func saveCollectorRecords(_ records: [CollectorRecord], kind: CollectorRecordKind) async throws {
        guard !records.isEmpty else { return }
        let now = Timestamp.now
        try await backend.transaction { database in
            for record in records {
                try await database.raw("""
                    INSERT INTO \(ident: kind.table) (id, customer_id, body, created_at, updated_at)
                    VALUES (\(bind: record.id), \(bind: record.customer), \(bind: record.body.jsonText()), \(bind: now), \(bind: now))
                    ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at,
                    customer_id = COALESCE(excluded.customer_id, \(ident: kind.table).customer_id)
                    """).run()
            }
        }
    }

    /// The customer of each known collector user.
    public func collectorUserCustomers(_ ids: [String]) async throws -> [String: String] {
        var result: [String: String] = [:]
        for start in stride(from: 0, to: ids.count, by: 500) {
            let slice = Array(ids[start..<min(start + 500, ids.count)])
            let rows = try await backend.read { database in
                try await database.raw(
                    "SELECT id, customer_id FROM collector_users WHERE customer_id IS NOT NULL AND id IN (\(binds: slice))"
                ).all()
            }
            for row in rows {
                result[try row.decode(column: "id", as: String.self)] = try row.decode(column: "customer_id", as: String.self)
            }
        }
        return result
    }

    /// A collector user as stored.
    public func collectorRecord(_ id: String, kind: CollectorRecordKind) async throws -> CollectorRecord? {
        let row = try await backend.read { database in
            try await database.raw("SELECT id, customer_id, body FROM \(ident: kind.table) WHERE id = \(bind: id)").first()
        }
        guard let row else { return nil }
        return CollectorRecord(
            id: try row.decode(column: "id", as: String.self), customer: try row.decode(column: "customer_id", as: String?.self),
            body: try DocumentNode.parseJSON(Array(try row.decode(column: "body", as: String.self).utf8)))
    }
}

/// Which collector records: Moesif users or Moesif subscriptions.
public enum CollectorRecordKind: Sendable {
    case user, subscription

    var table: String { self == .user ? "collector_users" : "collector_subscriptions" }
}
