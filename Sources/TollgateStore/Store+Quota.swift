import Foundation
import SQLKit
import TollgateCore

/// What a node got when it asked for a lease of a shared quota counter.
public struct QuotaGrant: Sendable, Equatable {
    /// Calls granted to the node now (0: nothing was left).
    public var amount: Int
    /// What all nodes hold of the counter now, this grant included.
    public var total: Int
    /// Other live nodes that hold part of the counter not yet used (asked to hand it back when
    /// nothing was left; empty when something was granted).
    public var holders: [String]

    public init(amount: Int, total: Int, holders: [String]) {
        self.amount = amount
        self.total = total
        self.holders = holders
    }
}

/// Calls that one node answered from its shared quota holdings, written with their usage
/// events: a node that dies keeps exactly these counted, and hands back the rest.
public struct QuotaUse: Sendable, Equatable {
    public var node: String
    public var calls: [QuotaCounter: Int]

    public init(node: String, calls: [QuotaCounter: Int] = [:]) {
        self.node = node
        self.calls = calls
    }
}

/// Quotas shared by several gateway nodes on one PostgreSQL (docs/quotas.md): `quota_counters`
/// holds each counter's total granted, which one guarded statement can never raise past the
/// quota; `quota_holdings` what each node holds and has answered; `quota_nodes` each node's
/// lease time-out, after which anyone may take back what it held unused.
extension TollgateStore {
    /// The channel nodes ask each other to hand back quota on, and tell that they did.
    static let quotaChannel = "tollgate_quota"

    /// Whether this database is shared by nodes (PostgreSQL): quotas are then shared too.
    public var sharesQuotas: Bool { backend.kind == .postgres }

    /// Takes a lease for `node`: first takes back what nodes whose time-out passed held unused,
    /// then grants up to `block` calls, fewer as the counter nears its quota (an eighth of what
    /// is left, at least one), never more than is left. Renews the node's time-out to `expiresAt`.
    public func takeQuotaLease(
        node: String, counter: QuotaCounter, quota: Int, windowEnd: Date, block: Int, now: Date, expiresAt: Date
    ) async throws -> QuotaGrant {
        let key = Self.counterMatch(counter)
        return try await backend.transaction { database in
            try await database.raw("""
                WITH lapsed AS (
                    DELETE FROM quota_holdings h WHERE \(key) AND h.node <> \(bind: node) AND NOT EXISTS (
                        SELECT 1 FROM quota_nodes n WHERE n.node = h.node AND n.expires_at >= \(bind: Timestamp.micros(now)))
                    RETURNING GREATEST(0, h.granted - h.used) AS unused)
                UPDATE quota_counters SET granted = granted - (SELECT COALESCE(SUM(unused), 0)::BIGINT FROM lapsed) WHERE \(key)
                """).run()
            guard let row = try await database.raw("""
                INSERT INTO quota_counters (subscription_id, plan_id, endpoint, quota_window, window_start, window_end, quota, granted)
                VALUES (\(Self.counterValues(counter)), \(bind: Timestamp.micros(windowEnd)), \(bind: quota), 0)
                ON CONFLICT (subscription_id, plan_id, endpoint, quota_window, window_start) DO UPDATE SET quota = excluded.quota
                RETURNING granted
                """).first()
            else { throw StoreError.notFound("quota counter \(counter) could not be stored") }
            let before = try row.decode(column: "granted", as: Int.self)
            let left = max(0, quota - before)
            let want = min(block, max(1, left / 8), left)
            var total = before
            if want > 0, let raised = try await database.raw("""
                UPDATE quota_counters SET granted = granted + \(bind: want)
                WHERE \(key) AND granted + \(bind: want) <= quota RETURNING granted
                """).first() {
                total = try raised.decode(column: "granted", as: Int.self)
                try await database.raw("""
                    INSERT INTO quota_holdings (subscription_id, plan_id, endpoint, quota_window, window_start, node, granted, used)
                    VALUES (\(Self.counterValues(counter)), \(bind: node), \(bind: want), 0)
                    ON CONFLICT (subscription_id, plan_id, endpoint, quota_window, window_start, node)
                    DO UPDATE SET granted = quota_holdings.granted + excluded.granted
                    """).run()
            }
            try await Self.renew(node: node, until: expiresAt, in: database)
            let amount = total - before
            guard amount == 0 else { return QuotaGrant(amount: amount, total: total, holders: []) }
            let holders = try await database.raw("""
                SELECT h.node FROM quota_holdings h JOIN quota_nodes n ON n.node = h.node
                WHERE \(key) AND h.node <> \(bind: node) AND h.granted > h.used AND n.expires_at >= \(bind: Timestamp.micros(now))
                """).all().map { try $0.decode(column: "node", as: String.self) }
            return QuotaGrant(amount: 0, total: total, holders: holders)
        }
    }

