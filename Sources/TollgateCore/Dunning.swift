import Foundation

/// What non-payment does to a subscription (DESIGN §3.8): a failed payment makes it `past_due`;
/// still unpaid `grace` after the first failure it becomes `suspended` (the gateway answers 402);
/// once nothing it owes is unpaid it is `active` again. Terminated subscriptions stay terminated.
/// Pure: times come in as arguments.
public enum Dunning {
    /// The status after a payment of one of its invoices failed at `now`, and when its dunning started.
    public static func paymentFailed(status: SubscriptionStatus, since: Date?, now: Date) -> (SubscriptionStatus, Date?) {
        switch status {
        case .active: (.pastDue, since ?? now)
        case .pastDue, .suspended: (status, since ?? now)
        case .terminated: (.terminated, since)
        }
    }

    /// The status once `since` (the first unpaid failure) lies `grace` or more in the past.
    public static func overdue(status: SubscriptionStatus, since: Date?, grace: TimeInterval, now: Date) -> SubscriptionStatus {
        guard status == .pastDue, let since, now.timeIntervalSince(since) >= grace else { return status }
        return .suspended
    }

    /// The status after an invoice was paid: `active` when no other failed invoice is unpaid.
    public static func paid(status: SubscriptionStatus, stillUnpaid: Int) -> SubscriptionStatus {
        guard status == .pastDue || status == .suspended, stillUnpaid == 0 else { return status }
        return .active
    }
}
