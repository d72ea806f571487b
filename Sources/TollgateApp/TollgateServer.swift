import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import UnixSignals
import TollgateBilling
import TollgateControl
import TollgateCore
import TollgateGateway
import TollgateStore
import TollgateWeb

/// `tollgate serve`: opens the store, migrates it, applies the catalog, loads the gateway's
/// memory, and runs the proxy, the admin port and the usage recorder in one service group.
/// On SIGTERM (or `shutdown()`): the admin port stops, the proxy drains in-flight calls,
/// the recorder flushes, and `run` returns.
public enum TollgateServer {
    /// Runs until shut down. `onReady` is called once every port listens; `setUp` runs after
    /// the store is ready and before the ports open (the demo uses it to seed data).
    public static func run(
        options: ServeOptions, logger: Logger, signals: [UnixSignal] = [.sigterm, .sigint],
        setUp: @escaping @Sendable (ControlPlane) async throws -> Void = { _ in },
        onReady: @escaping @Sendable (ServerReady, ServiceGroupHandle) -> Void
    ) async throws {
        TollgateMetrics.bootstrap()
        let keys = try Keys.resolve(admin: options.adminKey, collector: options.collectorKey, dataDirectory: options.dataDirectory)
        for (name, value) in keys.generated {
            logger.notice("generated \(name) (stored in \(options.dataDirectory); shown this once)", metadata: ["key": "\(value)"])
        }
        if PrivateFiles.isOpenToOthers(options.dataDirectory) {
            logger.warning("the data dir lets other users in; chmod 700 it", metadata: ["path": "\(options.dataDirectory)"])
        }
        let proxyTLS = try options.tlsFiles(certificate: options.tlsCertificate, key: options.tlsKey, flag: "--tls")
        let adminTLS = try options.tlsFiles(certificate: options.adminTLSCertificate, key: options.adminTLSKey, flag: "--admin-tls")
        let database = options.resolvedDatabase
        logger.info("opening database", metadata: ["database": "\(database)"])
        try await TollgateStore.withStore(url: database, logger: logger) { store in
            try await store.migrate()
            let directory = GatewayDirectory()
            // On PostgreSQL, gateway nodes share their quotas (docs/quotas.md); on SQLite one process counts alone.
            let sharedQuotas = store.sharesQuotas && options.role != .control
                ? SharedQuotas(store: store, leaseTimeout: options.quotaLeaseTimeout, logger: logger) : nil
            // On SQLite, the proxy's event loops write their calls' commits themselves when
            // they can, without a hop to the writer's thread and back (`commitUsageNow`).
            let recorder = UsageRecorder(
                store: store, logger: logger, capacity: options.usageQueueCapacity, quotaNode: sharedQuotas?.node,
                commitsOnEventLoops: store.kind == .sqlite)
            let quotas = QuotaLedger(recorder: recorder, sharing: sharedQuotas)
            sharedQuotas?.attach(quotas)
            // Stripe (DESIGN §3.8): payments change subscriptions, which the gateway sees at once.
            let changes = DunningRelay()
            let stripe = options.stripe.map { configuration in
                var configuration = configuration
                configuration.extraCA = options.extraCA
                return StripeBilling(store: store, configuration: configuration, logger: logger) { changes.forward($0) }
            }
            let control = ControlPlane(
                store: store, directory: directory, quotas: options.role == .control ? nil : quotas,
                invoiceDrafts: options.billing.drafts, billingProvider: stripe?.provider, logger: logger)
            changes.attach(control)
            if let portalURL = options.portalURL { control.portalAddress.set(portalURL) }
            if let catalog = options.catalog { try await control.apply(catalog) }
            try await setUp(control)
            try await control.loadGateway()
            if !quotas.isShared { quotas.restore(try await store.quotaLeases(since: Date())) }

            let handle = ServiceGroupHandle()
            let readiness = Readiness(
                expectProxy: options.role != .control, expectAdmin: options.role != .gateway,
                adminKey: keys.adminKey, collectorKey: keys.collectorKey
            ) { ready in onReady(ready, handle) }

            var admin = AdminServer.Configuration(
                host: options.adminHost ?? options.host, port: options.adminPort, adminKey: keys.adminKey,
                collectorKey: keys.collectorKey)
            admin.tls = adminTLS?.configuration()
            var services: [any Service] = [recorder]
            // Stopped after the proxy has drained (services stop in reverse order): it then hands back what it held.
            if let sharedQuotas { services.append(sharedQuotas) }
            if options.role != .control {
                services.append(GatewaySync(control: control, interval: options.syncInterval))
                var gateway = GatewayConfiguration()
                gateway.host = options.host
                gateway.port = options.proxyPort
                gateway.connectTimeout = options.connectTimeout
                gateway.readTimeout = options.readTimeout
                gateway.edge = options.edge
                gateway.tls = proxyTLS
                // The proxy port's own paths under `/_` (LocalRoutes): the consumer portal and Stripe's webhook.
                var localRoutes = LocalRoutes()
                if let stripe, let secret = stripe.configuration.webhookSecret {
                    localRoutes.add(prefix: "/_webhooks/stripe", StripeWebhookResponder(
                        webhook: StripeWebhook(store: store, secret: secret, payments: stripe.payments, logger: logger)))
                }
                var portal = options.portal
                let proxyScheme = proxyTLS == nil ? "http" : "https"
                portal.secureCookies = portal.secureCookies || proxyTLS != nil || (options.portalURL?.hasPrefix("https://") ?? false)
                localRoutes.add(prefix: PortalApp.prefix, PortalResponder(app: PortalApp(control: control, configuration: portal, logger: logger)))
                let portalHost = urlHostName(options.host == "0.0.0.0" || options.host == "::" ? "127.0.0.1" : options.host)
                let portalURLGiven = options.portalURL != nil
                services.append(ProxyServer(
                    configuration: gateway, directory: directory, recorder: recorder, quotas: quotas,
                    localRoutes: localRoutes, logger: logger,
                    onListening: { port in
                        if !portalURLGiven { control.portalAddress.set("\(proxyScheme)://\(portalHost):\(port)") }
                        readiness.proxyListening(port)
                    }))
            }
            if options.role != .gateway {
                var webhooks = WebhookDispatcher.Configuration()
                webhooks.schedule = options.webhookSchedule
                webhooks.extraCA = options.extraCA
                services.append(WebhookDispatcher(store: store, configuration: webhooks, logger: logger))
                services.append(BillingService(store: store, configuration: options.billing, logger: logger))
                if let stripe { services.append(stripe) }
                services.append(AnalyticsRetention(store: store, configuration: options.analyticsRetention, logger: logger))
                if options.portalURL == nil && options.role == .control {
                    control.portalAddress.set("http://\(urlHostName(options.host)):\(options.proxyPort)")
                }
                var dashboardSettings = DashboardConfiguration(adminKey: keys.adminKey)
                dashboardSettings.secureCookies = adminTLS != nil
                let dashboard = DashboardPages(app: DashboardApp(control: control, configuration: dashboardSettings, logger: logger))
                services.append(try AdminServer.application(
                    configuration: admin, control: control, pages: [dashboard], logger: logger,
                    onListening: { readiness.adminListening($0) }))
            } else {
                // A gateway node's admin port serves its own `/metrics` (admin key) and `/healthz`.
                services.append(try AdminServer.application(
                    configuration: admin, control: control, scope: .metricsOnly, logger: logger,
                    onListening: { readiness.adminListening($0) }))
            }
            let certificates = [proxyTLS, adminTLS].compactMap { $0 }
            if !certificates.isEmpty { services.append(CertificateReloader(certificates: certificates, logger: logger)) }
            let group = ServiceGroup(configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: signals, logger: logger))
            handle.attach(group)
            try await group.run()
            logger.info("stopped")
        }
    }
}

