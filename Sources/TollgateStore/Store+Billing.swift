import Foundation
import SQLKit
import TollgateCore

/// A subscription as the period close reads it: its plans over time and how far it is invoiced.
public struct BillingCandidate: Sendable {
    public var subscription: Subscription
    /// Plan ids in force from each date, in order; the first from the start.
    public var plans: [(from: Date, plan: String)]
    /// The latest `period_end` of its invoices; nil when it has none.
    public var invoicedThrough: Date?
}

/// Which meters to value for one subscription over one span (`TollgateStore.meterValues`).
public struct MeterValuesRequest: Sendable {
    public var subscription: String
    public var span: TimeSpan
    public var meters: [Meter]

    public init(subscription: String, span: TimeSpan, meters: [Meter]) {
        self.subscription = subscription
        self.span = span
        self.meters = meters
    }
}

/// A usage event stored after its period was invoiced.
public struct LateEvent: Sendable {
    public var id: String
    /// The time half of the event's key (`UsageEvent.Key`).
    public var keyedAt: Int64
    public var name: String
    public var source: String
    public var occurredAt: Date
    public var invoice: String
}

extension TollgateStore {
    // MARK: Plans over time

    func recordPlan(_ plan: String, of subscription: String, from micros: Int, on database: any SQLDatabase) async throws {
        try await database.raw("""
            INSERT INTO subscription_plans (subscription_id, from_at, plan_id) VALUES (\(bind: subscription), \(bind: micros), \(bind: plan))
            ON CONFLICT (subscription_id, from_at) DO UPDATE SET plan_id = excluded.plan_id
            """).run()
    }

    // MARK: Closing

    /// Subscriptions that may have periods to invoice, among the next `limit` in id order after
    /// `cursor`: active ones, and terminated ones whose final invoice is not issued yet. The page's
    /// cursor is the last subscription looked at (nil at the end).
    public func billingCandidates(after cursor: String, limit: Int) async throws -> Page<BillingCandidate> {
        try await backend.read { database in
            let rows = try await database.raw("""
                SELECT s.*, (SELECT MAX(i.period_end) FROM invoices i WHERE i.subscription_id = s.id) AS invoiced_through
                FROM subscriptions s WHERE s.id > \(bind: cursor) ORDER BY s.id LIMIT \(bind: limit)
                """).all()
            guard let last = try rows.last?.decode(column: "id", as: String.self) else { return Page(items: [], nextCursor: nil) }
            let planRows = try await database.raw("""
                SELECT subscription_id, from_at, plan_id FROM subscription_plans
                WHERE subscription_id > \(bind: cursor) AND subscription_id <= \(bind: last) ORDER BY subscription_id, from_at
                """).all()
            var plans: [String: [(from: Date, plan: String)]] = [:]
            for row in planRows {
                plans[try row.decode(column: "subscription_id", as: String.self), default: []].append(
                    (Timestamp.date(try row.decode(column: "from_at", as: Int.self)), try row.decode(column: "plan_id", as: String.self)))
            }
            let candidates: [BillingCandidate] = try rows.compactMap { row in
                let subscription = try self.subscription(from: row)
                let through = try row.decode(column: "invoiced_through", as: Int?.self).map(Timestamp.date)
                if let ended = subscription.terminatedAt, let through, through >= ended { return nil }
                let history = plans[subscription.id] ?? []
                return BillingCandidate(
                    subscription: subscription,
                    plans: history.isEmpty ? [(subscription.startedAt, subscription.plan)] : history,
                    invoicedThrough: through)
            }
            return Page(items: candidates, nextCursor: rows.count < limit ? nil : last)
        }
    }

    /// Every meter's value for one subscription over `span` (buckets starting inside it), from the
    /// aggregates: sums, maxima and distinct counts are taken by the database.
    public func meterValues(subscription: String, span: TimeSpan, meters: [Meter]) async throws -> [String: Decimal] {
        guard !meters.isEmpty else { return [:] }
        return try await meterValues([MeterValuesRequest(subscription: subscription, span: span, meters: meters)])[0]
    }

