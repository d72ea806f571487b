import CompressNIO
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore
import TollgateStore

/// The collector's HTTP side on the admin port: Moesif's ingestion API and CloudEvents,
/// authenticated by `X-Moesif-Application-Id: COLLECTOR_KEY` (CloudEvents also by
/// `Authorization: Bearer COLLECTOR_KEY`). It answers before the admin routes; `POST
/// /v1/subscriptions` is the collector's only when the Moesif header is present, the admin's otherwise.
struct CollectorMiddleware<Context: RequestContext>: RouterMiddleware {
    let collector: Collector
    let keyDigest: SHA256.Digest

    static var moesifKey: HTTPField.Name { HTTPField.Name("X-Moesif-Application-Id")! }
    static var configETagName: HTTPField.Name { HTTPField.Name("X-Moesif-Config-ETag")! }

    /// The most a batch may hold once decompressed; a single item, 1 MB.
    static var largestBatch: Int { 50 << 20 }

    init(store: TollgateStore, collectorKey: String) {
        self.collector = Collector(store: store)
        self.keyDigest = SHA256.hash(data: Data(collectorKey.utf8))
    }

    /// What a collector path does.
    enum Operation {
        case events(Collector.Kind, batch: Bool)
        case companies(batch: Bool), users(batch: Bool), subscriptions(batch: Bool)
        case config, rules
    }

    static func operation(_ method: HTTPRequest.Method, _ path: String, moesifHeader: Bool) -> Operation? {
        switch (method, path) {
        case (.post, "/v1/events"): .events(.apiEvent, batch: false)
        case (.post, "/v1/events/batch"): .events(.apiEvent, batch: true)
        case (.post, "/v1/actions"): .events(.action, batch: false)
        case (.post, "/v1/actions/batch"): .events(.action, batch: true)
        case (.post, "/v1/cloudevents"): .events(.cloudEvent, batch: false)
        case (.post, "/v1/companies"): .companies(batch: false)
        case (.post, "/v1/companies/batch"): .companies(batch: true)
        case (.post, "/v1/users"): .users(batch: false)
        case (.post, "/v1/users/batch"): .users(batch: true)
        case (.post, "/v1/subscriptions") where moesifHeader: .subscriptions(batch: false)
        case (.post, "/v1/subscriptions/batch"): .subscriptions(batch: true)
        case (.get, "/v1/config"): .config
        case (.get, "/v1/rules"): .rules
        default: nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let moesifHeader = request.headers[Self.moesifKey]
        guard var operation = Self.operation(request.method, request.uri.path, moesifHeader: moesifHeader != nil) else {
            return try await next(request, context)
        }
        var key = moesifHeader
        if case .events(.cloudEvent, _) = operation, key == nil, let bearer = request.headers[.authorization],
           bearer.lowercased().hasPrefix("bearer ") {
            key = String(bearer.dropFirst(7))
        }
        guard let key, SHA256.hash(data: Data(key.utf8)) == keyDigest else {
            throw APIError(.unauthorized, key == nil
                ? "collector key required: send X-Moesif-Application-Id: <TOLLGATE_COLLECTOR_KEY>" : "invalid collector key")
        }
        if case .events(.cloudEvent, _) = operation {
            let type = request.headers[.contentType]?.lowercased() ?? ""
            operation = .events(.cloudEvent, batch: type.hasPrefix("application/cloudevents-batch+json"))
        }
        switch operation {
        case .config:
            return configResponse()
        case .rules:
            return JSONResponse.make(DocumentNode(.list([])))
        case .events(let kind, let batch):
            let outcome = try await withTaskExecutorPreference(IngestExecutor.shared) {
                try await collector.ingest(try await Self.items(request, batch: batch), kind: kind)
            }
            if !batch, let refusal = outcome.refused.first { throw APIError(.unprocessableContent, refusal.message) }
            var response = JSONResponse.make(outcome.document, status: batch ? .ok : .created)
            response.headers[Self.configETagName] = MoesifConfig.etag
            return response
        case .companies(let batch):
            return try await records(request, batch: batch, key: "company_id") { try await collector.saveCompanies($0) }
        case .users(let batch):
            return try await records(request, batch: batch, key: "user_id") { try await collector.saveRecords($0, kind: .user) }
        case .subscriptions(let batch):
            return try await records(request, batch: batch, key: "subscription_id") {
                try await collector.saveRecords($0, kind: .subscription)
            }
        }
    }

    /// Users, companies and Moesif subscriptions: each item needs its id key; refused items are
    /// reported, the others saved.
    private func records(
        _ request: Request, batch: Bool, key: String, save: ([DocumentNode]) async throws -> [(index: Int, message: String)]
    ) async throws -> Response {
        let items = try await Self.items(request, batch: batch).map(DocumentNode.init)
        var outcome = Collector.Outcome()
        outcome.refused = try await save(items)
        outcome.accepted = items.count - outcome.refused.count
        if !batch, let refusal = outcome.refused.first { throw APIError(.unprocessableContent, refusal.message) }
        return JSONResponse.make(outcome.document, status: batch ? .ok : .created)
    }

    /// The body's items: a JSON array for a batch, one object otherwise; gzip bodies are
    /// inflated first, and the limits apply to the inflated size.
    static func items(_ request: Request, batch: Bool) async throws -> [ScannedJSON] {
        var request = request
        let limit = batch ? largestBatch : CollectorFormat.largestEvent
        let tooLarge = APIError(.contentTooLarge, batch ? "a batch may hold at most 50 MB of JSON" : "an event may hold at most 1 MB of JSON")
        var buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw tooLarge
        }
        let encoding = request.headers[.contentEncoding]?.lowercased() ?? ""
        if encoding.contains("gzip") || buffer.readableBytesView.starts(with: [0x1F, 0x8B]) {
            do {
                buffer = try buffer.decompress(with: .gzip(), maxSize: limit)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                throw tooLarge
            } catch {
                throw APIError(.badRequest, "the body is not valid gzip")
            }
            // compress-nio's limit counts the buffers it allocates, which may round up: check the result too.
            if buffer.readableBytes > limit { throw tooLarge }
        }
        let document: ScannedJSON
        do {
            document = try ScannedJSON.scan(buffer.readableBytesView)
        } catch {
            throw APIError(.badRequest, error.description)
        }
        if batch {
            guard document.kind == .array else { throw APIError(.badRequest, "a batch must be a JSON array") }
            return document.elements
        }
        guard document.isObject else { throw APIError(.badRequest, "the body must be a JSON object") }
        return [document]
    }

