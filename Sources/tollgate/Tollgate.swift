import ArgumentParser
import Foundation
import Logging
import NIOCore
import Synchronization
import TollgateControl
import TollgateApp
import TollgateBilling
import TollgateCore
import TollgateStore
import TollgateWeb

/// The `tollgate` command line: `serve`, `demo`, `config validate`.
@main
struct Tollgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "Sell access to an HTTP API: a gateway with tokens, quotas, metering and invoices.",
        subcommands: [Serve.self, DemoCommand.self, Config.self, Billing.self])

    /// Runs the command; bad usage and invalid configuration exit 2 (DESIGN §3.1), other failures 1.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as InvalidConfigFile {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// A catalog file that could not be read or is invalid: every problem with its file and line.
struct InvalidConfigFile: Error, CustomStringConvertible {
    var path: String
    var problems: [DocumentProblem]

    var description: String {
        "\(path): invalid configuration (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n"
            + problems.map { problem in
                let location = problem.line.map { "\(path):\($0)" } ?? path
                let field = problem.path.isEmpty ? "" : "\(problem.path): "
                return "  \(location): \(field)\(problem.message)"
            }.joined(separator: "\n")
    }

    /// Reads and validates a catalog file.
    static func load(_ path: String) throws -> Catalog {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw InvalidConfigFile(path: path, problems: [DocumentProblem(path: "", line: nil, message: "cannot be read")])
        }
        do {
            return try Catalog.parse(yaml: text)
        } catch {
            throw InvalidConfigFile(path: path, problems: error.problems)
        }
    }
}