    /// The meter values of many subscriptions and spans (a page of the period close), in the
    /// order asked. On PostgreSQL the aggregates of all of them are summed by one statement;
    /// only maxima, latest values and distinct counts take a statement of their own.
    public func meterValues(_ requests: [MeterValuesRequest]) async throws -> [[String: Decimal]] {
        let kind = backend.kind
        guard requests.contains(where: { !$0.meters.isEmpty }) else { return requests.map { _ in [:] } }
        return try await backend.read { database in
            var totals: [[String: PeriodTotal]] = Array(repeating: [:], count: requests.count)
            // An empty span (a first invoice, billed in advance) has no buckets to read.
            let asked = requests.indices.filter { !requests[$0].meters.isEmpty && requests[$0].span.start < requests[$0].span.end }
            if kind == .postgres, !asked.isEmpty {
                var columns = ColumnArrays([.text, .bigint, .bigint, .bigint])
                var meterIDs: Set<String> = []
                for index in asked {
                    columns.arrays[0].append(requests[index].subscription)
                    columns.arrays[1].append(Micros.of(requests[index].span.start))
                    columns.arrays[2].append(Micros.of(requests[index].span.end))
                    columns.arrays[3].append(Int64(index))
                    meterIDs.formUnion(requests[index].meters.map(\.id))
                }
                // Only the meters asked for: the aggregate key starts (subscription, meter), so the
                // rows of other meters (each endpoint's calls among them) are never read.
                var meters = PostgresArray(.text)
                for id in meterIDs.sorted() { meters.append(id) }
                let rows = try await database.raw("""
                    SELECT r.request, a.meter_id, \(unsafeRaw: Self.totalColumns)
                    FROM \(columns.unnest(as: "r", columns: ["subscription_id", "start_at", "end_at", "request"]))
                    JOIN meter_aggregates a ON a.subscription_id = r.subscription_id AND a.meter_id = ANY(\(bind: meters)::text[])
                    AND a.bucket_at >= r.start_at AND a.bucket_at < r.end_at
                    GROUP BY r.request, a.meter_id
                    """).all()
                for row in rows {
                    totals[Int(try row.decode(column: "request", as: Int64.self))][try row.decode(column: "meter_id", as: String.self)] =
                        try Self.periodTotal(row)
                }
            } else {
                for index in asked { totals[index] = try await Self.periodTotals(requests[index], on: database) }
            }
            var values: [[String: Decimal]] = []
            for (index, request) in requests.enumerated() {
                values.append(try await Self.meterValues(request, totals: totals[index], on: database))
            }
            return values
        }
    }

    /// What the aggregates of one meter add up to over a span.
    private struct PeriodTotal {
        var events: Int64
        var sum: MeterNumber
        var maxUnits: Int64?
        var latestAt: Int64?
    }

    /// `SUM`s and `MAX`es of each requested subscription's aggregates over its span, by meter.
    private static let totalColumns = """
        CAST(SUM(event_count) AS BIGINT) AS events, CAST(SUM(sum_units) AS BIGINT) AS sum_units,
        CAST(SUM(sum_nanos) AS BIGINT) AS sum_nanos, MAX(max_units) AS max_units, MAX(latest_at) AS latest_at
        """

    private static func periodTotals(_ request: MeterValuesRequest, on database: any SQLDatabase) async throws -> [String: PeriodTotal] {
        let rows = try await database.raw("""
            SELECT meter_id, \(unsafeRaw: totalColumns) FROM meter_aggregates
            WHERE subscription_id = \(bind: request.subscription) AND meter_id IN (\(binds: request.meters.map(\.id)))
            AND bucket_at >= \(bind: Micros.of(request.span.start)) AND bucket_at < \(bind: Micros.of(request.span.end))
            GROUP BY meter_id
            """).all()
        var totals: [String: PeriodTotal] = [:]
        for row in rows { totals[try row.decode(column: "meter_id", as: String.self)] = try periodTotal(row) }
        return totals
    }

