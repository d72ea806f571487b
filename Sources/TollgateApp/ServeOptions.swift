import Foundation
import NIOCore
import TollgateBilling
import TollgateCore
import TollgateGateway
import TollgateStore
import TollgateWeb

/// Which parts a `tollgate serve` process runs.
public enum Role: String, Sendable, CaseIterable {
    /// Proxy and admin ports.
    case all
    /// The proxy port only (its usage still goes to the shared database).
    case gateway
    /// The admin port only.
    case control
}

/// Everything `tollgate serve` is started with (DESIGN §3.1). Flags win over the environment.
public struct ServeOptions: Sendable {
    /// Where the SQLite database and generated keys live.
    public var dataDirectory: String = "data"
    /// `sqlite:PATH` or `postgres://...`; default `sqlite:DATA_DIR/tollgate.sqlite`.
    public var database: DatabaseURL?
    public var host: String = "127.0.0.1"
    public var proxyPort: Int = 8000
    public var adminPort: Int = 8001
    public var role: Role = .all
    /// A declarative catalog applied at start.
    public var catalog: Catalog?
    /// `TOLLGATE_ADMIN_KEY`; generated and stored in the data dir when nil.
    public var adminKey: String?
    /// `TOLLGATE_COLLECTOR_KEY`; generated and stored in the data dir when nil.
    public var collectorKey: String?
    public var connectTimeout: TimeAmount = .seconds(5)
    public var readTimeout: TimeAmount = .seconds(60)
    /// The proxy port's connection limits and trusted proxies (docs/security.md).
    public var edge = EdgePolicy()
    /// How webhook deliveries are retried.
    public var webhookSchedule = WebhookRetrySchedule()
    /// When periods are closed (grace for late events) and whether invoices start as drafts.
    public var billing = BillingService.Configuration()
    /// The most usage events waiting to be written; past it the proxy refuses billable calls (503).
    public var usageQueueCapacity = 100_000
    /// How long analytics (non-billable) events are kept; `days == nil` keeps them forever.
    public var analyticsRetention = AnalyticsRetention.Configuration()
    /// How often a gateway looks for changes other nodes made, besides PostgreSQL's notifications.
    public var syncInterval: Duration = .seconds(1)
    /// PostgreSQL: how long what a silent gateway node held of a shared quota stays its own.
    public var quotaLeaseTimeout: Duration = .seconds(30)
    /// The address the admin port listens on; nil: `host`.
    public var adminHost: String?
    /// The Stripe billing provider (`TOLLGATE_STRIPE_*`); nil: the built-in provider only.
    public var stripe: StripeConfiguration?
    /// The consumer portal: signup on or off, its rate limit, session length.
    public var portal = PortalConfiguration()
    /// The portal's public base URL for sign-in links (`--portal-url`); nil: the proxy port's address.
    /// An `https://` URL (or TLS on the proxy port) marks the portal's cookies `Secure`.
    public var portalURL: String?
    /// The proxy port's certificate chain and key (PEM files): HTTPS when both are set.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// A PEM file of CAs trusted besides the system's store by Tollgate's own HTTPS requests
    /// (webhooks, the billing provider).
    public var extraCA: String?
    /// The admin port's certificate chain and key (PEM files): HTTPS when both are set.
    public var adminTLSCertificate: String?
    public var adminTLSKey: String?

    public init() {}

    /// The database to use.
    public var resolvedDatabase: DatabaseURL {
        database ?? .sqlite(path: (dataDirectory as NSString).appendingPathComponent("tollgate.sqlite"))
    }
}

/// What a running server tells whoever started it.
public struct ServerReady: Sendable {
    public var proxyPort: Int?
    public var adminPort: Int?
    public var adminKey: String
    public var collectorKey: String
}

/// The admin and collector keys: from the environment, else read from (or created in) the data dir.
enum Keys {
    struct Resolved {
        var adminKey: String
        var collectorKey: String
        /// Keys created just now, to print once.
        var generated: [(name: String, value: String)]
    }

    static func resolve(admin: String?, collector: String?, dataDirectory: String) throws -> Resolved {
        try PrivateFiles.createDirectory(dataDirectory)  // 0700 when new
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        var generated: [(name: String, value: String)] = []
        func key(_ given: String?, file: String, name: String, prefix: String) throws -> String {
            if let given, !given.isEmpty { return given }
            let path = (dataDirectory as NSString).appendingPathComponent(file)
            if let stored = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
               !stored.isEmpty {
                return stored
            }
            let value = prefix + String(APIToken.generate().dropFirst(APIToken.prefix.count))
            guard FileManager.default.createFile(
                atPath: path, contents: Data((value + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
            generated.append((name, value))
            return value
        }
        let adminKey = try key(admin, file: "admin.key", name: "TOLLGATE_ADMIN_KEY", prefix: "tga_")
        let collectorKey = try key(collector, file: "collector.key", name: "TOLLGATE_COLLECTOR_KEY", prefix: "tgc_")
        return Resolved(adminKey: adminKey, collectorKey: collectorKey, generated: generated)
    }
}
