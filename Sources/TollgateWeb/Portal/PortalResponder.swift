import NIOCore
import NIOHTTP1
import TollgateGateway

/// Serves the portal on the proxy port: adapts `LocalRoutes`' requests to `PortalApp`.
public struct PortalResponder: LocalResponder {
    let app: PortalApp

    public init(app: PortalApp) {
        self.app = app
    }

    public func respond(to request: LocalRequest) async -> LocalResponse {
        guard request.head.method == .GET || request.head.method == .POST || request.head.method == .HEAD else {
            var headers = HTTPHeaders()
            headers.add(name: "Allow", value: "GET, HEAD, POST")
            return LocalResponse(status: .methodNotAllowed, headers: headers)
        }
        let web = WebRequest(
            method: request.head.method == .HEAD ? "GET" : request.head.method.rawValue, target: request.head.uri,
            prefix: PortalApp.prefix, cookieHeaders: request.head.headers["Cookie"],
            contentType: request.head.headers.first(name: "Content-Type"), body: Array(request.body.readableBytesView),
            clientAddress: request.clientAddress)
        let answer = await app.respond(web)
        var headers = HTTPHeaders()
        for (name, value) in answer.headers { headers.add(name: name, value: value) }
        let body = request.head.method == .HEAD ? ByteBuffer() : ByteBuffer(bytes: answer.body)
        return LocalResponse(status: HTTPResponseStatus(statusCode: answer.status), headers: headers, body: body)
    }
}
