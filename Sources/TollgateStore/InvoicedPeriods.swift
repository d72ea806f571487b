import TollgateCore

/// The periods already invoiced for some subscriptions, to tell which events arrive late:
/// an event that falls in an invoiced period is stored with that invoice's id and reported,
/// never rated again (DESIGN §3.5). When periods overlap, the earliest-ending invoice wins.
/// Both databases' writers find late events with it.
struct InvoicedPeriods: Sendable {
    private var periods: [String: [(invoice: String, period: Range<Int64>)]] = [:]
    /// Some subscription has an invoice (most batches find none).
    private var anyInvoice = false

    /// Whether the subscription's invoices were added (`loaded`), even if it has none.
    func knows(_ subscription: String) -> Bool { periods[subscription] != nil }

    /// Marks a subscription's invoices as all added.
    mutating func loaded(_ subscription: String) {
        if periods[subscription] == nil { periods[subscription] = [] }
    }

    /// Adds an invoice of a subscription; a subscription's invoices come in the order of their
    /// periods' ends.
    mutating func add(invoice: String, subscription: String, start: Int64, end: Int64) {
        // A first invoice's period is empty: no event falls in it.
        guard start < end else { return loaded(subscription) }
        periods[subscription, default: []].append((invoice, start..<end))
        anyInvoice = true
    }

    /// The invoice whose period the event falls in, if any.
    func invoice(of event: UsageEvent) -> String? {
        guard let subscription = event.subscription, let invoices = periods[subscription], !invoices.isEmpty else { return nil }
        let time = Micros.of(event.occurredAt)
        return invoices.first { $0.period.contains(time) }?.invoice
    }

    /// The late events' invoices, by the events' positions.
    func lateInvoices(_ events: [UsageEvent]) -> [Int: String] {
        guard anyInvoice else { return [:] }
        var late: [Int: String] = [:]
        // Through a buffer pointer: an array's element passed on is a copy with all its strings.
        events.withUnsafeBufferPointer { events in
            for position in events.indices {
                if let invoice = invoice(of: events[position]) { late[position] = invoice }
            }
        }
        return late
    }
}
