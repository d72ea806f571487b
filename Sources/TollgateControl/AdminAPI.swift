import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore
import TollgateStore

/// The admin REST API (DESIGN §3.4): its route table, built once.
struct AdminAPI: Sendable {
    let control: ControlPlane

    var store: TollgateStore { control.store }

    func routes() -> AdminRouteTable {
        var table = AdminRouteTable()
        addCatalogRoutes(to: &table)
        addEndpointRoutes(to: &table)
        addSubscriptionRoutes(to: &table)
        addWebhookRoutes(to: &table)
        addBillingRoutes(to: &table)
        return table
    }
}

// MARK: Request helpers

extension AdminAPI {
    static let maxBodySize = 1 << 20

    /// The JSON body as a document; 400 when it is not JSON.
    static func body(_ request: Request, required: Bool = true) async throws -> DocumentNode {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBodySize)
        } catch {
            throw APIError(.contentTooLarge, "request body larger than \(maxBodySize) bytes")
        }
        if buffer.readableBytes == 0 {
            if required { throw APIError(.badRequest, "a JSON body is required") }
            return DocumentNode(.map([]))
        }
        do {
            return try DocumentNode.parseJSON(buffer.readableBytesView)
        } catch {
            throw APIError(.badRequest, error.description)
        }
    }

    /// `limit` (1 to 500, default 50) and `cursor` of a list request.
    static func pageParameters(_ request: Request) throws -> (cursor: String?, limit: Int) {
        let query = request.uri.queryParameters
        var limit = 50
        if let text = query["limit"] {
            guard let value = Int(text), (1...500).contains(value) else {
                throw APIError.invalid([DocumentProblem(path: "limit", line: nil, message: "must be a whole number from 1 to 500")])
            }
            limit = value
        }
        return (query["cursor"].map(String.init), limit)
    }

    static func parameter(_ context: BasicRequestContext, _ name: String) throws -> String {
        guard let value = context.parameters.get(name) else { throw APIError(.badRequest, "missing \(name)") }
        return value
    }

    /// A stored object's document with its bookkeeping fields.
    static func view<T>(_ stored: Stored<T>, _ document: (T) -> DocumentNode) -> DocumentNode {
        var node = document(stored.value)
        if case .map(var entries) = node.value {
            entries.append((key: "archived", node: DocumentNode(.bool(stored.archived))))
            entries.append((key: "created_at", node: .text(RFC3339.string(stored.createdAt))))
            entries.append((key: "updated_at", node: .text(RFC3339.string(stored.updatedAt))))
            node = DocumentNode(.map(entries))
        }
        return node
    }

    /// Reads `node` with `read`, throwing every problem as 422.
    static func read<T>(_ node: DocumentNode, _ read: (DocumentNode, String, DocumentReader) -> T?) throws -> T {
        let reader = DocumentReader()
        let value = read(node, "", reader)
        try reader.throwIfProblems()
        guard let value else { throw APIError.invalid([DocumentProblem(path: "", line: nil, message: "invalid body")]) }
        return value
    }
}

// MARK: Products, meters, plans, customers

/// A top-level collection that is created, read, listed, patched and archived the same way.
struct CatalogResource<Value: Sendable>: Sendable {
    var collection: String
    var noun: String
    var schema: String
    var idKey: String = "id"
    var read: @Sendable (DocumentNode, String, DocumentReader) -> Value?
    /// The object as the API shows it.
    var publicDocument: @Sendable (Value) -> DocumentNode
    /// The object with everything a patch may be merged into (secrets included).
    var fullDocument: @Sendable (Value) -> DocumentNode
    var id: @Sendable (Value) -> String
    var fetch: @Sendable (String) async throws -> Stored<Value>?
    var list: @Sendable (String?, Int) async throws -> Page<Stored<Value>>
    var save: @Sendable (Value, TollgateStore.SaveMode) async throws -> Void
    var archive: @Sendable (String) async throws -> Void
    /// Problems with what the object refers to.
    var check: @Sendable (Value) async throws -> [DocumentProblem] = { _ in [] }
    /// Keys a patch may not contain, with the reason.
    var frozenKeys: [String: String] = [:]
    var afterChange: @Sendable () async throws -> Void = {}