    private func configResponse() -> Response {
        var response = JSONResponse.make(MoesifConfig.body)
        response.headers[Self.configETagName] = MoesifConfig.etag
        return response
    }
}

/// What `GET /v1/config` tells Moesif's SDKs: sample everything, no rules.
enum MoesifConfig {
    static let body = DocumentNode.object([
        ("org_id", .text("tollgate")), ("app_id", .text("tollgate")), ("sample_rate", .integer(100)),
        ("user_sample_rate", .object([])), ("company_sample_rate", .object([])), ("user_rules", .object([])),
        ("company_rules", .object([])), ("regex_config", DocumentNode(.list([]))), ("billing_config_jsons", .object([])),
    ])

    /// Changes whenever the configuration does (it is fixed: Tollgate keeps every event).
    static let etag = Hex.encode(SHA256.hash(data: Data(body.jsonText().utf8)).prefix(16))

}

extension Collector {
    /// Moesif companies become Tollgate customers: a new id is created, a known one updated
    /// with the name and email given (`metadata.name`, else `company_domain`; `metadata.email`).
    func saveCompanies(_ items: [DocumentNode]) async throws -> [(index: Int, message: String)] {
        var refused: [(index: Int, message: String)] = []
        for (index, item) in items.enumerated() {
            guard item.entries != nil, let id = item["company_id"]?.scalarText, !id.isEmpty else {
                refused.append((index, "company_id is required"))
                continue
            }
            guard Identifier.isValid(id) else {
                refused.append((index, "company_id " + Identifier.rule))
                continue
            }
            let existing = try await store.customer(id)?.value
            let name = item["metadata"]?["name"]?.scalarText ?? item["company_domain"]?.scalarText ?? existing?.name ?? id
            let email = item["metadata"]?["email"]?.scalarText ?? existing?.email
            try await store.saveCustomer(
                Customer(id: id, name: name, email: email, createdAt: existing?.createdAt ?? Date()), mode: .upsert)
        }
        return refused
    }

    /// Moesif users and subscriptions, kept as they arrived; a user's `company_id` attributes
    /// that user's events which name no company, and creates the customer if it is new.
    func saveRecords(_ items: [DocumentNode], kind: CollectorRecordKind) async throws -> [(index: Int, message: String)] {
        let key = kind == .user ? "user_id" : "subscription_id"
        var refused: [(index: Int, message: String)] = []
        var records: [CollectorRecord] = []
        for (index, item) in items.enumerated() {
            guard item.entries != nil, let id = item[key]?.scalarText, !id.isEmpty, id.utf8.count <= 256 else {
                refused.append((index, "\(key) is required (at most 256 characters)"))
                continue
            }
            let company = item["company_id"]?.scalarText
            if let company {
                guard Identifier.isValid(company) else {
                    refused.append((index, "company_id " + Identifier.rule))
                    continue
                }
                if try await store.customer(company) == nil {
                    try await store.saveCustomer(Customer(id: company, name: company, email: nil, createdAt: Date()), mode: .upsert)
                }
            }
            records.append(CollectorRecord(id: id, customer: company, body: item))
        }
        try await store.saveCollectorRecords(records, kind: kind)
        return refused
    }
}
