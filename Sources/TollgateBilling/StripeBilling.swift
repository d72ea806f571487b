import Foundation
import Logging
import ServiceLifecycle
import TollgateCore
import TollgateStore

/// The Stripe provider at work (DESIGN §3.8): pushes finalized invoices, reads the status of open
/// ones every `syncInterval` (so that a lost webhook loses nothing), and suspends subscriptions
/// past due longer than the dunning grace. Runs on control nodes.
///
/// A class: ServiceLifecycle prints its services, and printing a struct reflects over every
/// stored property, the secret key included.
public final class StripeBilling: Service, Sendable, CustomStringConvertible {
    public let configuration: StripeConfiguration
    public let pusher: StripePusher
    public let payments: StripePayments
    public let provider: StripeBillingProvider
    let client: StripeClient
    let store: TollgateStore
    let logger: Logger

    public init(
        store: TollgateStore, configuration: StripeConfiguration, logger: Logger,
        onChange: @escaping @Sendable ([DunningChange]) -> Void = { _ in }
    ) {
        let client = StripeClient(configuration: configuration)
        let payments = StripePayments(store: store, onChange: onChange)
        self.configuration = configuration
        self.client = client
        self.payments = payments
        self.pusher = StripePusher(store: store, client: client, payments: payments, halt: HaltHook(at: configuration.haltAt), logger: logger)
        self.provider = StripeBillingProvider(store: store, client: client, payments: payments)
        self.store = store
        self.logger = logger
    }

    public var description: String { "StripeBilling" }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var lastSync = ContinuousClock.now - self.configuration.syncInterval
            while true {
                do {
                    let pushed = try await self.pusher.pushPending()
                    if !pushed.isEmpty { self.logger.info("invoices pushed to Stripe", metadata: ["invoices": "\(pushed.count)"]) }
                    if ContinuousClock.now - lastSync >= self.configuration.syncInterval {
                        try await self.sync()
                        lastSync = .now
                    }
                    let grace = TimeInterval(self.configuration.dunningGrace.components.seconds)
                    try await self.payments.suspendOverdue(grace: grace)
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("Stripe billing failed; trying again later", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: self.configuration.pushInterval)
            }
        }
    }

    /// Reads every open pushed invoice from Stripe and applies its status.
    public func sync() async throws {
        var cursor = ""
        while true {
            let open = try await store.openStripeInvoices(after: cursor, limit: 100)
            for invoice in open {
                guard let id = invoice.provider?.invoice else { continue }
                do {
                    guard let view = StripeInvoiceView(try await client.get("/v1/invoices/\(id)")) else { continue }
                    try await payments.apply(view, to: invoice.id)
                } catch let error as StripeError {
                    logger.warning("Stripe invoice could not be read", metadata: ["invoice": "\(invoice.id)", "error": "\(error)"])
                }
            }
            guard open.count == 100, let last = open.last else { return }
            cursor = last.id
        }
    }
}