    func register(in table: inout AdminRouteTable) {
        let resource = self
        table.add(AdminRoute(
            method: .post, path: "/v1/\(collection)", summary: "Create a \(noun)", success: (201, schema),
            requestSchema: schema
        ) { request, _ in
            let value = try AdminAPI.read(try await AdminAPI.body(request), resource.read)
            try await resource.validate(value)
            try await resource.save(value, .create)
            try await resource.afterChange()
            return try await resource.answer(resource.id(value), status: .created)
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/\(collection)", summary: "List \(collection)", success: (200, "\(schema)Page"),
            query: [.limit,
                    .cursor]
        ) { request, _ in
            let (cursor, limit) = try AdminAPI.pageParameters(request)
            let page = try await resource.list(cursor, limit)
            return JSONResponse.page(page.items.map { AdminAPI.view($0, resource.publicDocument) }, nextCursor: page.nextCursor)
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/\(collection)/{id}", summary: "Read a \(noun)", success: (200, schema)
        ) { _, context in
            try await resource.answer(try AdminAPI.parameter(context, "id"))
        })
        table.add(AdminRoute(
            method: .patch, path: "/v1/\(collection)/{id}",
            summary: "Update a \(noun): the fields given replace the stored ones", success: (200, schema),
            requestSchema: schema + "Patch"
        ) { request, context in
            let id = try AdminAPI.parameter(context, "id")
            let patch = try await AdminAPI.body(request)
            guard let stored = try await resource.fetch(id) else { throw StoreError.notFound("no \(resource.noun) \"\(id)\"") }
            var problems: [DocumentProblem] = []
            if let given = patch[resource.idKey]?.scalarText, given != id {
                problems.append(DocumentProblem(path: resource.idKey, line: nil, message: "cannot change"))
            }
            // A frozen key may be given with the value it has (a whole object sent back, changed).
            let current = resource.fullDocument(stored.value)
            for (key, reason) in resource.frozenKeys {
                if let given = patch[key], given.jsonText() != current[key]?.jsonText() {
                    problems.append(DocumentProblem(path: key, line: nil, message: reason))
                }
            }
            guard problems.isEmpty else { throw APIError.invalid(problems) }
            let merged = current.merging(patch)
            let value = try AdminAPI.read(merged, resource.read)
            try await resource.validate(value)
            try await resource.save(value, .update)
            try await resource.afterChange()
            return try await resource.answer(id)
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/\(collection)/{id}/archive",
            summary: "Archive a \(noun) (kept for history, no longer offered)", success: (200, schema)
        ) { _, context in
            let id = try AdminAPI.parameter(context, "id")
            try await resource.archive(id)
            try await resource.afterChange()
            return try await resource.answer(id)
        })
    }

    private func validate(_ value: Value) async throws {
        let problems = try await check(value)
        if !problems.isEmpty { throw APIError.invalid(problems) }
    }

    private func answer(_ id: String, status: HTTPResponse.Status = .ok) async throws -> Response {
        guard let stored = try await fetch(id) else { throw StoreError.notFound("no \(noun) \"\(id)\"") }
        return JSONResponse.make(AdminAPI.view(stored, publicDocument), status: status)
    }
}

