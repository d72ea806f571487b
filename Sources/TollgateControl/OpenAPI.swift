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
                         ("schema", .object([("type", .text(parameter.type))] + parameter.schema))])
            }
            if !parameters.isEmpty { operation.append(("parameters", DocumentNode(.list(parameters)))) }
            if let schema = route.requestSchema {
                operation.append(("requestBody", .object([
                    ("required", DocumentNode(.bool(route.requestBodyRequired))),
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
                   (409, "conflict"), (422, "invalid body: every problem listed")] + route.extraErrors.map { ($0.status, $0.description) }
                : []
            for (status, description) in errors {
                responses.append((String(status), .object([
                    ("description", .text(description)),
                    ("content", .object([("application/json", .object([("schema", reference("Error"))]))])),
                ])))
            }
            operation.append(("responses", .object(responses)))
            // Public operations say so (an empty list), not by leaving `security` out.
            operation.append(("security", DocumentNode(.list(
                route.authenticated ? [.object([("adminKey", DocumentNode(.list([])))])] : []))))
            let method = route.method.rawValue.lowercased()
            if let index = paths.firstIndex(where: { $0.key == route.path }) {
                paths[index].node = paths[index].node.merging(.object([(method, .object(operation))]))
            } else {
                paths.append((route.path, .object([(method, .object(operation))])))
            }
        }
        // The component schemas are fixed text; a malformed edit fails the OpenAPI test at once.
        let components = (try? DocumentNode.parseJSON(Array(requestShapes(componentsJSON).utf8))) ?? DocumentNode(.map([]))
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

    /// The component schemas completed: the currencies Tollgate knows, and in the request shapes
    /// (the objects that allow no other key) `null` for every optional key, which the API reads
    /// as the key left out.
    static func requestShapes(_ json: String) -> String {
        guard var root = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any],
              var schemas = root["schemas"] as? [String: Any] else { return json }
        schemas["Currency"] = ["type": "string", "enum": Currency.codes, "description": "ISO 4217"]
        for (name, value) in schemas {
            guard var schema = value as? [String: Any], schema["additionalProperties"] as? Bool == false,
                  var properties = schema["properties"] as? [String: Any] else { continue }
            // A patch may leave out what the whole object requires, but not null it.
            let base = name.hasSuffix("Patch") ? schemas[String(name.dropLast(5))] as? [String: Any] : nil
            let required = Set(schema["required"] as? [String] ?? []).union(base?["required"] as? [String] ?? [])
            for (key, property) in properties where !required.contains(key) {
                guard let property = property as? [String: Any], property["readOnly"] as? Bool != true else { continue }
                properties[key] = ["anyOf": [property, ["type": "null"]]]
            }
            schema["properties"] = properties
            schemas[name] = schema
        }
        root["schemas"] = schemas
        guard let data = try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys]) else { return json }
        return String(decoding: data, as: UTF8.self)
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
        "Decimal": {"type": "string", "pattern": "^-?[0-9]{1,17}(\\.[0-9]{1,17})?$"},
        "Identifier": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$", "description": "letters, digits, '-', '_' or '.'; at most 64"},
        "ProductID": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$", "description": "a slug: the product's route prefix"},
        "Name": {"type": "string", "pattern": "\\S", "description": "not only white space"},
        "Endpoint": {"type": "object", "additionalProperties": false, "required": ["identifier", "name", "method", "path"], "properties": {
          "identifier": {"$ref": "#/components/schemas/Identifier"}, "name": {"$ref": "#/components/schemas/Name"}, "description": {"type": "string"},
          "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
          "path": {"type": "string", "pattern": "^(/([^/{}]*|\\{[A-Za-z0-9_-]+\\}))+$", "description": "a template such as /invoice/{id}"}, "archived": {"type": "boolean"}}},
        "EndpointPatch": {"type": "object", "additionalProperties": false, "properties": {
          "name": {"$ref": "#/components/schemas/Name"},
          "description": {"type": "string"}, "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
          "path": {"type": "string", "pattern": "^(/([^/{}]*|\\{[A-Za-z0-9_-]+\\}))+$", "description": "a template such as /invoice/{id}"}, "archived": {"type": "boolean"}}},
        "EndpointPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Endpoint"}}, "next_cursor": {"type": ["string", "null"]}}},
        "UpstreamHeader": {"type": "object", "additionalProperties": false, "required": ["name", "value"], "properties": {
          "name": {"type": "string", "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"}, "value": {"type": "string", "writeOnly": true}}},
        "Webhook": {"type": "object", "additionalProperties": false, "required": ["url", "secret"], "properties": {
          "url": {"type": "string", "pattern": "^https?://[A-Za-z0-9.-]+(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$", "description": "http:// or https:// URL"}, "secret": {"$ref": "#/components/schemas/Name", "writeOnly": true}}},
        "Product": {"type": "object", "additionalProperties": false, "required": ["id", "name", "upstream"], "properties": {
          "id": {"$ref": "#/components/schemas/ProductID"}, "name": {"$ref": "#/components/schemas/Name"},
          "upstream": {"type": "string", "pattern": "^https?://[A-Za-z0-9.-]+(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$", "description": "http(s)://host:port[/base]; never shown to consumers"},
          "upstream_ca": {"type": "string", "minLength": 1, "description": "PEM file of the CAs an https:// upstream is verified against (default: the system trust store)"},
          "upstream_header": {"$ref": "#/components/schemas/UpstreamHeader"},
          "webhook": {"$ref": "#/components/schemas/Webhook"},
          "unlisted_endpoints": {"type": "string", "enum": ["allow", "deny"]},
          "case_sensitive_paths": {"type": "boolean", "description": "endpoint paths match only in their exact case (default false)"},
          "endpoints": {"type": "array", "items": {"$ref": "#/components/schemas/Endpoint"}},
          "archived": {"type": "boolean", "readOnly": true}, "created_at": {"type": "string", "readOnly": true}, "updated_at": {"type": "string", "readOnly": true}}},
        "ProductPatch": {"type": "object", "additionalProperties": false, "properties": {
          "name": {"$ref": "#/components/schemas/Name"},
          "upstream": {"type": "string", "pattern": "^https?://[A-Za-z0-9.-]+(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$", "description": "http(s)://host:port[/base]; never shown to consumers"},
          "upstream_ca": {"type": "string", "minLength": 1, "description": "PEM file of the CAs an https:// upstream is verified against (default: the system trust store)"},
          "upstream_header": {"$ref": "#/components/schemas/UpstreamHeader"},
          "webhook": {"$ref": "#/components/schemas/Webhook"},
          "unlisted_endpoints": {"type": "string", "enum": ["allow", "deny"]},
          "case_sensitive_paths": {"type": "boolean"}}},
        "ProductPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Product"}}, "next_cursor": {"type": ["string", "null"]}}},
        "MeterFilter": {"type": "object", "additionalProperties": false, "properties": {
          "endpoint": {"$ref": "#/components/schemas/Identifier"}, "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
          "status": {"type": "string", "pattern": "^([1-5]xx|[1-5][0-9][0-9]|(<|<=|>|>=)[1-5][0-9][0-9])$", "description": "2xx, 404, <500, >=400"},
          "properties": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "Meter": {"type": "object", "additionalProperties": false, "required": ["id", "name", "source", "aggregation"],
          "if": {"required": ["aggregation"], "properties": {"aggregation": {"enum": ["unique_count", "sum", "max", "latest"]}}},
          "then": {"required": ["property"], "properties": {"property": {"$ref": "#/components/schemas/Name"}}},
          "properties": {
          "id": {"$ref": "#/components/schemas/Identifier"}, "name": {"$ref": "#/components/schemas/Name"},
          "source": {"type": "string", "pattern": "^(api_calls|event:.+)$", "description": "api_calls or event:<name>"},
          "filter": {"$ref": "#/components/schemas/MeterFilter"},
          "aggregation": {"type": "string", "enum": ["count", "unique_count", "sum", "max", "latest"]}, "property": {"$ref": "#/components/schemas/Name", "description": "a dotted path; required unless the aggregation is count"},
          "archived": {"type": "boolean", "readOnly": true}, "created_at": {"type": "string", "readOnly": true}, "updated_at": {"type": "string", "readOnly": true}}},
        "MeterPatch": {"type": "object", "additionalProperties": false, "properties": {
          "name": {"$ref": "#/components/schemas/Name"},
          "source": {"type": "string", "pattern": "^(api_calls|event:.+)$"}, "filter": {"$ref": "#/components/schemas/MeterFilter"},
          "aggregation": {"type": "string", "enum": ["count", "unique_count", "sum", "max", "latest"]}, "property": {"$ref": "#/components/schemas/Name"}}},
        "MeterPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Meter"}}, "next_cursor": {"type": ["string", "null"]}}},
        "Tier": {"type": "object", "additionalProperties": false, "required": ["up_to", "unit"], "properties": {"up_to": {"oneOf": [{"$ref": "#/components/schemas/Decimal"}, {"type": "null"}]}, "unit": {"$ref": "#/components/schemas/Decimal"}, "flat": {"$ref": "#/components/schemas/Decimal"}}},
        "Price": {"type": "object", "required": ["kind"], "properties": {
          "kind": {"type": "string", "enum": ["flat", "setup", "prepaid", "usage"]}, "amount": {"$ref": "#/components/schemas/Decimal"},
          "endpoint": {"type": "string"}, "quota": {"type": "integer", "minimum": 1},
          "window": {"type": "string", "enum": ["second", "minute", "hour", "day", "month", "year", "billing_period"]},
          "meter": {"type": "string"}, "model": {"type": "string", "enum": ["per_unit", "graduated", "volume", "package"]},
          "unit": {"$ref": "#/components/schemas/Decimal"}, "tiers": {"type": "array", "items": {"$ref": "#/components/schemas/Tier"}},
          "package_size": {"type": "integer", "minimum": 1}, "free_units": {"type": "integer", "minimum": 0}},
          "description": "the keys allowed depend on kind (and model): flat/setup {amount}, prepaid {endpoint?, quota, window, amount?}, usage {meter, model, unit | tiers | package_size, amount, free_units?}"},
        "Plan": {"type": "object", "additionalProperties": false, "required": ["id", "product", "name", "currency", "period", "prices"], "properties": {
          "id": {"$ref": "#/components/schemas/Identifier"}, "product": {"$ref": "#/components/schemas/ProductID"}, "name": {"$ref": "#/components/schemas/Name"},
          "currency": {"$ref": "#/components/schemas/Currency"},
          "period": {"type": "string", "enum": ["day", "week", "month", "year"]},
          "public": {"type": "boolean", "description": "offered for self-serve signup in the consumer portal (default false)"},
          "prices": {"type": "array", "items": {"$ref": "#/components/schemas/Price"}},
          "archived": {"type": "boolean", "readOnly": true}, "created_at": {"type": "string", "readOnly": true}, "updated_at": {"type": "string", "readOnly": true}}},
        "PlanPatch": {"type": "object", "additionalProperties": false, "properties": {
          "name": {"$ref": "#/components/schemas/Name"},
          "currency": {"$ref": "#/components/schemas/Currency"},
          "period": {"type": "string", "enum": ["day", "week", "month", "year"]},
          "public": {"type": "boolean"},
          "prices": {"type": "array", "items": {"$ref": "#/components/schemas/Price"}}}},
        "PlanPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Plan"}}, "next_cursor": {"type": ["string", "null"]}}},
        "Customer": {"type": "object", "additionalProperties": false, "required": ["name"], "properties": {
          "id": {"$ref": "#/components/schemas/Identifier"}, "name": {"$ref": "#/components/schemas/Name"}, "email": {"type": ["string", "null"], "pattern": "@"},
          "stripe_customer": {"type": ["string", "null"], "maxLength": 255, "pattern": "^cus_[A-Za-z0-9]+$", "description": "link a customer the vendor already has in Stripe; else Tollgate creates one before the first push"},
          "archived": {"type": "boolean", "readOnly": true}, "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "readOnly": true}}},
        "CustomerPatch": {"type": "object", "additionalProperties": false, "properties": {
          "name": {"$ref": "#/components/schemas/Name"},
          "email": {"type": ["string", "null"], "pattern": "@"}, "created_at": {"type": "string", "format": "date-time"},
          "stripe_customer": {"type": ["string", "null"], "maxLength": 255, "pattern": "^cus_[A-Za-z0-9]+$"}}},
        "CustomerPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Customer"}}, "next_cursor": {"type": ["string", "null"]}}},
        "SubscriptionRequest": {"type": "object", "additionalProperties": false, "required": ["customer", "plan"], "properties": {"id": {"$ref": "#/components/schemas/Identifier"}, "customer": {"type": "string"}, "plan": {"type": "string"}, "started_at": {"type": "string", "format": "date-time"}}},
        "ChangePlanRequest": {"type": "object", "additionalProperties": false, "required": ["plan"], "properties": {"plan": {"type": "string"}}},
        "Subscription": {"type": "object", "properties": {
          "id": {"type": "string"}, "customer": {"type": "string"}, "plan": {"type": "string"}, "product": {"type": "string"},
          "status": {"type": "string", "enum": ["active", "past_due", "suspended", "terminated"]}, "started_at": {"type": "string", "format": "date-time"},
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
        "PortalSession": {"type": "object", "required": ["url", "expires_at"], "properties": {
          "url": {"type": "string", "description": "one-time sign-in link to the consumer portal; works once, within the hour"},
          "expires_at": {"type": "string", "format": "date-time"}}},
        "Delivery": {"type": "object", "properties": {
          "id": {"type": "string", "description": "the event id, the same on every attempt"}, "type": {"type": "string"},
          "product": {"type": "string"}, "subscription": {"type": ["string", "null"]}, "url": {"type": "string"},
          "status": {"type": "string", "enum": ["pending", "delivered", "failed"]}, "attempts": {"type": "integer"},
          "last_status": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
          "next_attempt_at": {"type": ["string", "null"]}, "created_at": {"type": "string"}, "delivered_at": {"type": ["string", "null"]}}},
        "DeliveryPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}, "next_cursor": {"type": ["string", "null"]}}},
        "CloseRequest": {"type": "object", "additionalProperties": false, "properties": {"at": {"type": ["string", "null"], "format": "date-time", "description": "default (also null) now; never in the future"}}},
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
          "created_at": {"type": "string", "format": "date-time"}, "finalized_at": {"type": ["string", "null"], "format": "date-time"},
          "provider": {"$ref": "#/components/schemas/ProviderInvoice"}}},
        "ProviderInvoice": {"type": "object", "description": "where the invoice is collected: absent with the built-in provider", "properties": {
          "name": {"type": "string", "enum": ["stripe"]}, "invoice": {"type": ["string", "null"], "description": "the Stripe invoice id, once created"},
          "status": {"type": "string", "description": "pushing, or the Stripe invoice's status (draft, open, paid, void, uncollectible)"},
          "hosted_url": {"type": "string"}, "last_error": {"type": "string"}}},
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