    private static func periodTotal(_ row: any SQLRow) throws -> PeriodTotal {
        PeriodTotal(
            events: try row.decode(column: "events", as: Int64.self),
            sum: MeterNumber(units: try row.decode(column: "sum_units", as: Int64.self), nanos: try row.decode(column: "sum_nanos", as: Int64.self)),
            maxUnits: try row.decode(column: "max_units", as: Int64?.self), latestAt: try row.decode(column: "latest_at", as: Int64?.self))
    }

    /// One request's meter values from its totals, with the statements maxima, latest values and
    /// distinct counts need.
    private static func meterValues(
        _ request: MeterValuesRequest, totals: [String: PeriodTotal], on database: any SQLDatabase
    ) async throws -> [String: Decimal] {
        let subscription = request.subscription
        let start = Micros.of(request.span.start)
        let end = Micros.of(request.span.end)
        var values: [String: Decimal] = [:]
        for meter in request.meters {
            let range: SQLQueryString = """
                subscription_id = \(bind: subscription) AND meter_id = \(bind: meter.id)
                AND bucket_at >= \(bind: start) AND bucket_at < \(bind: end)
                """
            if meter.aggregation == .uniqueCount {
                // Distinct values live apart from the aggregate rows.
                let distinct = try await database.raw(
                    "SELECT COUNT(DISTINCT value) AS n FROM meter_uniques WHERE \(range)"
                ).first()?.decode(column: "n", as: Int.self) ?? 0
                values[meter.id] = Metering.value(of: meter, aggregates: [], distinctValues: distinct).value
                continue
            }
            guard let total = totals[meter.id] else {
                values[meter.id] = Metering.value(of: meter, aggregates: [], distinctValues: 0).value
                continue
            }
            var aggregate = MeterAggregate(count: total.events, sum: total.sum)
            switch meter.aggregation {
            case .max:
                if let units = total.maxUnits {
                    let nanos = try await database.raw(
                        "SELECT MAX(max_nanos) AS nanos FROM meter_aggregates WHERE \(range) AND max_units = \(bind: units)"
                    ).first()?.decode(column: "nanos", as: Int64?.self)
                    aggregate.max = MeterNumber(units: units, nanos: nanos ?? 0)
                }
            case .latest:
                if let at = total.latestAt,
                   let latest = try await database.raw(
                       "SELECT latest_units, latest_nanos FROM meter_aggregates WHERE \(range) AND latest_at = \(bind: at) LIMIT 1"
                   ).first() {
                    aggregate.latestAt = at
                    aggregate.latest = MeterNumber(
                        units: try latest.decode(column: "latest_units", as: Int64.self),
                        nanos: try latest.decode(column: "latest_nanos", as: Int64.self))
                }
            case .count, .sum, .uniqueCount:
                break
            }
            values[meter.id] = Metering.value(of: meter, aggregates: [aggregate], distinctValues: 0).value
        }
        return values
    }