extension Customer {
    /// Reads a customer; without an `id` one is generated.
    static func read(_ node: DocumentNode, at path: String, _ reader: DocumentReader) -> Customer? {
        guard let object = reader.object(node, at: path) else { return nil }
        defer { object.finish() }
        var id = object.string("id", required: false)
        if let given = id, !Identifier.isValid(given) {
            object.report("id", Identifier.rule)
            id = nil
        }
        let name = object.string("name")
        if let name, name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { object.report("name", "must not be empty") }
        let email = object.string("email", required: false)
        if let email, !email.contains("@") { object.report("email", "must be an e-mail address") }
        var createdAt = Date()
        if let text = object.string("created_at", required: false) {
            if let date = RFC3339.date(text) { createdAt = date } else { object.report("created_at", "must be an RFC 3339 time") }
        }
        let stripeCustomer = object.string("stripe_customer", required: false)
        if let stripeCustomer, !Customer.isStripeID(stripeCustomer) {
            object.report("stripe_customer", "must be a Stripe customer id such as cus_NffrFeUfNV2Hib")
        }
        guard let name, !reader.problems.contains(where: { $0.path.hasPrefix(path) }) else { return nil }
        return Customer(id: id ?? RandomID.make("cus"), name: name, email: email, createdAt: createdAt, stripeCustomer: stripeCustomer)
    }

    /// `cus_` and letters or digits.
    static func isStripeID(_ text: String) -> Bool {
        text.hasPrefix("cus_") && text.count > 4 && text.count <= 255
            && text.dropFirst(4).unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
    }

    func document() -> DocumentNode {
        .object([("id", .text(id)), ("name", .text(name)), ("email", .text(email)), ("stripe_customer", .text(stripeCustomer))])
    }
}

extension AdminAPI {
    func addCatalogRoutes(to table: inout AdminRouteTable) {
        let store = self.store
        let control = self.control
        CatalogResource<Product>(
            collection: "products", noun: "product", schema: "Product", read: Product.read,
            publicDocument: { $0.document(secrets: false) }, fullDocument: { $0.document(secrets: true) }, id: \.id,
            fetch: { try await store.product($0) }, list: { try await store.products(after: $0, limit: $1) },
            save: { try await store.saveProduct($0, mode: $1) }, archive: { try await store.setProductArchived($0, true) },
            frozenKeys: ["endpoints": "change endpoints through /v1/products/{id}/endpoints"],
            afterChange: { try await control.reloadRoutes() }
        ).register(in: &table)

        CatalogResource<Meter>(
            collection: "meters", noun: "meter", schema: "Meter", read: Meter.read,
            publicDocument: { $0.document() }, fullDocument: { $0.document() }, id: \.id,
            fetch: { try await store.meter($0) }, list: { try await store.meters(after: $0, limit: $1) },
            save: { try await store.saveMeter($0, mode: $1) }, archive: { try await store.setMeterArchived($0, true) },
            check: { meter in
                try await control.references().problems(in: meter).map {
                    DocumentProblem(path: $0.path, line: nil, message: $0.message)
                }
            }
        ).register(in: &table)

        CatalogResource<Plan>(
            collection: "plans", noun: "plan", schema: "Plan", read: Plan.read,
            publicDocument: { $0.document() }, fullDocument: { $0.document() }, id: \.id,
            fetch: { try await store.plan($0) }, list: { try await store.plans(after: $0, limit: $1) },
            save: { try await store.savePlan($0, mode: $1) }, archive: { try await store.setPlanArchived($0, true) },
            check: { plan in
                try await control.references().problems(in: plan).map {
                    DocumentProblem(path: $0.path, line: nil, message: $0.message)
                }
            },
            frozenKeys: ["product": "a plan stays with its product; create a new plan instead"],
            afterChange: { try await control.reloadRoutes() }
        ).register(in: &table)

        CatalogResource<Customer>(
            collection: "customers", noun: "customer", schema: "Customer", read: Customer.read,
            publicDocument: { $0.document() },
            fullDocument: { customer in
                customer.document().merging(.object([("created_at", .text(RFC3339.string(customer.createdAt)))]))
            },
            id: \.id, fetch: { try await store.customer($0) }, list: { try await store.customers(after: $0, limit: $1) },
            save: { try await store.saveCustomer($0, mode: $1) }, archive: { try await store.setCustomerArchived($0, true) }
        ).register(in: &table)
    }
}
