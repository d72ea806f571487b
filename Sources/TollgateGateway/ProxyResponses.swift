import NIOCore
import NIOHTTP1
import TollgateCore

/// The answers the gateway gives itself, with Kong's wording (DESIGN §3.3).
enum ProxyRefusal: Sendable {
    case noCredential
    case invalidCredential
    case wrongProduct
    /// The subscription is suspended for non-payment (DESIGN §3.8).
    case paymentRequired
    case noRoute
    case badRequest(String)
    case badGateway
    case gatewayTimeout
    case usageNotRecorded
    /// `TRACE` and `CONNECT`.
    case methodNotAllowed
    /// A WebSocket or other protocol upgrade.
    case upgradeNotSupported
    /// The request body paused longer than the body timeout.
    case requestTimeout
    /// The product has as many upstream connections open as it may.
    case upstreamBusy
    /// The usage queue is full: a billable call cannot be recorded now.
    case overloaded
    /// A request body larger than a local path accepts.
    case payloadTooLarge
    /// A prepaid quota is used up: retry after this many seconds.
    case rateLimited(retryAfter: Int)

    var status: HTTPResponseStatus {
        switch self {
        case .noCredential, .invalidCredential: .unauthorized
        case .wrongProduct: .forbidden
        case .paymentRequired: .paymentRequired
        case .noRoute: .notFound
        case .badRequest: .badRequest
        case .badGateway: .badGateway
        case .gatewayTimeout: .gatewayTimeout
        case .usageNotRecorded, .upstreamBusy, .overloaded: .serviceUnavailable
        case .methodNotAllowed: .methodNotAllowed
        case .upgradeNotSupported: .badRequest
        case .requestTimeout: .requestTimeout
        case .rateLimited: .tooManyRequests
        case .payloadTooLarge: .payloadTooLarge
        }
    }

    var message: String {
        switch self {
        case .noCredential: "No API key found in request"
        case .invalidCredential: "Invalid authentication credentials"
        case .wrongProduct: "You cannot consume this service"
        case .paymentRequired: "Payment required"
        case .noRoute: "no Route matched with those values"
        case .badRequest(let reason): reason
        case .badGateway: "An invalid response was received from the upstream server"
        case .gatewayTimeout: "The upstream server is timing out"
        case .usageNotRecorded: "The call could not be recorded; try again"
        case .methodNotAllowed: "Method not allowed"
        case .upgradeNotSupported: "Protocol upgrades (such as WebSocket) are not supported"
        case .requestTimeout: "Request body timed out"
        case .upstreamBusy: "The upstream server is busy; try again"
        case .overloaded: "The gateway is overloaded; try again"
        case .rateLimited: "API rate limit exceeded"
        case .payloadTooLarge: "Request body too large"
        }
    }

    var extraHeaders: [(String, String)] {
        switch self {
        case .noCredential: [("WWW-Authenticate", "Key")]
        case .rateLimited(let retryAfter): [("Retry-After", String(retryAfter))]
        case .upstreamBusy, .overloaded, .usageNotRecorded: [("Retry-After", "1")]
        default: []
        }
    }

    /// The JSON body, `{"message":"..."}`.
    var body: String {
        var text = "{\"message\":"
        JSONText.appendString(message, to: &text)
        return text + "}"
    }
}
