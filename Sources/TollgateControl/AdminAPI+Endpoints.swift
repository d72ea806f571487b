import Foundation
import Hummingbird
import TollgateCore
import TollgateStore

extension AdminAPI {
    /// `/v1/products/{id}/endpoints`: a product's billable endpoints. Identifiers never change;
    /// an endpoint is archived, not deleted, so that its history stays readable.
    func addEndpointRoutes(to table: inout AdminRouteTable) {
        let api = self
        table.add(AdminRoute(
            method: .get, path: "/v1/products/{id}/endpoints", summary: "List a product's endpoints",
            success: (200, "EndpointPage")
        ) { _, context in
            let product = try await api.product(context)
            return JSONResponse.page(product.value.endpoints.map { $0.document() }, nextCursor: nil)
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/products/{id}/endpoints", summary: "Add an endpoint to a product",
            success: (201, "Endpoint"), requestSchema: "Endpoint"
        ) { request, context in
            var product = try await api.product(context).value
            let endpoint = try AdminAPI.read(try await AdminAPI.body(request), Endpoint.read)
            if product.endpoints.contains(where: { $0.identifier == endpoint.identifier }) {
                throw StoreError.conflict("endpoint \"\(endpoint.identifier)\" already exists in product \"\(product.id)\"")
            }
            product.endpoints.append(endpoint)
            try await api.store.saveProduct(product, mode: .update)
            try await api.control.reloadRoutes()
            return JSONResponse.make(endpoint.document(), status: .created)
        })
        table.add(AdminRoute(
            method: .get, path: "/v1/products/{id}/endpoints/{identifier}", summary: "Read an endpoint",
            success: (200, "Endpoint")
        ) { _, context in
            let product = try await api.product(context).value
            return JSONResponse.make(try api.endpoint(product, context).endpoint.document())
        })
        table.add(AdminRoute(
            method: .patch, path: "/v1/products/{id}/endpoints/{identifier}",
            summary: "Update an endpoint (its identifier never changes)", success: (200, "Endpoint"), requestSchema: "EndpointPatch"
        ) { request, context in
            var product = try await api.product(context).value
            let (index, existing) = try api.endpoint(product, context)
            let patch = try await AdminAPI.body(request)
            if let given = patch["identifier"]?.scalarText, given != existing.identifier {
                throw APIError.invalid([DocumentProblem(path: "identifier", line: nil, message: "cannot change")])
            }
            let updated = try AdminAPI.read(existing.document().merging(patch), Endpoint.read)
            product.endpoints[index] = updated
            try await api.store.saveProduct(product, mode: .update)
            try await api.control.reloadRoutes()
            return JSONResponse.make(updated.document())
        })
        table.add(AdminRoute(
            method: .post, path: "/v1/products/{id}/endpoints/{identifier}/archive",
            summary: "Archive an endpoint: no longer matched or billed, kept for history", success: (200, "Endpoint")
        ) { _, context in
            var product = try await api.product(context).value
            let (index, _) = try api.endpoint(product, context)
            product.endpoints[index].archived = true
            try await api.store.saveProduct(product, mode: .update)
            try await api.control.reloadRoutes()
            return JSONResponse.make(product.endpoints[index].document())
        })
    }

    private func product(_ context: BasicRequestContext) async throws -> Stored<Product> {
        let id = try AdminAPI.parameter(context, "id")
        guard let product = try await store.product(id) else { throw StoreError.notFound("no product \"\(id)\"") }
        return product
    }

    private func endpoint(_ product: Product, _ context: BasicRequestContext) throws -> (index: Int, endpoint: Endpoint) {
        let identifier = try AdminAPI.parameter(context, "identifier")
        guard let index = product.endpoints.firstIndex(where: { $0.identifier == identifier }) else {
            throw StoreError.notFound("no endpoint \"\(identifier)\" in product \"\(product.id)\"")
        }
        return (index, product.endpoints[index])
    }
}