    /// Stores new invoices, each with its webhook event (if any) in the same transaction. The
    /// database refuses a second invoice for the same subscription and period end, so a close that
    /// races another, or repeats one that died half-way, adds nothing twice. Returns the ids stored.
    public func insertInvoices(_ invoices: [(invoice: Invoice, webhook: WebhookDelivery?)]) async throws -> [String] {
        guard !invoices.isEmpty else { return [] }
        if backend.kind == .postgres { return try await insertInvoicesPostgres(invoices) }
        return try await backend.transaction { database in
            var stored: [String] = []
            for (invoice, webhook) in invoices {
                let row = try await database.raw("""
                    INSERT INTO invoices (id, subscription_id, customer_id, product_id, currency, period_start, period_end, status,
                    lines, total, created_at, finalized_at, settled_at, updated_at)
                    VALUES (\(bind: invoice.id), \(bind: invoice.subscription), \(bind: invoice.customer), \(bind: invoice.product),
                    \(bind: invoice.currency), \(bind: Timestamp.micros(invoice.period.start)), \(bind: Timestamp.micros(invoice.period.end)),
                    \(bind: invoice.status.rawValue), \(bind: Self.linesJSON(invoice)), \(bind: invoice.total.description),
                    \(bind: Timestamp.micros(invoice.createdAt)), \(bind: invoice.finalizedAt.map(Timestamp.micros)),
                    \(bind: invoice.settledAt.map(Timestamp.micros)), \(bind: Timestamp.now))
                    ON CONFLICT (subscription_id, period_end) DO NOTHING RETURNING id
                    """).first()
                guard row != nil else { continue }
                stored.append(invoice.id)
                if let webhook { try await self.enqueue(webhook, on: database) }
            }
            return stored
        }
    }

    /// PostgreSQL: the invoices as one array per column in one statement, then the webhook events
    /// of those it stored, in the same transaction.
    private func insertInvoicesPostgres(_ invoices: [(invoice: Invoice, webhook: WebhookDelivery?)]) async throws -> [String] {
        var columns = ColumnArrays(Self.invoiceInsertColumns.map(\.element))
        for (invoice, _) in invoices {
            columns.arrays[0].append(invoice.id)
            columns.arrays[1].append(invoice.subscription)
            columns.arrays[2].append(invoice.customer)
            columns.arrays[3].append(invoice.product)
            columns.arrays[4].append(invoice.currency)
            columns.arrays[5].append(Micros.of(invoice.period.start))
            columns.arrays[6].append(Micros.of(invoice.period.end))
            columns.arrays[7].append(invoice.status.rawValue)
            columns.arrays[8].append(Self.linesJSON(invoice))
            columns.arrays[9].append(invoice.total.description)
            columns.arrays[10].append(Micros.of(invoice.createdAt))
            columns.arrays[11].append(invoice.finalizedAt.map { Micros.of($0) })
            columns.arrays[12].append(invoice.settledAt.map { Micros.of($0) })
            columns.arrays[13].append(Int64(Timestamp.now))
        }
        let names = Self.invoiceInsertColumns.map(\.name)
        let insert: SQLQueryString = """
            INSERT INTO invoices (\(unsafeRaw: names.joined(separator: ", "))) SELECT * FROM \(columns.unnest(as: "i", columns: names))
            ON CONFLICT (subscription_id, period_end) DO NOTHING RETURNING id
            """
        return try await backend.transaction { database in
            let inserted = Set(try await database.raw(insert).all().map { try $0.decode(column: "id", as: String.self) })
            var stored: [String] = []
            for (invoice, webhook) in invoices where inserted.contains(invoice.id) {
                stored.append(invoice.id)
                if let webhook { try await self.enqueue(webhook, on: database) }
            }
            return stored
        }
    }

    private static let invoiceInsertColumns: [(name: String, element: PostgresArray.Element)] = [
        ("id", .text), ("subscription_id", .text), ("customer_id", .text), ("product_id", .text), ("currency", .text),
        ("period_start", .bigint), ("period_end", .bigint), ("status", .text), ("lines", .text), ("total", .text),
        ("created_at", .bigint), ("finalized_at", .bigint), ("settled_at", .bigint), ("updated_at", .bigint),
    ]

    private static func linesJSON(_ invoice: Invoice) -> String {
        DocumentNode(.list(invoice.lines.map { line in
            .object([
                ("description", .text(line.description)), ("plan", .text(line.plan)), ("price", .integer(line.price)),
                ("quantity", .text(line.quantity.description)), ("amount", .text(line.amount.description)),
                ("start", .integer(Timestamp.micros(line.span.start))), ("end", .integer(Timestamp.micros(line.span.end))),
            ])
        })).jsonText()
    }

