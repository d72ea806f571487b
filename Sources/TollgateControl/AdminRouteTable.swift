import HTTPTypes
import Hummingbird

/// One operation of the admin API: how it is routed, and how the OpenAPI description shows it.
struct AdminRoute: Sendable {
    var method: HTTPRequest.Method
    /// OpenAPI form, e.g. `/v1/products/{id}`.
    var path: String
    var summary: String
    /// The success status and the schema of its body (a name in the OpenAPI components).
    var success: (status: Int, schema: String?)
    /// The media type of a success body that is text rather than JSON (`/metrics`).
    var successText: String?
    var requestSchema: String?
    var query: [QueryParameter] = []
    /// Whether the admin key is needed.
    var authenticated = true
    var handler: @Sendable (Request, BasicRequestContext) async throws -> Response

    struct QueryParameter: Sendable {
        var name: String
        var description: String
        var type: String = "string"
    }
}

/// All routes of the admin port; the single source of both the router and `/openapi.json`,
/// so the description always matches what is served.
struct AdminRouteTable: Sendable {
    var routes: [AdminRoute] = []

    mutating func add(_ route: AdminRoute) {
        routes.append(route)
    }

    /// The methods served at a concrete path (for 405 answers).
    func methods(matching path: String) -> [HTTPRequest.Method] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return routes.filter { route in
            let template = route.path.split(separator: "/", omittingEmptySubsequences: false)
            guard template.count == parts.count else { return false }
            return zip(template, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.map(\.method)
    }
}
