import Foundation
import SQLKit
import TollgateCore

/// Where an invoice's push to Stripe stands.
public enum StripePushState: String, Sendable {
    /// Steps remain (or the last attempt failed; it is tried again).
    case pushing
    /// Every step is done: Stripe holds the invoice.
    case pushed
    /// Nothing to push: its total is not above zero.
    case skipped
}

/// A subscription whose status a payment (or its absence) changed.
public struct DunningChange: Sendable {
    public var before: Subscription
    public var after: Subscription
}

extension TollgateStore {
    // MARK: Pushing

    /// Finalized invoices whose push to Stripe is not done, oldest first.
    public func stripePushCandidates(limit: Int) async throws -> [Invoice] {
        let rows = try await backend.read { database in
            try await database.raw("""
                SELECT \(unsafeRaw: Self.invoiceColumns) FROM \(unsafeRaw: Self.invoiceTables)
                WHERE i.status = 'finalized' AND (s.state IS NULL OR s.state = 'pushing') ORDER BY i.id LIMIT \(bind: limit)
                """).all()
        }
        return try rows.map(invoice(from:))
    }

    /// What is recorded of each step of an invoice's push.
    public func stripePushSteps(invoice: String) async throws -> [StripePushStep: StripeStepRecord] {
        let rows = try await backend.read { database in
            try await database.raw("SELECT step, state, result FROM stripe_push_steps WHERE invoice_id = \(bind: invoice)").all()
        }
        var records: [StripePushStep: StripeStepRecord] = [:]
        for row in rows {
            guard let step = StripePushStep(name: try row.decode(column: "step", as: String.self)),
                  let state = StripeStepRecord.State(rawValue: try row.decode(column: "state", as: String.self)) else { continue }
            records[step] = StripeStepRecord(state: state, result: try row.decode(column: "result", as: String?.self))
        }
        return records
    }

    /// Records a step of `invoice`'s push durably (nil: forget a `started` step that Stripe does
    /// not have). A created customer is kept on the customer, a created invoice on the push, in
    /// the same transaction.
    public func recordStripeStep(_ invoice: Invoice, _ step: StripePushStep, _ record: StripeStepRecord?) async throws {
        let now = Timestamp.now
        try await backend.transaction { database in
            try await database.raw("""
                INSERT INTO stripe_invoices (invoice_id, state, updated_at) VALUES (\(bind: invoice.id), 'pushing', \(bind: now))
                ON CONFLICT (invoice_id) DO NOTHING
                """).run()
            guard let record else {
                try await database.raw(
                    "DELETE FROM stripe_push_steps WHERE invoice_id = \(bind: invoice.id) AND step = \(bind: step.name)"
                ).run()
                return
            }
            try await database.raw("""
                INSERT INTO stripe_push_steps (invoice_id, step, state, result, updated_at)
                VALUES (\(bind: invoice.id), \(bind: step.name), \(bind: record.state.rawValue), \(bind: record.result), \(bind: now))
                ON CONFLICT (invoice_id, step) DO UPDATE SET state = excluded.state, result = excluded.result, updated_at = excluded.updated_at
                """).run()
            guard record.state == .done, let result = record.result else { return }
            switch step {
            case .customer:
                try await database.raw("""
                    UPDATE customers SET stripe_customer = \(bind: result), updated_at = \(bind: now)
                    WHERE id = \(bind: invoice.customer) AND stripe_customer IS NULL
                    """).run()
            case .invoice:
                try await database.raw("""
                    UPDATE stripe_invoices SET stripe_invoice = \(bind: result), updated_at = \(bind: now) WHERE invoice_id = \(bind: invoice.id)
                    """).run()
            default:
                break
            }
        }
    }

    /// Marks a push done, with the status Stripe gave the invoice.
    public func finishStripePush(_ invoice: String, status: String?, hostedURL: String?) async throws {
        try await backend.withSQL { database in
            try await database.raw("""
                UPDATE stripe_invoices SET state = 'pushed', stripe_status = COALESCE(\(bind: status), stripe_status),
                hosted_url = COALESCE(\(bind: hostedURL), hosted_url), last_error = NULL, updated_at = \(bind: Timestamp.now)
                WHERE invoice_id = \(bind: invoice)
                """).run()
        }
    }