/// Passes subscriptions whose status a payment changed to the control plane (and so the
/// gateway), which exists only after the Stripe provider it is handed to.
final class DunningRelay: Sendable {
    private let control = NIOLockedValueBox<ControlPlane?>(nil)

    func attach(_ plane: ControlPlane) { control.withLockedValue { $0 = plane } }

    func forward(_ changes: [DunningChange]) {
        control.withLockedValue { $0 }?.apply(changes)
    }
}

/// An address as a URL's host (IPv6 in brackets).
func urlHostName(_ address: String) -> String {
    address.contains(":") && !address.hasPrefix("[") ? "[\(address)]" : address
}

/// Reads the ports' certificates and keys again on every `SIGHUP`; new connections get the
/// new ones, open connections keep theirs. A file that cannot be used is logged and the
/// certificate in use stays.
struct CertificateReloader: Service {
    let certificates: [ServerTLS]
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                for certificate in certificates {
                    do {
                        try certificate.reload()
                        logger.notice("certificate reloaded", metadata: ["certificate": "\(certificate.certificatePath)"])
                    } catch {
                        logger.error("certificate not reloaded; the one in use stays", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }
}

extension ServeOptions {
    /// A port's certificate files: both or neither.
    func tlsFiles(certificate: String?, key: String?, flag: String) throws -> ServerTLS? {
        switch (certificate, key) {
        case (nil, nil): return nil
        case (let certificate?, let key?): return try ServerTLS(certificate: certificate, key: key)
        default: throw ServerTLSError(reason: "\(flag)-cert and \(flag)-key go together")
        }
    }
}

/// Lets whoever started the server stop it gracefully.
public final class ServiceGroupHandle: Sendable {
    private let group = NIOLockedValueBox<ServiceGroup?>(nil)

    init() {}

    func attach(_ serviceGroup: ServiceGroup) {
        group.withLockedValue { $0 = serviceGroup }
    }

    /// Starts a graceful shutdown, as SIGTERM does.
    public func shutdown() async {
        await group.withLockedValue { $0 }?.triggerGracefulShutdown()
    }
}

/// Calls back once every expected port listens.
final class Readiness: Sendable {
    private struct State {
        var proxyPort: Int?
        var adminPort: Int?
        var reported = false
    }

    private let state = NIOLockedValueBox(State())
    private let expectProxy: Bool
    private let expectAdmin: Bool
    private let adminKey: String
    private let collectorKey: String
    private let onReady: @Sendable (ServerReady) -> Void

    init(expectProxy: Bool, expectAdmin: Bool, adminKey: String, collectorKey: String, onReady: @escaping @Sendable (ServerReady) -> Void) {
        self.expectProxy = expectProxy
        self.expectAdmin = expectAdmin
        self.adminKey = adminKey
        self.collectorKey = collectorKey
        self.onReady = onReady
    }

    func proxyListening(_ port: Int) { update { $0.proxyPort = port } }
    func adminListening(_ port: Int) { update { $0.adminPort = port } }

    private func update(_ change: (inout State) -> Void) {
        let ready: ServerReady? = state.withLockedValue { state in
            change(&state)
            guard !state.reported, !expectProxy || state.proxyPort != nil, !expectAdmin || state.adminPort != nil else { return nil }
            state.reported = true
            return ServerReady(proxyPort: state.proxyPort, adminPort: state.adminPort, adminKey: adminKey, collectorKey: collectorKey)
        }
        if let ready { onReady(ready) }
    }
}
