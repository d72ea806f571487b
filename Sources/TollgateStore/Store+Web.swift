import Foundation
import SQLKit
import TollgateCore

/// A signed-in browser: who it is (a portal customer, or the operator) and until when.
public struct WebSession: Sendable, Equatable {
    /// Whose session it is.
    public enum Kind: String, Sendable {
        case portal, dashboard
    }

    public var kind: Kind
    /// The customer of a portal session; nil for the dashboard.
    public var customer: String?
    public var expiresAt: Date

    public init(kind: Kind, customer: String?, expiresAt: Date) {
        self.kind = kind
        self.customer = customer
        self.expiresAt = expiresAt
    }
}

extension TollgateStore {
    // MARK: Sessions (ids stored as SHA-256 digests, never in clear)

    /// Stores a new session under the digest of its id; expired sessions are swept on the way.
    public func createWebSession(idHash: String, _ session: WebSession, now: Date) async throws {
        try await backend.transaction { database in
            try await database.raw("DELETE FROM web_sessions WHERE expires_at <= \(bind: Timestamp.micros(now))").run()
            try await database.raw("""
                INSERT INTO web_sessions (id_hash, kind, customer_id, created_at, expires_at)
                VALUES (\(bind: idHash), \(bind: session.kind.rawValue), \(bind: session.customer),
                \(bind: Timestamp.micros(now)), \(bind: Timestamp.micros(session.expiresAt)))
                """).run()
        }
    }

    /// The session whose id has this digest, if it has not expired.
    public func webSession(idHash: String, now: Date) async throws -> WebSession? {
        let row = try await backend.read { database in
            try await database.raw("""
                SELECT kind, customer_id, expires_at FROM web_sessions
                WHERE id_hash = \(bind: idHash) AND expires_at > \(bind: Timestamp.micros(now))
                """).first()
        }
        guard let row, let kind = WebSession.Kind(rawValue: try row.decode(column: "kind", as: String.self)) else { return nil }
        return WebSession(
            kind: kind, customer: try row.decode(column: "customer_id", as: String?.self),
            expiresAt: Timestamp.date(try row.decode(column: "expires_at", as: Int.self)))
    }

    /// Ends a session (sign-out).
    public func deleteWebSession(idHash: String) async throws {
        try await backend.withSQL { database in
            try await database.raw("DELETE FROM web_sessions WHERE id_hash = \(bind: idHash)").run()
        }
    }

    // MARK: One-time portal links

    /// Stores a one-time sign-in link for a customer under the digest of its token.
    public func createPortalLink(tokenHash: String, customer: String, expiresAt: Date, now: Date) async throws {
        try await backend.transaction { database in
            // Links used or expired more than a day ago are no longer worth keeping.
            let dayAgo = Timestamp.micros(now.addingTimeInterval(-86_400))
            try await database.raw("DELETE FROM portal_links WHERE expires_at <= \(bind: dayAgo)").run()
            try await database.raw("""
                INSERT INTO portal_links (token_hash, customer_id, created_at, expires_at, used_at)
                VALUES (\(bind: tokenHash), \(bind: customer), \(bind: Timestamp.micros(now)), \(bind: Timestamp.micros(expiresAt)), NULL)
                """).run()
        }
    }

    /// Uses a link up: the customer it signs in, if it exists, is unused and has not expired.
    /// One statement marks it used, so that two browsers racing with one link get one session.
    public func consumePortalLink(tokenHash: String, now: Date) async throws -> String? {
        let row = try await backend.withSQL { database in
            try await database.raw("""
                UPDATE portal_links SET used_at = \(bind: Timestamp.micros(now))
                WHERE token_hash = \(bind: tokenHash) AND used_at IS NULL AND expires_at > \(bind: Timestamp.micros(now))
                RETURNING customer_id
                """).first()
        }
        return try row?.decode(column: "customer_id", as: String.self)
    }

    // MARK: Overview figures

    /// Calls the gateway recorded per UTC day from `from` (a midnight) to `to`: day start → calls.
    public func gatewayCallsPerDay(from: Date, to: Date) async throws -> [Date: Int] {
        let day = Int64(86_400_000_000)
        let rows = try await backend.read { database in
            try await database.raw("""
                SELECT keyed_at / \(unsafeRaw: String(day)) AS day, CAST(SUM(weight) AS BIGINT) AS calls FROM usage_events
                WHERE keyed_at >= \(bind: Timestamp.micros(from)) AND keyed_at < \(bind: Timestamp.micros(to))
                AND source = 'gateway' GROUP BY keyed_at / \(unsafeRaw: String(day))
                """).all()
        }
        var calls: [Date: Int] = [:]
        for row in rows {
            let index = try row.decode(column: "day", as: Int.self)
            calls[Timestamp.date(index * Int(day)), default: 0] += try row.decode(column: "calls", as: Int.self)
        }
        return calls
    }

    /// How many subscriptions are in each status.
    public func subscriptionCounts() async throws -> [SubscriptionStatus: Int] {
        let rows = try await backend.read { database in
            try await database.raw("SELECT status, COUNT(*) AS count FROM subscriptions GROUP BY status").all()
        }
        var counts: [SubscriptionStatus: Int] = [:]
        for row in rows {
            guard let status = SubscriptionStatus(rawValue: try row.decode(column: "status", as: String.self)) else { continue }
            counts[status, default: 0] += try row.decode(column: "count", as: Int.self)
        }
        return counts
    }
}