    /// An invoice row with its Stripe push, if any (`SELECT \(invoiceColumns) FROM \(invoiceTables)`).
    static let invoiceColumns = """
        i.*, s.state AS stripe_state, s.stripe_invoice, s.stripe_status, s.hosted_url AS stripe_hosted_url, \
        s.last_error AS stripe_last_error
        """
    static let invoiceTables = "invoices i LEFT JOIN stripe_invoices s ON s.invoice_id = i.id"

    func invoice(from row: any SQLRow) throws -> Invoice {
        var invoice = try plainInvoice(from: row)
        if row.contains(column: "stripe_state"), let state = try row.decode(column: "stripe_state", as: String?.self),
           state != StripePushState.skipped.rawValue {
            invoice.provider = ProviderInvoice(
                name: "stripe", invoice: try row.decode(column: "stripe_invoice", as: String?.self),
                status: try row.decode(column: "stripe_status", as: String?.self) ?? state,
                hostedURL: try row.decode(column: "stripe_hosted_url", as: String?.self),
                lastError: state == StripePushState.pushed.rawValue ? nil : try row.decode(column: "stripe_last_error", as: String?.self))
        }
        return invoice
    }

    private func plainInvoice(from row: any SQLRow) throws -> Invoice {
        let id = try row.decode(column: "id", as: String.self)
        let lines = try DocumentNode.parseJSON(Array(try row.decode(column: "lines", as: String.self).utf8))
        func decimal(_ node: DocumentNode?) -> Decimal { node?.scalarText.flatMap(Amount.init)?.value ?? 0 }
        func date(_ node: DocumentNode?) -> Date { Timestamp.date(node?.scalarText.flatMap { Int($0) } ?? 0) }
        guard case .list(let items) = lines.value else { throw StoreError.conflict("invoice \"\(id)\" has unreadable lines") }
        return Invoice(
            id: id,
            subscription: try row.decode(column: "subscription_id", as: String.self),
            customer: try row.decode(column: "customer_id", as: String.self),
            product: try row.decode(column: "product_id", as: String.self),
            currency: try row.decode(column: "currency", as: String.self),
            period: TimeSpan(
                start: Timestamp.date(try row.decode(column: "period_start", as: Int.self)),
                end: Timestamp.date(try row.decode(column: "period_end", as: Int.self))),
            status: InvoiceStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .void,
            lines: items.map { item in
                InvoiceLine(
                    description: item["description"]?.scalarText ?? "", plan: item["plan"]?.scalarText ?? "",
                    price: item["price"]?.scalarText.flatMap { Int($0) } ?? 0, quantity: decimal(item["quantity"]),
                    amount: decimal(item["amount"]), span: TimeSpan(start: date(item["start"]), end: date(item["end"])))
            },
            createdAt: Timestamp.date(try row.decode(column: "created_at", as: Int.self)),
            finalizedAt: try row.decode(column: "finalized_at", as: Int?.self).map(Timestamp.date),
            settledAt: try row.decode(column: "settled_at", as: Int?.self).map(Timestamp.date))
    }

    // MARK: Invoices

    public func invoice(_ id: String) async throws -> Invoice? {
        let row = try await backend.read { database in
            try await database.raw("SELECT \(unsafeRaw: Self.invoiceColumns) FROM \(unsafeRaw: Self.invoiceTables) WHERE i.id = \(bind: id)").first()
        }
        return try row.map(invoice(from:))
    }

