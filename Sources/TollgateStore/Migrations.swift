import SQLKit
import TollgateCore

/// The schema, as numbered steps applied once each, in order, at start.
enum Migrations {
    /// One schema change. `sql` is run on both databases; dialect differences are spelled out.
    struct Step: Sendable {
        var version: Int
        var statements: @Sendable (DatabaseKind) -> [String]
    }

    static let steps: [Step] = [
        Step(version: 1) { _ in
            [
                """
                CREATE TABLE products (
                    id TEXT PRIMARY KEY, body TEXT NOT NULL, archived BIGINT NOT NULL DEFAULT 0,
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE meters (
                    id TEXT PRIMARY KEY, body TEXT NOT NULL, archived BIGINT NOT NULL DEFAULT 0,
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE plans (
                    id TEXT PRIMARY KEY, product_id TEXT NOT NULL REFERENCES products (id), body TEXT NOT NULL,
                    archived BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE customers (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, archived BIGINT NOT NULL DEFAULT 0,
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE subscriptions (
                    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id),
                    plan_id TEXT NOT NULL REFERENCES plans (id), product_id TEXT NOT NULL REFERENCES products (id),
                    status TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, started_at BIGINT NOT NULL,
                    terminated_at BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                "CREATE INDEX subscriptions_customer ON subscriptions (customer_id)",
                """
                CREATE TABLE usage_events (
                    id TEXT PRIMARY KEY, source TEXT NOT NULL, name TEXT NOT NULL, occurred_at BIGINT NOT NULL,
                    subscription_id TEXT, customer_id TEXT, product_id TEXT, endpoint TEXT, method TEXT, path TEXT,
                    status BIGINT, latency_us BIGINT, request_bytes BIGINT, response_bytes BIGINT,
                    billable BIGINT NOT NULL, weight BIGINT NOT NULL DEFAULT 1)
                """,
                "CREATE INDEX usage_events_subscription_time ON usage_events (subscription_id, occurred_at)",
            ]
        },
        Step(version: 2) { _ in
            [
                "CREATE INDEX subscriptions_updated ON subscriptions (updated_at)",
                "CREATE INDEX products_updated ON products (updated_at)",
            ]
        },
        Step(version: 3) { _ in
            [
                """
                CREATE TABLE quota_leases (
                    subscription_id TEXT NOT NULL, plan_id TEXT NOT NULL, endpoint TEXT NOT NULL, quota_window TEXT NOT NULL,
                    window_start BIGINT NOT NULL, leased BIGINT NOT NULL,
                    PRIMARY KEY (subscription_id, plan_id, endpoint, quota_window, window_start))
                """,
            ]
        },
        Step(version: 4) { kind in
            // `seq` orders deliveries: an ever-growing number, which the two databases spell differently.
            let sequence = kind == .sqlite ? "seq INTEGER PRIMARY KEY AUTOINCREMENT" : "seq BIGSERIAL PRIMARY KEY"
            return [
                """
                CREATE TABLE webhook_outbox (
                    \(sequence), id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, product_id TEXT NOT NULL,
                    subscription_id TEXT, url TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0, last_status BIGINT, last_error TEXT,
                    next_attempt_at BIGINT NOT NULL, first_attempt_at BIGINT, created_at BIGINT NOT NULL, delivered_at BIGINT)
                """,
                "CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at)",
                "CREATE INDEX webhook_outbox_subscription ON webhook_outbox (subscription_id, status, seq)",
            ]
        },
        Step(version: 5) { _ in
            [
                // The event as it arrived (for meters on its properties) and its aggregate bucket.
                "ALTER TABLE usage_events ADD COLUMN body TEXT",
                "ALTER TABLE usage_events ADD COLUMN bucket_at BIGINT",
                "UPDATE usage_events SET bucket_at = occurred_at - (occurred_at % 3600000000) WHERE subscription_id IS NOT NULL",
                """
                CREATE TABLE meter_aggregates (
                    subscription_id TEXT NOT NULL, meter_id TEXT NOT NULL, bucket_at BIGINT NOT NULL,
                    event_count BIGINT NOT NULL, sum_units BIGINT NOT NULL, sum_nanos BIGINT NOT NULL,
                    max_units BIGINT, max_nanos BIGINT, latest_at BIGINT, latest_units BIGINT, latest_nanos BIGINT,
                    PRIMARY KEY (subscription_id, meter_id, bucket_at))
                """,
                """
                CREATE TABLE meter_uniques (
                    subscription_id TEXT NOT NULL, meter_id TEXT NOT NULL, bucket_at BIGINT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (subscription_id, meter_id, bucket_at, value))
                """,
                """
                INSERT INTO meter_aggregates (subscription_id, meter_id, bucket_at, event_count, sum_units, sum_nanos)
                SELECT subscription_id, '\(Metering.endpointPrefix)' || endpoint, bucket_at, SUM(weight), 0, 0 FROM usage_events
                WHERE subscription_id IS NOT NULL AND endpoint IS NOT NULL AND billable = 1 AND name = 'api_calls'
                GROUP BY subscription_id, endpoint, bucket_at
                """,
                """
                CREATE TABLE collector_users (
                    id TEXT PRIMARY KEY, customer_id TEXT, body TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE collector_subscriptions (
                    id TEXT PRIMARY KEY, customer_id TEXT, body TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
            ]
        },
        Step(version: 6) { _ in
            [
                // Which plan was in force from when: proration and rating read it.
                """
                CREATE TABLE subscription_plans (
                    subscription_id TEXT NOT NULL, from_at BIGINT NOT NULL, plan_id TEXT NOT NULL,
                    PRIMARY KEY (subscription_id, from_at))
                """,
                "INSERT INTO subscription_plans (subscription_id, from_at, plan_id) SELECT id, started_at, plan_id FROM subscriptions",
                // One invoice per subscription and period end, whoever closes and however often.
                """
                CREATE TABLE invoices (
                    id TEXT PRIMARY KEY, subscription_id TEXT NOT NULL, customer_id TEXT NOT NULL, product_id TEXT NOT NULL,
                    currency TEXT NOT NULL, period_start BIGINT NOT NULL, period_end BIGINT NOT NULL, status TEXT NOT NULL,
                    lines TEXT NOT NULL, total TEXT NOT NULL, created_at BIGINT NOT NULL, finalized_at BIGINT, settled_at BIGINT,
                    updated_at BIGINT NOT NULL, UNIQUE (subscription_id, period_end))
                """,
                "CREATE INDEX invoices_customer ON invoices (customer_id, id)",
                "ALTER TABLE usage_events ADD COLUMN late_invoice TEXT",
                "CREATE INDEX usage_events_late ON usage_events (subscription_id, id) WHERE late_invoice IS NOT NULL",
            ]
        },
        Step(version: 7) { _ in
            [
                // Usage is read from the aggregates; an index no query uses only slows ingestion.
                "DROP INDEX usage_events_subscription_time",
            ]
        },
        Step(version: 8) { kind in
            // An event's key becomes its id and its sender's time (`UsageEvent.Key`): retries carry
            // both, and new keys land at the index's growing end instead of on a random page.
            // Stored events keep their time in the key unless their sender gave none: a time the
            // collector read is a JSON string (anything else was taken as no time, or refused).
            let senderGaveNoTime = switch kind {
            case .sqlite: """
                (source IN ('api_log', 'action') AND json_type(body, '$.request.time') IS NOT 'text')
                OR (source = 'cloudevent' AND json_type(body, '$.time') IS NOT 'text')
                """
            case .postgres: """
                (source IN ('api_log', 'action') AND json_typeof(body::json #> '{request,time}') IS DISTINCT FROM 'string')
                OR (source = 'cloudevent' AND json_typeof(body::json -> 'time') IS DISTINCT FROM 'string')
                """
            }
            let keyedAt = "CASE WHEN \(senderGaveNoTime) THEN 0 ELSE occurred_at END"
            let columns = """
                id, source, name, occurred_at, subscription_id, customer_id, product_id, endpoint, method, path, status,
                latency_us, request_bytes, response_bytes, billable, weight, body, bucket_at, late_invoice
                """
            let key = "CREATE UNIQUE INDEX usage_events_key ON usage_events (keyed_at, id)"
            // Late events are listed in (id, keyed_at) order.
            let late = "CREATE INDEX usage_events_late ON usage_events (subscription_id, id, keyed_at) WHERE late_invoice IS NOT NULL"
            switch kind {
            case .sqlite:
                // SQLite cannot drop a primary key: the table is copied.
                return [
                    """
                    CREATE TABLE usage_events_keyed (
                        id TEXT NOT NULL, keyed_at BIGINT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL,
                        occurred_at BIGINT NOT NULL, subscription_id TEXT, customer_id TEXT, product_id TEXT, endpoint TEXT,
                        method TEXT, path TEXT, status BIGINT, latency_us BIGINT, request_bytes BIGINT, response_bytes BIGINT,
                        billable BIGINT NOT NULL, weight BIGINT NOT NULL DEFAULT 1, body TEXT, bucket_at BIGINT, late_invoice TEXT)
                    """,
                    "INSERT INTO usage_events_keyed (keyed_at, \(columns)) SELECT \(keyedAt), \(columns) FROM usage_events ORDER BY rowid",
                    "DROP TABLE usage_events",
                    "ALTER TABLE usage_events_keyed RENAME TO usage_events",
                    key,
                    late,
                ]
            case .postgres:
                return [
                    "ALTER TABLE usage_events ADD COLUMN keyed_at BIGINT",
                    "UPDATE usage_events SET keyed_at = \(keyedAt)",
                    "ALTER TABLE usage_events ALTER COLUMN keyed_at SET NOT NULL",
                    "ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey",
                    key,
                    "DROP INDEX usage_events_late",
                    late,
                ]
            }
        },
        Step(version: 9) { _ in
            // The browser's people (issue 18): sign-in sessions of the portal and the dashboard, and
            // the portal's one-time sign-in links. Only SHA-256 digests of the secrets are stored.
            [
                """
                CREATE TABLE web_sessions (
                    id_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, customer_id TEXT,
                    created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)
                """,
                "CREATE INDEX web_sessions_expiry ON web_sessions (expires_at)",
                """
                CREATE TABLE portal_links (
                    token_hash TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id),
                    created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT)
                """,
                "CREATE INDEX portal_links_expiry ON portal_links (expires_at)",
            ]
        },
        Step(version: 10) { _ in
            [
                // Billing providers (DESIGN §3.8): a customer's Stripe id, an invoice's push to Stripe
                // with a durable record of each step, and when a subscription's dunning started.
                "ALTER TABLE customers ADD COLUMN stripe_customer TEXT",
                "ALTER TABLE subscriptions ADD COLUMN dunning_since BIGINT",
                """
                CREATE TABLE stripe_invoices (
                    invoice_id TEXT PRIMARY KEY, state TEXT NOT NULL, stripe_invoice TEXT, stripe_status TEXT,
                    hosted_url TEXT, payment_failed_at BIGINT, last_error TEXT, updated_at BIGINT NOT NULL)
                """,
                "CREATE INDEX stripe_invoices_stripe ON stripe_invoices (stripe_invoice)",
                """
                CREATE TABLE stripe_push_steps (
                    invoice_id TEXT NOT NULL, step TEXT NOT NULL, state TEXT NOT NULL, result TEXT,
                    updated_at BIGINT NOT NULL, PRIMARY KEY (invoice_id, step))
                """,
            ]
        },
        Step(version: 11) { kind in
            // PostgreSQL tells every node at once when the catalog or a subscription changes
            // (GatewaySync listens; its poll is the fallback). One notice per statement.
            guard kind == .postgres else { return [] }
            return [
                """
                CREATE OR REPLACE FUNCTION tollgate_notify_change() RETURNS trigger AS $$
                BEGIN PERFORM pg_notify('\(TollgateStore.changeChannel)', TG_TABLE_NAME); RETURN NULL; END $$ LANGUAGE plpgsql
                """,
            ] + ["subscriptions", "products", "plans", "meters"].map { table in
                """
                CREATE TRIGGER \(table)_changed AFTER INSERT OR UPDATE OR DELETE ON \(table)
                FOR EACH STATEMENT EXECUTE FUNCTION tollgate_notify_change()
                """
            }
        },
        Step(version: 12) { kind in
            // Quotas shared by several gateway nodes (Store+Quota.swift): a counter's total can
            // never pass its quota; each node's holding and the calls it answered from it; each
            // node's lease time-out, renewed while it lives.
            guard kind == .postgres else { return [] }
            return [
                """
                CREATE TABLE quota_counters (
                    subscription_id TEXT NOT NULL, plan_id TEXT NOT NULL, endpoint TEXT NOT NULL, quota_window TEXT NOT NULL,
                    window_start BIGINT NOT NULL, window_end BIGINT NOT NULL, quota BIGINT NOT NULL,
                    granted BIGINT NOT NULL CHECK (granted >= 0),
                    PRIMARY KEY (subscription_id, plan_id, endpoint, quota_window, window_start))
                """,
                """
                CREATE TABLE quota_holdings (
                    subscription_id TEXT NOT NULL, plan_id TEXT NOT NULL, endpoint TEXT NOT NULL, quota_window TEXT NOT NULL,
                    window_start BIGINT NOT NULL, node TEXT NOT NULL, granted BIGINT NOT NULL, used BIGINT NOT NULL,
                    PRIMARY KEY (subscription_id, plan_id, endpoint, quota_window, window_start, node))
                """,
                "CREATE INDEX quota_holdings_node ON quota_holdings (node)",
                "CREATE TABLE quota_nodes (node TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
                // What single-node leases held is counted as granted, so an upgrade mid-window
                // gives nothing away (the quota is corrected at the first lease; the end is a
                // bound for forgetting the counter, 400 days on).
                """
                INSERT INTO quota_counters (subscription_id, plan_id, endpoint, quota_window, window_start, window_end, quota, granted)
                SELECT subscription_id, plan_id, endpoint, quota_window, window_start, window_start + 34560000000000, leased, leased
                FROM quota_leases
                """,
            ]
        },
        Step(version: 13) { kind in
            // The period close sums a page of subscriptions' aggregates over their periods: on
            // PostgreSQL the key carries the summed columns, so that those rows are read from the
            // index alone (a heap page per row before: 4x the time for 10,000 subscriptions).
            // SQLite's close reads them fast enough as they are.
            guard kind == .postgres else { return [] }
            return [
                """
                CREATE UNIQUE INDEX meter_aggregates_key ON meter_aggregates (subscription_id, meter_id, bucket_at)
                INCLUDE (event_count, sum_units, sum_nanos, max_units, latest_at)
                """,
                """
                ALTER TABLE meter_aggregates DROP CONSTRAINT meter_aggregates_pkey,
                ADD CONSTRAINT meter_aggregates_pkey PRIMARY KEY USING INDEX meter_aggregates_key
                """,
            ]
        },
    ]

    /// Applies every step not yet applied (up to `version`), each in its own transaction.
    static func run(on backend: any SQLBackend, through version: Int = .max) async throws {
        try await backend.withSQL { database in
            try await database.raw(
                "CREATE TABLE IF NOT EXISTS tollgate_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
            ).run()
        }
        for step in steps where step.version <= version {
            let kind = backend.kind
            try await backend.transaction { database in
                let applied = try await database.raw(
                    "SELECT version FROM tollgate_migrations WHERE version = \(bind: step.version)"
                ).first()
                guard applied == nil else { return }
                for statement in step.statements(kind) {
                    try await database.raw(SQLQueryString(statement)).run()
                }
                try await database.raw(
                    "INSERT INTO tollgate_migrations (version, applied_at) VALUES (\(bind: step.version), \(bind: Timestamp.now))"
                ).run()
            }
        }
    }
}
