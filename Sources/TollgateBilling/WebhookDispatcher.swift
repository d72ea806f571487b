import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import TollgateCore
import TollgateStore

/// Delivers the webhook outbox (DESIGN §3.6): signed POSTs, a 2xx is success, anything else is
/// tried again on the retry schedule, `Retry-After` honoured, redirects not followed, each event
/// with the same id on every attempt, in order per subscription. Everything it knows is in the
/// database, so deliveries survive restarts; delivery is at least once. Each attempt counts in
/// `tollgate_webhook_deliveries_total{outcome}`: `delivered`, `retried` (failed, tried again
/// later) or `failed` (given up).
public final class WebhookDispatcher: Service, Sendable {
    /// Settings of the dispatcher.
    public struct Configuration: Sendable {
        public var schedule = WebhookRetrySchedule()
        /// How long a receiver may take to answer.
        public var timeout: TimeAmount = .seconds(10)
        /// How often the outbox is looked at.
        public var pollInterval: Duration = .milliseconds(200)
        /// Deliveries sent at once.
        public var concurrency = 16
        /// A PEM file of CAs trusted besides the system's store for `https://` receivers
        /// (`--extra-ca`; a private CA). Certificates are always verified.
        public var extraCA: String?

        public init() {}
    }

    private let store: TollgateStore
    private let configuration: Configuration
    private let logger: Logger

    public init(store: TollgateStore, configuration: Configuration = Configuration(), logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        var clientConfiguration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        clientConfiguration.timeout = .init(connect: configuration.timeout, read: configuration.timeout)
        // A refused connection is one failed attempt, retried on the delivery schedule, not inside the client.
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        clientConfiguration.tlsConfiguration = OutboundTLS.configuration(extraCA: configuration.extraCA)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        try? await cancelWhenGracefulShutdown {
            while true {
                do {
                    try await self.deliverDue(client: client)
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("webhook outbox could not be read; retrying", metadata: ["error": "\(type(of: error))"])
                }
                try await Task.sleep(for: self.configuration.pollInterval)
            }
        }
        try await client.shutdown()
    }

    /// Sends every due delivery once.
    func deliverDue(client: HTTPClient) async throws {
        let due = try await store.dueDeliveries(now: Date(), limit: configuration.concurrency)
        guard !due.isEmpty else { return }
        var secrets: [String: WebhookTarget?] = [:]
        for delivery in due where secrets[delivery.product] == nil {
            secrets[delivery.product] = try await store.product(delivery.product)?.value.webhook
        }
        let targets = secrets
        await withTaskGroup(of: Void.self) { group in
            for delivery in due {
                let target = targets[delivery.product] ?? nil
                group.addTask { await self.deliver(delivery, to: target, client: client) }
            }
        }
    }

    private func deliver(_ delivery: WebhookDelivery, to target: WebhookTarget?, client: HTTPClient) async {
        let now = Date()
        let outcome: DeliveryOutcome
        if let target {
            outcome = await attempt(delivery, target: target, client: client, now: now)
        } else {
            outcome = .gaveUp(status: nil, error: "the product has no webhook any more")
        }
        let label = switch outcome {
        case .delivered: "delivered"
        case .retry: "retried"
        case .gaveUp: "failed"
        }
        Counter(label: "tollgate_webhook_deliveries_total", dimensions: [("outcome", label)]).increment()
        do {
            try await store.recordAttempt(delivery.id, at: now, outcome)
        } catch {
            logger.error("webhook attempt could not be recorded", metadata: ["delivery": "\(delivery.id)"])
        }
    }

    private func attempt(_ delivery: WebhookDelivery, target: WebhookTarget, client: HTTPClient, now: Date) async -> DeliveryOutcome {
        let body = Array(delivery.payload.utf8)
        var request = HTTPClientRequest(url: target.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Tollgate-Webhooks/1")
        request.headers.add(name: WebhookSignature.header, value: WebhookSignature.sign(
            body: body, secret: target.secret, timestamp: Int(now.timeIntervalSince1970)))
        request.body = .bytes(ByteBuffer(bytes: body))
        let attempts = delivery.attempts + 1
        let schedule = configuration.schedule
        func failure(_ status: Int?, _ message: String, retryAfter: TimeInterval? = nil) -> DeliveryOutcome {
            guard let next = schedule.nextAttempt(
                afterAttempts: attempts, firstAttempt: delivery.firstAttemptAt ?? now, now: now, retryAfter: retryAfter) else {
                return .gaveUp(status: status, error: message)
            }
            return .retry(at: next, status: status, error: message)
        }
        do {
            let response = try await client.execute(request, timeout: configuration.timeout)
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let status = Int(response.status.code)
            if (200..<300).contains(status) { return .delivered(status: status) }
            var retryAfter: TimeInterval?
            if status == 429 || status == 503 {
                retryAfter = response.headers.first(name: "Retry-After").flatMap { TimeInterval($0.trimmingCharacters(in: .whitespaces)) }
            }
            return failure(status, "the receiver answered \(status)", retryAfter: retryAfter)
        } catch {
            return failure(nil, Self.describe(error))
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .deadlineExceeded: return "the receiver did not answer in time"
            default: break
            }
        }
        if "\(error)".lowercased().contains("refused") { return "the connection was refused" }
        return "the receiver could not be reached"
    }
}
