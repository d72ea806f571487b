import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import NIOSSL
import Logging
import NIOCore
import TollgateCore

/// Requires `Authorization: Bearer ADMIN_KEY` on every route that needs it; the key is compared
/// in constant time.
/// Paths under `openPrefixes` (the dashboard, which signs its operator in with a session of its
/// own) are let through to their own checks.
struct AdminKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keyDigest: SHA256.Digest
    let openPaths: Set<String>
    let openPrefixes: [String]

    init(adminKey: String, openPaths: Set<String>, openPrefixes: [String] = []) {
        self.keyDigest = SHA256.hash(data: Data(adminKey.utf8))
        self.openPaths = openPaths
        self.openPrefixes = openPrefixes
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if openPaths.contains(path) { return try await next(request, context) }
        if openPrefixes.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw APIError(.unauthorized, "admin key required: send Authorization: Bearer <TOLLGATE_ADMIN_KEY>",
                           headers: [.wwwAuthenticate: "Bearer"])
        }
        // Comparing digests keeps the time independent of where the keys differ.
        let given = SHA256.hash(data: Data(header.dropFirst(7).utf8))
        guard given == keyDigest else {
            throw APIError(.unauthorized, "invalid admin key", headers: [.wwwAuthenticate: "Bearer"])
        }
        return try await next(request, context)
    }
}

/// Pages served on the admin port beside the API (the operator dashboard): they own every path
/// under `pathPrefix`, authenticate on their own and answer their own errors.
public protocol AdminPortPages: Sendable {
    /// The path the pages live under, e.g. `/dashboard` (no trailing slash).
    var pathPrefix: String { get }
    /// Adds the pages' routes.
    func register(on router: Router<BasicRequestContext>)
}

/// The admin port: Hummingbird serving the admin API, the collector, `/openapi.json`, `/metrics`
/// (admin key) and `/healthz`.
public enum AdminServer {
    /// Settings of the admin port.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var adminKey: String
        /// What the collector's clients send as `X-Moesif-Application-Id`.
        public var collectorKey: String
        /// HTTPS instead of HTTP (`--admin-tls-cert`, `--admin-tls-key`): each handshake takes
        /// the certificate read last.
        public var tls: TLSConfiguration?

        public init(host: String = "127.0.0.1", port: Int = 8001, adminKey: String, collectorKey: String) {
            self.host = host
            self.port = port
            self.adminKey = adminKey
            self.collectorKey = collectorKey
        }
    }

    /// What the admin port serves: everything, or (a gateway node's) only `/metrics` and `/healthz`.
    public enum Scope: Sendable {
        case everything
        case metricsOnly
    }

    /// The router with every route of the admin port (`scope` everything), or with the two a
    /// gateway node serves.
    static func router(
        control: ControlPlane, adminKey: String, collectorKey: String, pages: [any AdminPortPages] = [], scope: Scope = .everything
    ) -> Router<BasicRequestContext> {
        var table = scope == .everything ? AdminAPI(control: control).routes() : AdminRouteTable()
        if scope == .everything {
            let openAPI = OpenAPIDocument.make(table)
            table.add(AdminRoute(
                method: .get, path: "/openapi.json", summary: "This description", success: (200, nil), authenticated: false
            ) { _, _ in JSONResponse.make(openAPI) })
        }
        table.add(AdminRoute(
            method: .get, path: "/metrics", summary: "Prometheus metrics (text exposition format)", success: (200, nil),
            successText: "text/plain; version=0.0.4"
        ) { _, _ in TollgateMetrics.response() })
        table.add(AdminRoute(
            method: .get, path: "/healthz", summary: "Ready when 200", success: (200, "Health"), authenticated: false
        ) { _, _ in JSONResponse.make(.object([("status", .text("ok"))])) })
        let routes = table

        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorMiddleware(routes: routes))
        if scope == .everything {
            router.add(middleware: CollectorMiddleware(store: control.store, collectorKey: collectorKey))
        }
        router.add(middleware: AdminKeyMiddleware(
            adminKey: adminKey, openPaths: Set(routes.routes.filter { !$0.authenticated }.map(\.path)),
            openPrefixes: pages.map(\.pathPrefix)))
        for route in routes.routes {
            router.on(RouterPath(route.path), method: route.method, use: route.handler)
        }
        for page in pages { page.register(on: router) }
        return router
    }

    /// The admin port as a service; `onListening` receives the bound port.
    public static func application(
        configuration: Configuration, control: ControlPlane, pages: [any AdminPortPages] = [], scope: Scope = .everything,
        logger: Logger, onListening: @escaping @Sendable (Int) -> Void
    ) throws -> some ApplicationProtocol {
        Application(
            router: router(
                control: control, adminKey: configuration.adminKey, collectorKey: configuration.collectorKey, pages: pages,
                scope: scope),
            server: try configuration.tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "tollgate"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}