    /// Marks an invoice as not pushed because its total is not above zero.
    public func skipStripePush(_ invoice: String) async throws {
        try await backend.withSQL { database in
            try await database.raw("""
                INSERT INTO stripe_invoices (invoice_id, state, updated_at) VALUES (\(bind: invoice), 'skipped', \(bind: Timestamp.now))
                ON CONFLICT (invoice_id) DO UPDATE SET state = 'skipped', updated_at = excluded.updated_at
                """).run()
        }
    }

    /// Keeps why the last attempt of a push failed (a message free of secrets).
    public func stripePushFailed(_ invoice: String, error: String) async throws {
        let now = Timestamp.now
        try await backend.withSQL { database in
            try await database.raw("""
                INSERT INTO stripe_invoices (invoice_id, state, last_error, updated_at) VALUES (\(bind: invoice), 'pushing', \(bind: error), \(bind: now))
                ON CONFLICT (invoice_id) DO UPDATE SET last_error = excluded.last_error, updated_at = excluded.updated_at
                """).run()
        }
    }

    // MARK: Payments

    /// Pushed invoices that Stripe has not settled yet (for the periodic sync), oldest first.
    public func openStripeInvoices(after cursor: String = "", limit: Int) async throws -> [Invoice] {
        let rows = try await backend.read { database in
            try await database.raw("""
                SELECT \(unsafeRaw: Self.invoiceColumns) FROM \(unsafeRaw: Self.invoiceTables)
                WHERE s.state = 'pushed' AND i.status = 'finalized' AND i.id > \(bind: cursor) ORDER BY i.id LIMIT \(bind: limit)
                """).all()
        }
        return try rows.map(invoice(from:))
    }

    /// The Tollgate invoice a Stripe invoice was pushed from.
    public func invoice(stripeInvoice: String) async throws -> Invoice? {
        let row = try await backend.read { database in
            try await database.raw("""
                SELECT \(unsafeRaw: Self.invoiceColumns) FROM \(unsafeRaw: Self.invoiceTables) WHERE s.stripe_invoice = \(bind: stripeInvoice)
                """).first()
        }
        return try row.map(invoice(from:))
    }

    /// Stripe says the invoice is paid: the invoice becomes `paid`, and its subscription `active`
    /// again when nothing else it owes failed to be paid (with `webhook`'s event), in one
    /// transaction. Repeating it changes nothing.
    public func stripeInvoicePaid(
        _ id: String, hostedURL: String?, webhook: @Sendable (Subscription) -> WebhookDelivery?
    ) async throws -> (invoice: Invoice, change: DunningChange?) {
        let now = Timestamp.now
        return try await backend.transaction { database in
            try await database.raw("""
                UPDATE stripe_invoices SET stripe_status = 'paid', payment_failed_at = NULL,
                hosted_url = COALESCE(\(bind: hostedURL), hosted_url), updated_at = \(bind: now) WHERE invoice_id = \(bind: id)
                """).run()
            try await database.raw("""
                UPDATE invoices SET status = 'paid', settled_at = \(bind: now), updated_at = \(bind: now)
                WHERE id = \(bind: id) AND status = 'finalized'
                """).run()
            guard let row = try await database.raw(
                "SELECT \(unsafeRaw: Self.invoiceColumns) FROM \(unsafeRaw: Self.invoiceTables) WHERE i.id = \(bind: id)"
            ).first() else { throw StoreError.notFound("no invoice \"\(id)\"") }
            let invoice = try self.invoice(from: row)
            let unpaid = try await database.raw("""
                SELECT COUNT(*) AS n FROM stripe_invoices s JOIN invoices i ON i.id = s.invoice_id
                WHERE i.subscription_id = \(bind: invoice.subscription) AND i.status = 'finalized' AND s.payment_failed_at IS NOT NULL
                """).first()?.decode(column: "n", as: Int.self) ?? 0
            let change = try await self.changeDunning(invoice.subscription, on: database, webhook: webhook) { status, since in
                let next = Dunning.paid(status: status, stillUnpaid: unpaid)
                return (next, next == .active ? nil : since)
            }
            return (invoice, change)
        }
    }

