import NIOCore
import NIOHTTP1
import TollgateCore

/// The answers the gateway gives itself, with Kong's wording (DESIGN §3.3).
enum ProxyRefusal: Sendable {
    case noCredential
    case invalidCredential
    case wrongProduct
    case noRoute
    case badRequest(String)
    case badGateway
    case gatewayTimeout
    case usageNotRecorded
    /// A prepaid quota is used up: retry after this many seconds.
    case rateLimited(retryAfter: Int)

    var status: HTTPResponseStatus {
        switch self {
        case .noCredential, .invalidCredential: .unauthorized
        case .wrongProduct: .forbidden
        case .noRoute: .notFound
        case .badRequest: .badRequest
        case .badGateway: .badGateway
        case .gatewayTimeout: .gatewayTimeout
        case .usageNotRecorded: .serviceUnavailable
        case .rateLimited: .tooManyRequests
        }
    }

    var message: String {
        switch self {
        case .noCredential: "No API key found in request"
        case .invalidCredential: "Invalid authentication credentials"
        case .wrongProduct: "You cannot consume this service"
        case .noRoute: "no Route matched with those values"
        case .badRequest(let reason): reason
        case .badGateway: "An invalid response was received from the upstream server"
        case .gatewayTimeout: "The upstream server is timing out"
        case .usageNotRecorded: "The call could not be recorded; try again"
        case .rateLimited: "API rate limit exceeded"
        }
    }

    var extraHeaders: [(String, String)] {
        switch self {
        case .noCredential: [("WWW-Authenticate", "Key")]
        case .rateLimited(let retryAfter): [("Retry-After", String(retryAfter))]
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
