import Foundation

/// One unit of usage as stored in the ledger: a proxied call, an API log, an action or a CloudEvent.
public struct UsageEvent: Sendable, Equatable {
    /// Where the event came from.
    public enum Source: String, Sendable {
        case gateway
        case apiLog = "api_log"
        case action
        case cloudEvent = "cloudevent"
    }

    /// Unique across the ledger; a second event with the same id is a duplicate.
    public var id: String
    public var source: Source
    /// `api_calls` for calls, the action name or CloudEvent type otherwise.
    public var name: String
    public var occurredAt: Date
    public var subscription: String?
    public var customer: String?
    public var product: String?
    /// The endpoint identifier the call matched, if any.
    public var endpoint: String?
    public var method: String?
    public var path: String?
    public var status: Int?
    public var latencyMicroseconds: Int?
    public var requestBytes: Int?
    public var responseBytes: Int?
    /// Whether the event may be billed (Tollgate's own refusals are not).
    public var billable: Bool
    public var weight: Int

    public init(
        id: String, source: Source, name: String = "api_calls", occurredAt: Date, subscription: String?, customer: String?,
        product: String?, endpoint: String?, method: String?, path: String?, status: Int?, latencyMicroseconds: Int?,
        requestBytes: Int?, responseBytes: Int?, billable: Bool, weight: Int = 1
    ) {
        self.id = id
        self.source = source
        self.name = name
        self.occurredAt = occurredAt
        self.subscription = subscription
        self.customer = customer
        self.product = product
        self.endpoint = endpoint
        self.method = method
        self.path = path
        self.status = status
        self.latencyMicroseconds = latencyMicroseconds
        self.requestBytes = requestBytes
        self.responseBytes = responseBytes
        self.billable = billable
        self.weight = weight
    }
}