func makeLogger() -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        return handler
    }
    return Logger(label: "tollgate")
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway and the admin API.")

    @Option(help: "A declarative catalog (YAML) applied at start.")
    var config: String?

    @OptionGroup var storage: StorageOptions

    @Option(help: "Address both ports listen on.")
    var host = "127.0.0.1"

    @Option(name: .customLong("proxy-port"), help: "Port of the proxy (consumers).")
    var proxyPort = 8000

    @Option(name: .customLong("admin-port"), help: "Port of the admin API (the vendor).")
    var adminPort = 8001

    @Option(help: "all, gateway or control.")
    var role = "all"

    @Option(name: .customLong("billing-grace"), help: "Seconds after a period ends that late events are awaited before it is invoiced.")
    var billingGrace = 3600

    @Option(name: .customLong("billing-interval"), help: "Seconds between looks for ended periods; 0: close only on demand.")
    var billingInterval = 60

    @Flag(name: .customLong("invoice-drafts"), help: "Leave new invoices as drafts (finalize them through the admin API).")
    var invoiceDrafts = false

    @Option(name: .customLong("dunning-grace"), help: "Seconds a subscription stays past_due after a failed payment before it is suspended (402).")
    var dunningGrace = 7 * 86_400

    @Option(name: .customLong("stripe-sync-interval"), help: "Seconds between reads of open Stripe invoices' status (covers lost webhooks).")
    var stripeSyncInterval = 300

    @Option(name: .customLong("admin-host"), help: "Address the admin port listens on (default: --host).")
    var adminHost: String?

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: the proxy port serves HTTPS (with --tls-key; re-read on SIGHUP).")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(name: .customLong("admin-tls-cert"), help: "PEM certificate chain: the admin port serves HTTPS (with --admin-tls-key).")
    var adminTLSCertificate: String?

    @Option(name: .customLong("admin-tls-key"), help: "PEM private key of --admin-tls-cert.")
    var adminTLSKey: String?

    @Option(name: .customLong("sync-interval"), help: "Seconds between a gateway's looks for other nodes' changes (PostgreSQL also notifies at once).")
    var syncInterval = 1

    @Option(name: .customLong("quota-lease-timeout"), help: "PostgreSQL: seconds after which what a silent gateway node held of a shared quota goes back to the others.")
    var quotaLeaseTimeout = 30

    @Option(name: .customLong("extra-ca"), help: "PEM CAs trusted besides the system's for webhooks and the billing provider.")
    var extraCA: String?

    @Option(name: .customLong("event-loops"), help: "Threads that serve connections (default: one per core).")
    var eventLoops: Int?

    @Option(name: .customLong("usage-queue-capacity"), help: "Usage events that may wait to be written; past it billable calls get 503.")
    var usageQueueCapacity = 100_000

    @Option(name: .customLong("analytics-retention"), help: "Days analytics (non-billable) events are kept; 0 keeps them forever.")
    var analyticsRetention = 90

    @OptionGroup(title: "Client connections (docs/security.md)") var edge: EdgeOptions

    @Option(name: .customLong("portal-signup"), help: "on or off: self-serve signup in the consumer portal (/_portal/signup).")
    var portalSignup = "on"

    @Option(name: .customLong("portal-signup-limit"), help: "Portal signups allowed per client address and hour.")
    var portalSignupLimit = 5

    @Option(name: .customLong("portal-url"), help: "The consumer portal's public base URL, for sign-in links (default: the proxy port's address).")
    var portalURL: String?

    func run() async throws {
        if let eventLoops {
            guard (1...1024).contains(eventLoops) else { throw ValidationError("--event-loops must be 1 to 1024") }
            // Before anything uses SwiftNIO's event loops: set once, it fixes how many there are.
            NIOSingletons.groupLoopCountSuggestion = eventLoops
        }
        var options = ServeOptions()
        switch portalSignup {
        case "on": options.portal.signupEnabled = true
        case "off": options.portal.signupEnabled = false
        default: throw ValidationError("--portal-signup must be on or off")
        }
        guard portalSignupLimit >= 0 else { throw ValidationError("--portal-signup-limit must be 0 or more") }
        options.portal.signupLimit.limit = portalSignupLimit
        if let portalURL {
            guard portalURL.hasPrefix("http://") || portalURL.hasPrefix("https://") else {
                throw ValidationError("--portal-url must start with http:// or https://")
            }
            options.portalURL = portalURL
        }
        options.dataDirectory = storage.dataDir
        guard billingGrace >= 0 else { throw ValidationError("--billing-grace must be 0 or more seconds") }
        guard billingInterval >= 0 else { throw ValidationError("--billing-interval must be 0 or more seconds") }
        options.billing.grace = .seconds(billingGrace)
        options.billing.interval = billingInterval == 0 ? nil : .seconds(billingInterval)
        options.billing.drafts = invoiceDrafts
        guard usageQueueCapacity > 0 else { throw ValidationError("--usage-queue-capacity must be 1 or more events") }
        guard analyticsRetention >= 0 else { throw ValidationError("--analytics-retention must be 0 (keep forever) or more days") }
        options.usageQueueCapacity = usageQueueCapacity
        options.analyticsRetention.days = analyticsRetention == 0 ? nil : analyticsRetention
        options.adminHost = adminHost
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard (adminTLSCertificate == nil) == (adminTLSKey == nil) else {
            throw ValidationError("--admin-tls-cert and --admin-tls-key go together")
        }
        options.extraCA = extraCA
        guard syncInterval >= 1 else { throw ValidationError("--sync-interval must be 1 or more seconds") }
        options.syncInterval = .seconds(syncInterval)
        guard quotaLeaseTimeout >= 3 else { throw ValidationError("--quota-lease-timeout must be 3 or more seconds") }
        options.quotaLeaseTimeout = .seconds(quotaLeaseTimeout)
        options.tlsCertificate = tlsCertificate
        options.tlsKey = tlsKey
        options.adminTLSCertificate = adminTLSCertificate
        options.adminTLSKey = adminTLSKey
        options.host = host
        options.proxyPort = proxyPort
        options.adminPort = adminPort
        guard let role = Role(rawValue: role) else { throw ValidationError("--role must be all, gateway or control") }
        options.role = role
        options.edge = try edge.policy()
        let environment = ProcessInfo.processInfo.environment
        options.database = try storage.databaseURL()
        options.adminKey = environment["TOLLGATE_ADMIN_KEY"]
        options.collectorKey = environment["TOLLGATE_COLLECTOR_KEY"]
        guard dunningGrace >= 0 else { throw ValidationError("--dunning-grace must be 0 or more seconds") }
        guard stripeSyncInterval >= 1 else { throw ValidationError("--stripe-sync-interval must be 1 or more seconds") }
        if var stripe = StripeConfiguration.fromEnvironment(environment) {
            guard stripe.apiBase.hasPrefix("http://") || stripe.apiBase.hasPrefix("https://") else {
                throw ValidationError("TOLLGATE_STRIPE_API_BASE must be an http:// or https:// URL")
            }
            stripe.dunningGrace = .seconds(dunningGrace)
            stripe.syncInterval = .seconds(stripeSyncInterval)
            options.stripe = stripe
        }
        if let config { options.catalog = try InvalidConfigFile.load(config) }
        let logger = makeLogger()
        try await TollgateServer.run(options: options, logger: logger) { ready, _ in
            logger.info("ready", metadata: [
                "proxy": "\(ready.proxyPort.map(String.init) ?? "-")", "admin": "\(ready.adminPort.map(String.init) ?? "-")",
            ])
        }
    }
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run Tollgate with a demo upstream, product, plan and subscribed customer.")

    @Option(name: .customLong("proxy-port"))
    var proxyPort = 8000

    @Option(name: .customLong("admin-port"))
    var adminPort = 8001

    @Option(name: .customLong("upstream-port"), help: "Port of the demo upstream (0: any free port).")
    var upstreamPort = 0

    @Option(name: .customLong("data-dir"), help: "Data directory (default: a new temporary one).")
    var dataDir: String?

    func run() async throws {
        let logger = makeLogger()
        let upstream = try await DemoUpstream.start(port: upstreamPort, secret: Demo.upstreamSecret)
        var options = ServeOptions()
        options.dataDirectory = dataDir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("tollgate-demo-\(getpid())")
        options.proxyPort = proxyPort
        options.adminPort = adminPort
        options.adminKey = ProcessInfo.processInfo.environment["TOLLGATE_ADMIN_KEY"]
        options.catalog = try Demo.catalog(upstreamPort: upstream.port)
        let issued = IssuedBox()
        let host = options.host
        try await TollgateServer.run(options: options, logger: logger, setUp: { control in
            issued.value = try await Demo.seed(control)
        }) { ready, _ in
            guard let subscription = issued.value else { return }
            FileHandle.standardOutput.write(Data(Demo.instructions(host: host, ready: ready, issued: subscription).utf8))
        }
        await upstream.stop()
    }
}