    /// Invoices in id order (ids are time-ordered), optionally of one subscription, customer or status.
    public func invoices(
        subscription: String? = nil, customer: String? = nil, status: InvoiceStatus? = nil, after cursor: String? = nil, limit: Int
    ) async throws -> Page<Invoice> {
        let rows = try await backend.read { database in
            var query: SQLQueryString = "SELECT \(unsafeRaw: Self.invoiceColumns) FROM \(unsafeRaw: Self.invoiceTables) WHERE i.id > \(bind: cursor ?? "")"
            if let subscription { query += " AND i.subscription_id = \(bind: subscription)" }
            if let customer { query += " AND i.customer_id = \(bind: customer)" }
            if let status { query += " AND i.status = \(bind: status.rawValue)" }
            query += " ORDER BY i.id LIMIT \(bind: limit + 1)"
            return try await database.raw(query).all()
        }
        return Page(try rows.map(invoice(from:)), limit: limit, cursor: \.id)
    }

    /// Moves an invoice to `status` if its current status allows it (a conflict otherwise), with
    /// the webhook event `webhook` makes of the result, in one transaction. Moving to the status it
    /// already has changes nothing.
    public func setInvoiceStatus(
        _ id: String, to status: InvoiceStatus, webhook: @Sendable (Invoice) -> WebhookDelivery? = { _ in nil }
    ) async throws -> Invoice {
        try await backend.transaction { database in
            guard let row = try await database.raw(
                "SELECT \(unsafeRaw: Self.invoiceColumns) FROM \(unsafeRaw: Self.invoiceTables) WHERE i.id = \(bind: id)"
            ).first() else {
                throw StoreError.notFound("no invoice \"\(id)\"")
            }
            var invoice = try self.invoice(from: row)
            if invoice.status == status { return invoice }
            guard invoice.status.next.contains(status) else {
                throw StoreError.conflict("invoice \"\(id)\" is \(invoice.status.rawValue); it cannot become \(status.rawValue)")
            }
            let now = Date()
            invoice.status = status
            if status == .finalized { invoice.finalizedAt = now } else { invoice.settledAt = now }
            try await database.raw("""
                UPDATE invoices SET status = \(bind: status.rawValue), finalized_at = \(bind: invoice.finalizedAt.map(Timestamp.micros)),
                settled_at = \(bind: invoice.settledAt.map(Timestamp.micros)), updated_at = \(bind: Timestamp.now) WHERE id = \(bind: id)
                """).run()
            if let delivery = webhook(invoice) { try await self.enqueue(delivery, on: database) }
            return invoice
        }
    }

    /// A subscription's events stored after their period was invoiced, in id order (then by
    /// the key's time: one id may be two events). The cursor is `KEYED_AT:ID` of the last one;
    /// a bare id goes on after every event with that id.
    public func lateEvents(subscription: String, after cursor: String? = nil, limit: Int) async throws -> Page<LateEvent> {
        let after: (id: String, keyedAt: Int64) = {
            guard let cursor else { return ("", .min) }
            guard let colon = cursor.firstIndex(of: ":"), let keyedAt = Int64(cursor[..<colon]) else { return (cursor, .max) }
            return (String(cursor[cursor.index(after: colon)...]), keyedAt)
        }()
        let rows = try await backend.read { database in
            try await database.raw("""
                SELECT id, keyed_at, name, source, occurred_at, late_invoice FROM usage_events
                WHERE subscription_id = \(bind: subscription) AND late_invoice IS NOT NULL
                AND (id, keyed_at) > (\(bind: after.id), \(bind: after.keyedAt))
                ORDER BY id, keyed_at LIMIT \(bind: limit + 1)
                """).all()
        }
        let items = try rows.map { row in
            LateEvent(
                id: try row.decode(column: "id", as: String.self), keyedAt: try row.decode(column: "keyed_at", as: Int64.self),
                name: try row.decode(column: "name", as: String.self),
                source: try row.decode(column: "source", as: String.self),
                occurredAt: Timestamp.date(try row.decode(column: "occurred_at", as: Int.self)),
                invoice: try row.decode(column: "late_invoice", as: String.self))
        }
        return Page(items, limit: limit) { "\($0.keyedAt):\($0.id)" }
    }
}
