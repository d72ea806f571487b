import Foundation
import Logging
import ServiceLifecycle
import TollgateCore
import TollgateGateway
import TollgateStore

/// Keeps a gateway's memory in step with changes that other nodes write to a shared database:
/// it applies subscriptions changed since the last look (with an overlap, so clocks that differ
/// a little lose nothing) and reloads routes when the catalog changed. On PostgreSQL it looks
/// as soon as a change is committed (`LISTEN`); every `interval` it looks anyway, in case a
/// notification was lost with its connection. Changes made through this node's own admin API
/// reach its gateway at once, without it.
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
        let (looks, look) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [interval] in
                while true {
                    try await Task.sleep(for: interval)
                    look.yield()
                }
            }
            group.addTask { [control] in
                while true {
                    do {
                        try await control.store.followChanges { look.yield() }
                        return  // SQLite: nothing to listen to
                    } catch is CancellationError {
                        return
                    } catch {
                        control.logger.warning("listening for changes failed; polling until it listens again",
                                               metadata: ["error": "\(type(of: error))"])
                        try await Task.sleep(for: .seconds(1))
                    }
                }
            }
            var since = Date()
            var catalogChangedAt = try await control.store.catalogChangedAt()
            for await _ in looks {
                let started = Date()
                do {
                    try await apply(since: since, catalogChangedAt: &catalogChangedAt)
                    since = started
                } catch {
                    control.logger.warning("gateway sync failed; retrying", metadata: ["error": "\(type(of: error))"])
                }
            }
            group.cancelAll()
        }
    }

    private func apply(since: Date, catalogChangedAt: inout Date?) async throws {
        // A change this node made directly while the rows were read may be newer than they are:
        // then they are read again (`GatewayDirectory.apply(stored:ifUnchangedSince:)`).
        while true {
            let generation = control.directory.generation
            let changed = try await control.store.subscriptionsChanged(since: since.addingTimeInterval(-overlap))
            if control.directory.apply(stored: changed, ifUnchangedSince: generation) { break }
        }
        let latest = try await control.store.catalogChangedAt()
        if latest != catalogChangedAt {
            control.store.invalidateMeteringCache()
            try await control.reloadRoutes()
            catalogChangedAt = latest
        }
    }
}
