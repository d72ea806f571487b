import HTTPTypes
import Hummingbird
import NIOCore
import TollgateControl

/// Serves the dashboard on the admin port: every path under `/dashboard` goes to `DashboardApp`.
public struct DashboardPages: AdminPortPages {
    let app: DashboardApp

    public init(app: DashboardApp) {
        self.app = app
    }

    public var pathPrefix: String { DashboardApp.prefix }

    /// The largest form the dashboard reads (a catalog file).
    static let maxBody = 1 << 20

    public func register(on router: Router<BasicRequestContext>) {
        let app = self.app
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
            var request = request
            let body = try await request.collectBody(upTo: Self.maxBody)
            let web = WebRequest(
                method: request.method.rawValue, target: request.uri.description, prefix: DashboardApp.prefix,
                cookieHeaders: request.headers[values: .cookie], contentType: request.headers[.contentType],
                body: Array(body.readableBytesView), clientAddress: "")
            let answer = await app.respond(web)
            var fields = HTTPFields()
            for (name, value) in answer.headers {
                if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
            }
            return Response(
                status: HTTPResponse.Status(code: answer.status), headers: fields,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
        for method in [HTTPRequest.Method.get, .post] {
            router.on(RouterPath(DashboardApp.prefix), method: method, use: handler)
            router.on(RouterPath(DashboardApp.prefix + "/**"), method: method, use: handler)
        }
    }
}
