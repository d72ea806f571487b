import HTTPTypes
import Hummingbird
import TollgateCore

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
    /// Whether a request must have a body (a route whose body only has optional fields may go without).
    var requestBodyRequired = true
    var query: [QueryParameter] = []
    /// Whether the admin key is needed.
    var authenticated = true
    /// Error answers of this route besides the common ones (status, description).
    var extraErrors: [(status: Int, description: String)] = []
    var handler: @Sendable (Request, BasicRequestContext) async throws -> Response

    struct QueryParameter: Sendable {
        var name: String
        var description: String
        var type: String = "string"
        /// More of the parameter's JSON schema: `enum`, `format`, `minimum`, ...
        var schema: [(String, DocumentNode)] = []

        /// `limit` of a paginated list.
        static let limit = QueryParameter(
            name: "limit", description: "page size, 1 to 500", type: "integer",
            schema: [("minimum", .integer(1)), ("maximum", .integer(500))])
        /// `cursor` of a paginated list.
        static let cursor = QueryParameter(name: "cursor", description: "next_cursor of the previous page")

        /// A parameter whose value is one of `values`.
        static func oneOf(_ name: String, _ description: String, _ values: [String]) -> QueryParameter {
            QueryParameter(name: name, description: description, schema: [("enum", DocumentNode(.list(values.map { .text($0) })))])
        }
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
