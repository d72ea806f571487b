import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TollgateCore

/// Where Stripe is and how Tollgate talks to it (DESIGN §3.8). Read from
/// `TOLLGATE_STRIPE_SECRET_KEY`, `TOLLGATE_STRIPE_API_BASE` and `TOLLGATE_STRIPE_WEBHOOK_SECRET`.
/// Its `description` never shows the secrets.
public struct StripeConfiguration: Sendable, CustomStringConvertible {
    /// The secret API key (`sk_...` or a restricted `rk_...`).
    public var secretKey: String
    /// The API's base URL; another one (localstripe) for tests.
    public var apiBase: String = "https://api.stripe.com"
    /// The signing secret of the webhook endpoint (`whsec_...`); nil: `POST /_webhooks/stripe` is not served.
    public var webhookSecret: String?
    /// How long a subscription stays `past_due` before it is `suspended`.
    public var dunningGrace: Duration = .seconds(7 * 86_400)
    /// How often finalized invoices are looked for and pushed.
    public var pushInterval: Duration = .seconds(1)
    /// How often the status of open Stripe invoices is read (lost webhooks lose nothing).
    public var syncInterval: Duration = .seconds(300)
    /// How long one request to Stripe may take.
    public var timeout: TimeAmount = .seconds(30)
    /// A PEM file of CAs trusted besides the system's (`--extra-ca`): Stripe's certificate is
    /// always verified, against these too when set.
    public var extraCA: String?
    /// Test hook (`TOLLGATE_TEST_STRIPE_HALT_AT=N`): the process kills itself with SIGKILL at the
    /// Nth point between the steps of a push, to prove that a restart resumes without pushing twice.
    public var haltAt: Int?

    public init(secretKey: String) {
        self.secretKey = secretKey
    }

    /// The configuration from the environment; nil when `TOLLGATE_STRIPE_SECRET_KEY` is unset (Stripe off).
    public static func fromEnvironment(_ environment: [String: String]) -> StripeConfiguration? {
        guard let key = environment["TOLLGATE_STRIPE_SECRET_KEY"], !key.isEmpty else { return nil }
        var configuration = StripeConfiguration(secretKey: key)
        if let base = environment["TOLLGATE_STRIPE_API_BASE"], !base.isEmpty {
            configuration.apiBase = base.hasSuffix("/") ? String(base.dropLast()) : base
        }
        if let secret = environment["TOLLGATE_STRIPE_WEBHOOK_SECRET"], !secret.isEmpty { configuration.webhookSecret = secret }
        configuration.haltAt = environment["TOLLGATE_TEST_STRIPE_HALT_AT"].flatMap { Int($0) }
        return configuration
    }

    public var description: String {
        "StripeConfiguration(apiBase: \(apiBase), webhookSecret: \(webhookSecret == nil ? "unset" : "set"))"
    }
}

/// A failed Stripe request: the HTTP status (nil when Stripe could not be reached) and Stripe's
/// message, with anything that looks like a key removed.
public struct StripeError: Error, Sendable, CustomStringConvertible {
    public var status: Int?
    public var message: String

    public init(status: Int?, message: String) {
        self.status = status
        self.message = StripeError.redact(message)
    }

    /// A problem that trying again later may solve (Stripe unreachable, 5xx, 429).
    public var isTransient: Bool { status.map { $0 >= 500 || $0 == 429 } ?? true }

    public var description: String {
        status.map { "Stripe answered \($0): \(message)" } ?? "Stripe could not be reached: \(message)"
    }

    /// Replaces words that look like Stripe secrets (`sk_`, `rk_`, `whsec_`) with `[redacted]`.
    static func redact(_ text: String) -> String {
        text.split(separator: " ", omittingEmptySubsequences: false).map { word in
            let bare = word.drop { !$0.isLetter }
            return ["sk_", "rk_", "whsec_"].contains { bare.hasPrefix($0) } ? "[redacted]" : String(word)
        }.joined(separator: " ")
    }
}

/// Form-encoded requests to the Stripe API with the secret key, JSON answers as documents.
public struct StripeClient: Sendable {
    let configuration: StripeConfiguration

    public init(configuration: StripeConfiguration) {
        self.configuration = configuration
    }

    /// `POST path` with `form`, and `Idempotency-Key` when given.
    public func post(_ path: String, _ form: StripeForm, idempotencyKey: String? = nil) async throws -> DocumentNode {
        try await send(.POST, path, body: form.encoded, idempotencyKey: idempotencyKey)
    }

    /// `GET path?query`.
    public func get(_ path: String, query: StripeForm = StripeForm()) async throws -> DocumentNode {
        try await send(.GET, query.fields.isEmpty ? path : path + "?" + query.encoded, body: nil, idempotencyKey: nil)
    }

    private func send(_ method: HTTPMethod, _ target: String, body: String?, idempotencyKey: String?) async throws -> DocumentNode {
        var request = HTTPClientRequest(url: configuration.apiBase + target)
        request.method = method
        request.tlsConfiguration = OutboundTLS.configuration(extraCA: configuration.extraCA)
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.secretKey)")
        request.headers.add(name: "User-Agent", value: "Tollgate/1")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let status: Int
        let buffer: ByteBuffer
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: configuration.timeout)
            status = Int(response.status.code)
            buffer = try await response.body.collect(upTo: 8 << 20)
        } catch {
            throw StripeError(status: nil, message: "\(type(of: error))")
        }
        let node = try? DocumentNode.parseJSON(buffer.readableBytesView)
        guard (200..<300).contains(status) else {
            let message = node?["error"]?["message"]?.scalarText ?? String(buffer: buffer).prefix(200).trimmingCharacters(in: .whitespacesAndNewlines)
            throw StripeError(status: status, message: message.isEmpty ? "no message" : message)
        }
        guard let node else { throw StripeError(status: status, message: "the answer is not JSON") }
        return node
    }

    /// Every object of a list endpoint (`data`, paged with `starting_after`), up to `maxPages` pages.
    public func list(_ path: String, query: StripeForm = StripeForm(), maxPages: Int = 20) async throws -> [DocumentNode] {
        var all: [DocumentNode] = []
        var after: String?
        for _ in 0..<maxPages {
            var page = query
            page.fields.append(("limit", "100"))
            if let after { page.fields.append(("starting_after", after)) }
            let node = try await get(path, query: page)
            guard case .list(let items)? = node["data"]?.value else { break }
            all += items
            guard node["has_more"]?.scalarText == "true", let last = items.last?["id"]?.scalarText else { break }
            after = last
        }
        return all
    }
}