    /// Hands `amount` unused calls of `node`'s holding back to the counter. Nothing changes when
    /// the holding no longer has that many unused (it was taken back after a time-out).
    public func returnQuota(node: String, counter: QuotaCounter, amount: Int) async throws {
        guard amount > 0 else { return }
        let key = Self.counterMatch(counter)
        let holding: SQLQueryString = "\(key) AND node = \(bind: node) AND granted - used >= \(bind: amount)"
        try await backend.transaction { database in
            try await database.raw("""
                UPDATE quota_counters SET granted = granted - \(bind: amount)
                WHERE \(key) AND EXISTS (SELECT 1 FROM quota_holdings WHERE \(holding))
                """).run()
            try await database.raw("UPDATE quota_holdings SET granted = granted - \(bind: amount) WHERE \(holding)").run()
        }
    }

    /// Renews `node`'s time-out, takes back what nodes whose time-out passed held unused, and
    /// forgets counters of windows that ended before `forgetBefore`. Returns the counters that
    /// got calls back, and how many.
    public func maintainQuotas(
        node: String, now: Date, expiresAt: Date, forgetBefore: Date
    ) async throws -> [QuotaCounter: Int] {
        try await backend.transaction { database in
            try await Self.renew(node: node, until: expiresAt, in: database)
            let rows = try await database.raw("""
                WITH lapsed AS (
                    DELETE FROM quota_holdings h WHERE NOT EXISTS (
                        SELECT 1 FROM quota_nodes n WHERE n.node = h.node AND n.expires_at >= \(bind: Timestamp.micros(now)))
                    RETURNING subscription_id, plan_id, endpoint, quota_window, window_start, GREATEST(0, granted - used) AS unused),
                returned AS (
                    SELECT subscription_id, plan_id, endpoint, quota_window, window_start, SUM(unused)::BIGINT AS unused
                    FROM lapsed GROUP BY subscription_id, plan_id, endpoint, quota_window, window_start)
                UPDATE quota_counters c SET granted = c.granted - r.unused FROM returned r
                WHERE c.subscription_id = r.subscription_id AND c.plan_id = r.plan_id AND c.endpoint = r.endpoint
                    AND c.quota_window = r.quota_window AND c.window_start = r.window_start AND r.unused > 0
                RETURNING c.subscription_id, c.plan_id, c.endpoint, c.quota_window, c.window_start, r.unused
                """).all()
            try await database.raw("DELETE FROM quota_nodes WHERE expires_at < \(bind: Timestamp.micros(now))").run()
            let cutoff = Timestamp.micros(forgetBefore)
            try await database.raw("""
                DELETE FROM quota_holdings h USING quota_counters c
                WHERE c.subscription_id = h.subscription_id AND c.plan_id = h.plan_id AND c.endpoint = h.endpoint
                    AND c.quota_window = h.quota_window AND c.window_start = h.window_start AND c.window_end < \(bind: cutoff)
                """).run()
            try await database.raw("DELETE FROM quota_counters WHERE window_end < \(bind: cutoff)").run()
            var returned: [QuotaCounter: Int] = [:]
            for row in rows {
                if let counter = try Self.counter(from: row) { returned[counter] = try row.decode(column: "unused", as: Int.self) }
            }
            return returned
        }
    }

    /// A node stops: it no longer holds anything (call after handing back what it held unused).
    public func leaveQuotas(node: String) async throws {
        try await backend.transaction { database in
            try await database.raw("DELETE FROM quota_nodes WHERE node = \(bind: node)").run()
        }
    }