/// Carries the demo's subscription from set-up to the ready message.
final class IssuedBox: Sendable {
    private let stored = Mutex<IssuedSubscription?>(nil)

    var value: IssuedSubscription? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with catalog files.", subcommands: [Validate.self])

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a catalog file without starting; exit 2 when invalid.")

        @Argument(help: "The catalog file (YAML).")
        var file: String

        func run() async throws {
            let catalog = try InvalidConfigFile.load(file)
            print("\(file): valid (\(catalog.products.count) products, \(catalog.meters.count) meters, \(catalog.plans.count) plans)")
        }
    }
}

/// Where the data lives: shared by the commands that open the database.
struct StorageOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Where the SQLite database and generated keys live.")
    var dataDir = "data"

    @Option(help: "sqlite:PATH or postgres://user:pass@host:port/db (also TOLLGATE_DATABASE_URL).")
    var database: String?

    /// The database named by `--database` or the environment; nil for the data dir's SQLite file.
    func databaseURL() throws -> DatabaseURL? {
        guard let text = database ?? ProcessInfo.processInfo.environment["TOLLGATE_DATABASE_URL"] else { return nil }
        if case .failure(let problem) = DatabaseURL.parse(text) { throw ValidationError("--database: \(problem)") }
        guard let url = DatabaseURL(text) else {
            throw ValidationError("--database must be sqlite:PATH or postgres://user:pass@host:port/db")
        }
        return url
    }
}

struct Billing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Close billing periods into invoices.", subcommands: [Close.self])

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Invoice every period that ended at or before --at (default now); prints {\"invoices\": [ids created]}.")

        @OptionGroup var storage: StorageOptions

        @Option(help: "An RFC 3339 time, not in the future (default: now).")
        var at: String?

        func run() async throws {
            let now = Date()
            var closeAt = now
            if let at {
                guard let parsed = RFC3339.date(at), parsed <= now else {
                    throw ValidationError("--at must be an RFC 3339 time such as 2026-01-31T00:00:00Z, not in the future")
                }
                closeAt = parsed
            }
            let date = closeAt
            var options = ServeOptions()
            options.dataDirectory = storage.dataDir
            options.database = try storage.databaseURL()
            let created = try await TollgateStore.withStore(url: options.resolvedDatabase, logger: makeLogger()) { store in
                try await store.migrate()
                return try await PeriodClose(store: store).close(at: date)
            }
            print(DocumentNode.object([("invoices", DocumentNode(.list(created.map { .text($0) })))]).jsonText())
        }
    }
}
