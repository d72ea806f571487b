import Foundation
import Logging
import ServiceLifecycle
import TollgateCore
import TollgateGateway
import TollgateStore

/// Keeps a gateway's memory in step with changes that other nodes write to a shared database:
/// every `interval` it applies subscriptions changed since the last look (with an overlap, so
/// clocks that differ a little lose nothing) and reloads routes when a product changed.
/// Changes made through this node's own admin API reach its gateway at once, without it.
public struct GatewaySync: Service {
    let control: ControlPlane
    let interval: Duration
    let overlap: TimeInterval = 10

    public init(control: ControlPlane, interval: Duration = .seconds(1)) {
        self.control = control
        self.interval = interval
    }

    public func run() async throws {
        // Shutting down cancels the wait between two looks.
        try? await cancelWhenGracefulShutdown { try await follow() }
    }

    private func follow() async throws {
        var since = Date()
        var catalogChangedAt = try await control.store.catalogChangedAt()
        while true {
            try await Task.sleep(for: interval)
            let started = Date()
            do {
                for (subscription, hash) in try await control.store.subscriptionsChanged(since: since.addingTimeInterval(-overlap)) {
                    control.directory.removeCredentials(subscription: subscription.id)
                    if subscription.status.hasCredential {
                        control.directory.setCredential(hash, Consumer(subscription))
                    }
                }
                let latest = try await control.store.catalogChangedAt()
                if latest != catalogChangedAt {
                    control.store.invalidateMeteringCache()
                    try await control.reloadRoutes()
                    catalogChangedAt = latest
                }
                since = started
            } catch {
                control.logger.warning("gateway sync failed; retrying", metadata: ["error": "\(type(of: error))"])
            }
        }
    }
}