    /// Stripe says a payment of the invoice failed at `now`: its subscription becomes `past_due`
    /// (with `webhook`'s event), in one transaction. Repeating it changes nothing.
    public func stripePaymentFailed(
        _ id: String, status: String?, now: Date, webhook: @Sendable (Subscription) -> WebhookDelivery?
    ) async throws -> DunningChange? {
        try await backend.transaction { database in
            guard let row = try await database.raw(
                "SELECT \(unsafeRaw: Self.invoiceColumns) FROM \(unsafeRaw: Self.invoiceTables) WHERE i.id = \(bind: id)"
            ).first() else { throw StoreError.notFound("no invoice \"\(id)\"") }
            let invoice = try self.invoice(from: row)
            guard invoice.status == .finalized else { return nil }
            try await database.raw("""
                UPDATE stripe_invoices SET stripe_status = COALESCE(\(bind: status), stripe_status),
                payment_failed_at = COALESCE(payment_failed_at, \(bind: Timestamp.micros(now))), updated_at = \(bind: Timestamp.now)
                WHERE invoice_id = \(bind: id)
                """).run()
            return try await self.changeDunning(invoice.subscription, on: database, webhook: webhook) { status, since in
                Dunning.paymentFailed(status: status, since: since, now: now)
            }
        }
    }

    /// Whether a `past_due` subscription's dunning started `grace` or more before `now` (one cheap
    /// query, asked every second).
    public func hasOverdue(grace: TimeInterval, now: Date) async throws -> Bool {
        try await backend.read { database in
            try await database.raw("""
                SELECT id FROM subscriptions WHERE status = 'past_due' AND dunning_since IS NOT NULL
                AND dunning_since <= \(bind: Timestamp.micros(now.addingTimeInterval(-grace))) LIMIT 1
                """).first() != nil
        }
    }

    /// Suspends every `past_due` subscription whose dunning started `grace` or more before `now`.
    public func suspendOverdue(
        grace: TimeInterval, now: Date, webhook: @Sendable (Subscription) -> WebhookDelivery?
    ) async throws -> [DunningChange] {
        let due = try await backend.read { database in
            try await database.raw("""
                SELECT id FROM subscriptions WHERE status = 'past_due' AND dunning_since IS NOT NULL
                AND dunning_since <= \(bind: Timestamp.micros(now.addingTimeInterval(-grace)))
                """).all().map { try $0.decode(column: "id", as: String.self) }
        }
        var changes: [DunningChange] = []
        for id in due {
            let change = try await backend.transaction { database in
                try await self.changeDunning(id, on: database, webhook: webhook) { status, since in
                    (Dunning.overdue(status: status, since: since, grace: grace, now: now), since)
                }
            }
            if let change { changes.append(change) }
        }
        return changes
    }

    /// Applies `rule` to a subscription's status and dunning start inside a transaction; writes
    /// and enqueues `webhook`'s event only when the status changed.
    private func changeDunning(
        _ id: String, on database: any SQLDatabase, webhook: @Sendable (Subscription) -> WebhookDelivery?,
        _ rule: (SubscriptionStatus, Date?) -> (SubscriptionStatus, Date?)
    ) async throws -> DunningChange? {
        guard let row = try await database.raw("SELECT * FROM subscriptions WHERE id = \(bind: id)").first() else { return nil }
        let before = try subscription(from: row)
        let since = try row.decode(column: "dunning_since", as: Int?.self).map(Timestamp.date)
        let (status, newSince) = rule(before.status, since)
        guard status != before.status || newSince != since else { return nil }
        var after = before
        after.status = status
        try await database.raw("""
            UPDATE subscriptions SET status = \(bind: status.rawValue), dunning_since = \(bind: newSince.map(Timestamp.micros)),
            updated_at = \(bind: Timestamp.now) WHERE id = \(bind: id)
            """).run()
        guard status != before.status else { return nil }
        if let delivery = webhook(after) { try await enqueue(delivery, on: database) }
        return DunningChange(before: before, after: after)
    }
}
