import Foundation
import Logging
import ServiceLifecycle

/// Deletes analytics (non-billable) events older than the retention from the usage ledger,
/// now and then every `interval` (`tollgate serve --analytics-retention DAYS`). Billable events,
/// meters and invoices are untouched (`TollgateStore.deleteAnalyticsEvents`).
public struct AnalyticsRetention: Service, CustomStringConvertible {
    /// How long analytics events are kept and how often old ones are looked for.
    public struct Configuration: Sendable {
        /// Whole days an analytics event is kept; nil keeps every event.
        public var days: Int? = 90
        public var interval: Duration = .seconds(3600)
        /// Keys looked at per transaction.
        public var batchSize = 5000

        public init() {}
    }

    let store: TollgateStore
    let configuration: Configuration
    let logger: Logger
    let now: @Sendable () -> Date

    public init(
        store: TollgateStore, configuration: Configuration = Configuration(), logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.now = now
    }

    public var description: String { "AnalyticsRetention" }

    /// Deletes the analytics events that occurred more than `days` days before `now()`; returns
    /// how many went (0 when the retention keeps everything).
    @discardableResult
    public func sweep() async throws -> Int {
        guard let days = configuration.days else { return 0 }
        let cutoff = now().addingTimeInterval(-Double(days) * 86_400)
        let deleted = try await store.deleteAnalyticsEvents(before: cutoff, batchSize: configuration.batchSize)
        if deleted > 0 { logger.info("analytics events past their retention deleted", metadata: ["events": "\(deleted)", "days": "\(days)"]) }
        return deleted
    }

    public func run() async throws {
        guard configuration.days != nil else {
            try? await gracefulShutdown()
            return
        }
        try? await cancelWhenGracefulShutdown {
            while true {
                do {
                    try await self.sweep()
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("deleting old analytics events failed; trying again later", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: self.configuration.interval)
            }
        }
    }
}
