import Foundation
import HTTPTypes
import TollgateCore

/// The OpenAPI 3.1 description of the admin port, generated from the same route table that
/// the router serves.
enum OpenAPIDocument {
    static func make(_ table: AdminRouteTable) -> DocumentNode {
        var paths: [(key: String, node: DocumentNode)] = []
        for route in table.routes {
            var operation: [(String, DocumentNode)] = [
                ("summary", .text(route.summary)),
                ("operationId", .text(operationID(route))),
            ]
            var parameters: [DocumentNode] = pathParameters(route.path).map { name in
                .object([("name", .text(name)), ("in", .text("path")), ("required", DocumentNode(.bool(true))),
                         ("schema", .object([("type", .text("string"))]))])
            }
            parameters += route.query.map { parameter in
                .object([("name", .text(parameter.name)), ("in", .text("query")), ("description", .text(parameter.description)),
                         ("schema", .object([("type", .text(parameter.type))]))])
            }
            if !parameters.isEmpty { operation.append(("parameters", DocumentNode(.list(parameters)))) }
            if let schema = route.requestSchema {
                operation.append(("requestBody", .object([
                    ("required", DocumentNode(.bool(true))),
                    ("content", .object([("application/json", .object([("schema", reference(schema))]))])),
                ])))
            }
            var responses: [(String, DocumentNode)] = []
            var success: [(String, DocumentNode)] = [("description", .text("success"))]
            if let schema = route.success.schema {
                success.append(("content", .object([("application/json", .object([("schema", reference(schema))]))])))
            } else if let mediaType = route.successText {
                success.append(("content", .object([(mediaType, .object([("schema", .object([("type", .text("string"))]))]))])))
            }
            responses.append((String(route.success.status), .object(success)))
            let errors: [(Int, String)] = route.authenticated
                ? [(400, "malformed request"), (401, "missing or wrong admin key"), (404, "unknown id"),
                   (409, "conflict"), (422, "invalid body: every problem listed")]
                : []
            for (status, description) in errors {
                responses.append((String(status), .object([
                    ("description", .text(description)),
                    ("content", .object([("application/json", .object([("schema", reference("Error"))]))])),
                ])))
            }
            operation.append(("responses", .object(responses)))
            if route.authenticated {
                operation.append(("security", DocumentNode(.list([.object([("adminKey", DocumentNode(.list([])))])]))))
            }
            let method = route.method.rawValue.lowercased()
            if let index = paths.firstIndex(where: { $0.key == route.path }) {
                paths[index].node = paths[index].node.merging(.object([(method, .object(operation))]))
            } else {
                paths.append((route.path, .object([(method, .object(operation))])))
            }
        }
        // The component schemas are fixed text; a malformed edit fails the OpenAPI test at once.
        let components = (try? DocumentNode.parseJSON(Array(componentsJSON.utf8))) ?? DocumentNode(.map([]))
        return .object([
            ("openapi", .text("3.1.0")),
            ("info", .object([
                ("title", .text("Tollgate admin API")),
                ("version", .text("1")),
                ("description", .text("Catalog, customers, subscriptions and usage of a Tollgate deployment. Amounts are decimal strings; times are RFC 3339 UTC.")),
            ])),
            ("paths", DocumentNode(.map(paths))),
            ("components", components),
        ])
    }

    private static func reference(_ schema: String) -> DocumentNode {
        .object([("$ref", .text("#/components/schemas/\(schema)"))])
    }