    /// Tells every node listening on the quota channel `message` (PostgreSQL only).
    public func notifyQuotaNodes(_ message: String) async throws {
        guard sharesQuotas else { return }
        try await backend.transaction { database in
            try await database.raw("SELECT pg_notify(\(bind: Self.quotaChannel), \(bind: message))").run()
        }
    }

    /// Calls `heard` with each message on the quota channel, and with nil once listening, until
    /// cancelled or the connection fails (then it throws). SQLite: returns at once.
    public func followQuotaNodes(_ heard: @escaping @Sendable (String?) -> Void) async throws {
        guard let postgres = backend as? PostgresBackend else { return }
        try await postgres.listen(on: Self.quotaChannel, heard)
    }

    /// The calls counted by each shared counter of `subscription`: what all nodes were granted,
    /// less what live nodes hold unused (calls in flight count as used).
    public func quotaCounterUse(subscription: String) async throws -> [QuotaCounter: Int] {
        guard sharesQuotas else { return [:] }
        let rows = try await backend.read { database in
            try await database.raw("""
                SELECT c.subscription_id, c.plan_id, c.endpoint, c.quota_window, c.window_start,
                    (c.granted - COALESCE((SELECT SUM(GREATEST(0, h.granted - h.used)) FROM quota_holdings h
                        WHERE h.subscription_id = c.subscription_id AND h.plan_id = c.plan_id AND h.endpoint = c.endpoint
                        AND h.quota_window = c.quota_window AND h.window_start = c.window_start), 0))::BIGINT AS counted
                FROM quota_counters c WHERE c.subscription_id = \(bind: subscription)
                """).all()
        }
        var counted: [QuotaCounter: Int] = [:]
        for row in rows {
            if let counter = try Self.counter(from: row) { counted[counter] = max(0, try row.decode(column: "counted", as: Int.self)) }
        }
        return counted
    }

    /// Counts calls answered from holdings, inside the usage commit's transaction.
    static func writeQuotaUse(_ use: QuotaUse?, to database: any SQLDatabase) async throws {
        guard let use else { return }
        for (counter, calls) in use.calls where calls > 0 {
            try await database.raw("""
                UPDATE quota_holdings SET used = used + \(bind: calls) WHERE \(counterMatch(counter)) AND node = \(bind: use.node)
                """).run()
        }
    }

    private static func renew(node: String, until expiresAt: Date, in database: any SQLDatabase) async throws {
        try await database.raw("""
            INSERT INTO quota_nodes (node, expires_at) VALUES (\(bind: node), \(bind: Timestamp.micros(expiresAt)))
            ON CONFLICT (node) DO UPDATE SET expires_at = excluded.expires_at
            """).run()
    }

    private static func counterMatch(_ counter: QuotaCounter) -> SQLQueryString {
        """
        subscription_id = \(bind: counter.subscription) AND plan_id = \(bind: counter.plan) AND endpoint = \(bind: counter.endpoint ?? "") \
        AND quota_window = \(bind: counter.window.rawValue) AND window_start = \(bind: Timestamp.micros(counter.windowStart))
        """
    }

    private static func counterValues(_ counter: QuotaCounter) -> SQLQueryString {
        """
        \(bind: counter.subscription), \(bind: counter.plan), \(bind: counter.endpoint ?? ""), \(bind: counter.window.rawValue), \
        \(bind: Timestamp.micros(counter.windowStart))
        """
    }

    private static func counter(from row: any SQLRow) throws -> QuotaCounter? {
        guard let window = QuotaWindow(rawValue: try row.decode(column: "quota_window", as: String.self)) else { return nil }
        let endpoint = try row.decode(column: "endpoint", as: String.self)
        return QuotaCounter(
            subscription: try row.decode(column: "subscription_id", as: String.self),
            plan: try row.decode(column: "plan_id", as: String.self), endpoint: endpoint.isEmpty ? nil : endpoint,
            window: window, windowStart: Timestamp.date(try row.decode(column: "window_start", as: Int.self)))
    }
}
