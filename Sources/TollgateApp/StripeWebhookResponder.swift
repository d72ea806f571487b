import NIOCore
import NIOHTTP1
import TollgateBilling
import TollgateCore
import TollgateGateway

/// `POST /_webhooks/stripe` on the proxy port: hands the body and `Stripe-Signature` to
/// `StripeWebhook` and answers `{"message": ...}` with its status.
struct StripeWebhookResponder: LocalResponder {
    let webhook: StripeWebhook

    func respond(to request: LocalRequest) async -> LocalResponse {
        guard request.head.method == .POST else {
            var headers = HTTPHeaders([("Allow", "POST")])
            headers.add(name: "Content-Type", value: "application/json")
            return LocalResponse(status: .methodNotAllowed, headers: headers, body: Self.message("Method not allowed"))
        }
        let body = Array(request.body.readableBytesView)
        let answer = await webhook.handle(body: body, signature: request.head.headers.first(name: StripeSignature.header))
        return LocalResponse(
            status: HTTPResponseStatus(statusCode: answer.status), headers: HTTPHeaders([("Content-Type", "application/json")]),
            body: Self.message(answer.message))
    }

    static func message(_ text: String) -> ByteBuffer {
        var json = "{\"message\":"
        JSONText.appendString(text, to: &json)
        return ByteBuffer(string: json + "}")
    }
}