    private static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
    }

    private static func operationID(_ route: AdminRoute) -> String {
        let words = route.path.split(separator: "/").dropFirst().map { part in
            part.hasPrefix("{") ? "By" + part.dropFirst().dropLast().capitalized : part.replacingOccurrences(of: "-", with: "_").capitalized
        }
        return route.method.rawValue.lowercased() + words.joined()
    }

    static let componentsJSON = #"""
    {
      "securitySchemes": {"adminKey": {"type": "http", "scheme": "bearer", "description": "TOLLGATE_ADMIN_KEY"}},
      "schemas": {
        "Error": {"type": "object", "required": ["message"], "properties": {
          "message": {"type": "string"},
          "problems": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}}}},
        "Decimal": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"},
        "Endpoint": {"type": "object", "required": ["identifier", "name", "method", "path"], "properties": {
          "identifier": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
          "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
          "path": {"type": "string", "description": "a template such as /invoice/{id}"}, "archived": {"type": "boolean"}}},
        "EndpointPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Endpoint"}}, "next_cursor": {"type": ["string", "null"]}}},
        "Product": {"type": "object", "required": ["id", "name", "upstream"], "properties": {
          "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"}, "name": {"type": "string"},
          "upstream": {"type": "string", "description": "http://host:port[/base]; never shown to consumers"},
          "upstream_header": {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "string", "writeOnly": true}}},
          "webhook": {"type": "object", "properties": {"url": {"type": "string"}, "secret": {"type": "string", "writeOnly": true}}},
          "unlisted_endpoints": {"type": "string", "enum": ["allow", "deny"]},
          "endpoints": {"type": "array", "items": {"$ref": "#/components/schemas/Endpoint"}},
          "archived": {"type": "boolean", "readOnly": true}, "created_at": {"type": "string", "readOnly": true}, "updated_at": {"type": "string", "readOnly": true}}},
        "ProductPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Product"}}, "next_cursor": {"type": ["string", "null"]}}},
        "Meter": {"type": "object", "required": ["id", "name", "source", "aggregation"], "properties": {
          "id": {"type": "string"}, "name": {"type": "string"}, "source": {"type": "string", "description": "api_calls or event:<name>"},
          "filter": {"type": "object", "properties": {"endpoint": {"type": "string"}, "method": {"type": "string"}, "status": {"type": "string", "description": "2xx, 404, <500, >=400"}, "properties": {"type": "object", "additionalProperties": {"type": "string"}}}},
          "aggregation": {"type": "string", "enum": ["count", "unique_count", "sum", "max", "latest"]}, "property": {"type": "string"},
          "archived": {"type": "boolean", "readOnly": true}, "created_at": {"type": "string", "readOnly": true}, "updated_at": {"type": "string", "readOnly": true}}},
        "MeterPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Meter"}}, "next_cursor": {"type": ["string", "null"]}}},
        "Tier": {"type": "object", "required": ["up_to", "unit"], "properties": {"up_to": {"oneOf": [{"$ref": "#/components/schemas/Decimal"}, {"type": "null"}]}, "unit": {"$ref": "#/components/schemas/Decimal"}, "flat": {"$ref": "#/components/schemas/Decimal"}}},
        "Price": {"type": "object", "required": ["kind"], "properties": {
          "kind": {"type": "string", "enum": ["flat", "setup", "prepaid", "usage"]}, "amount": {"$ref": "#/components/schemas/Decimal"},
          "endpoint": {"type": "string"}, "quota": {"type": "integer", "minimum": 1},
          "window": {"type": "string", "enum": ["second", "minute", "hour", "day", "month", "year", "billing_period"]},
          "meter": {"type": "string"}, "model": {"type": "string", "enum": ["per_unit", "graduated", "volume", "package"]},
          "unit": {"$ref": "#/components/schemas/Decimal"}, "tiers": {"type": "array", "items": {"$ref": "#/components/schemas/Tier"}},
          "package_size": {"type": "integer", "minimum": 1}, "free_units": {"type": "integer", "minimum": 0}}},
        "Plan": {"type": "object", "required": ["id", "product", "name", "currency", "period", "prices"], "properties": {
          "id": {"type": "string"}, "product": {"type": "string"}, "name": {"type": "string"}, "currency": {"type": "string", "description": "ISO 4217"},
          "period": {"type": "string", "enum": ["day", "week", "month", "year"]}, "prices": {"type": "array", "items": {"$ref": "#/components/schemas/Price"}},
          "archived": {"type": "boolean", "readOnly": true}, "created_at": {"type": "string", "readOnly": true}, "updated_at": {"type": "string", "readOnly": true}}},
        "PlanPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Plan"}}, "next_cursor": {"type": ["string", "null"]}}},
        "Customer": {"type": "object", "required": ["name"], "properties": {
          "id": {"type": "string"}, "name": {"type": "string"}, "email": {"type": ["string", "null"]},
          "archived": {"type": "boolean", "readOnly": true}, "created_at": {"type": "string"}, "updated_at": {"type": "string", "readOnly": true}}},
        "CustomerPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Customer"}}, "next_cursor": {"type": ["string", "null"]}}},
        "SubscriptionRequest": {"type": "object", "required": ["customer", "plan"], "properties": {"id": {"type": "string"}, "customer": {"type": "string"}, "plan": {"type": "string"}, "started_at": {"type": "string", "format": "date-time"}}},
        "ChangePlanRequest": {"type": "object", "required": ["plan"], "properties": {"plan": {"type": "string"}}},
        "Subscription": {"type": "object", "properties": {
          "id": {"type": "string"}, "customer": {"type": "string"}, "plan": {"type": "string"}, "product": {"type": "string"},
          "status": {"type": "string", "enum": ["active", "terminated"]}, "started_at": {"type": "string", "format": "date-time"},
          "terminated_at": {"type": ["string", "null"], "format": "date-time"}, "current_period_start": {"type": "string", "format": "date-time"},
          "current_period_end": {"type": "string", "format": "date-time"}, "created_at": {"type": "string", "format": "date-time"}}},
        "SubscriptionWithToken": {"allOf": [{"$ref": "#/components/schemas/Subscription"}, {"type": "object", "required": ["token"], "properties": {"token": {"type": "string", "description": "shown only in this answer"}}}]},
        "SubscriptionPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Subscription"}}, "next_cursor": {"type": ["string", "null"]}}},
        "UsageValues": {"type": "object", "properties": {
          "endpoints": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "billable calls per endpoint identifier"},
          "meters": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Decimal"}}}},
        "Usage": {"allOf": [{"$ref": "#/components/schemas/UsageValues"}, {"type": "object", "properties": {
          "subscription": {"type": "string"}, "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"},
          "series": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/UsageValues"}, {"type": "object", "properties": {"start": {"type": "string"}, "end": {"type": "string"}}}]}}}}]},
        "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
        "Delivery": {"type": "object", "properties": {
          "id": {"type": "string", "description": "the event id, the same on every attempt"}, "type": {"type": "string"},
          "product": {"type": "string"}, "subscription": {"type": ["string", "null"]}, "url": {"type": "string"},
          "status": {"type": "string", "enum": ["pending", "delivered", "failed"]}, "attempts": {"type": "integer"},
          "last_status": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
          "next_attempt_at": {"type": ["string", "null"]}, "created_at": {"type": "string"}, "delivered_at": {"type": ["string", "null"]}}},
        "DeliveryPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}, "next_cursor": {"type": ["string", "null"]}}},
        "CloseRequest": {"type": "object", "properties": {"at": {"type": "string", "format": "date-time", "description": "default now; never in the future"}}},
        "CloseResult": {"type": "object", "properties": {"invoices": {"type": "array", "items": {"type": "string"}, "description": "ids of the invoices created by this call"}}},
        "InvoiceLine": {"type": "object", "properties": {
          "description": {"type": "string"}, "plan": {"type": "string"}, "price": {"type": "integer", "description": "index of the price in the plan"},
          "quantity": {"$ref": "#/components/schemas/Decimal"}, "amount": {"$ref": "#/components/schemas/Decimal"},
          "period_start": {"type": "string", "format": "date-time"}, "period_end": {"type": "string", "format": "date-time"}}},
        "Invoice": {"type": "object", "properties": {
          "id": {"type": "string"}, "subscription": {"type": "string"}, "customer": {"type": "string"}, "product": {"type": "string"},
          "currency": {"type": "string"}, "period_start": {"type": "string", "format": "date-time"}, "period_end": {"type": "string", "format": "date-time"},
          "status": {"type": "string", "enum": ["draft", "finalized", "paid", "void"]},
          "lines": {"type": "array", "items": {"$ref": "#/components/schemas/InvoiceLine"}},
          "subtotal": {"$ref": "#/components/schemas/Decimal"}, "total": {"$ref": "#/components/schemas/Decimal"},
          "created_at": {"type": "string", "format": "date-time"}, "finalized_at": {"type": ["string", "null"], "format": "date-time"}}},
        "InvoicePage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Invoice"}}, "next_cursor": {"type": ["string", "null"]}}},
        "LateEventPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
          "id": {"type": "string"}, "name": {"type": "string"}, "source": {"type": "string"},
          "occurred_at": {"type": "string", "format": "date-time"}, "invoice": {"type": "string", "description": "the invoice whose period the event falls in"}}}},
          "next_cursor": {"type": ["string", "null"]}}},
        "QuotaList": {"type": "array", "items": {"type": "object", "properties": {
          "endpoint": {"type": ["string", "null"], "description": "null: every call of the product"},
          "window": {"type": "string", "enum": ["second", "minute", "hour", "day", "month", "year", "billing_period"]},
          "limit": {"type": "integer"}, "used": {"type": "integer"}, "remaining": {"type": "integer"},
          "reset_at": {"type": "string", "format": "date-time"}}}}
      }
    }
    """#
}
