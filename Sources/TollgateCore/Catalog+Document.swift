import Foundation

// Reading catalog objects from documents (catalog file, admin API bodies, stored rows) and
// writing them back in the same shape. One reader serves all three, so they never disagree.

/// Rules shared by identifiers.
public enum Identifier {
    /// Product ids are route prefixes: lower-case letters, digits and dashes.
    public static func isValidProductID(_ id: String) -> Bool {
        guard let first = id.utf8.first, id.utf8.count <= 64, first != UInt8(ascii: "-") else { return false }
        return id.utf8.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// What `isValid` asks of an id, as error messages say it.
    public static let rule = "must be letters, digits, '-', '_' or '.' (at most 64 characters)"

    /// Other ids and endpoint identifiers: letters, digits, `-`, `_`, `.`, at most 64.
    public static func isValid(_ id: String) -> Bool {
        guard let first = id.utf8.first, id.utf8.count <= 64, first != UInt8(ascii: "-"), first != UInt8(ascii: ".") else {
            return false
        }
        return id.utf8.allSatisfy {
            isLowerAlphanumeric($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0)
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
        }
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

let httpMethods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

extension ObjectReader {
    func identifier(_ key: String, product: Bool = false) -> String? {
        guard let id = string(key) else { return nil }
        let valid = product ? Identifier.isValidProductID(id) : Identifier.isValid(id)
        guard valid else {
            report(key, product
                ? "must be a slug of a-z, 0-9 and '-' (at most 64 characters)"
                : Identifier.rule)
            return nil
        }
        return id
    }

    /// Marks every key as read, so that `finish()` does not call the keys that depend on an
    /// invalid `kind` or `model` unknown.
    func skipRemainingKeys() {
        for entry in node.entries ?? [] { _ = field(entry.key, required: false) }
    }

    func nonEmptyString(_ key: String, required: Bool = true) -> String? {
        guard let text = string(key, required: required) else { return nil }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            report(key, "must not be empty")
            return nil
        }
        return text
    }
}

extension Product {
    /// Reads a product (with its endpoints) from a document.
    public static func read(_ node: DocumentNode, at path: String, _ reader: DocumentReader) -> Product? {
        guard let object = reader.object(node, at: path) else { return nil }
        defer { object.finish() }
        let id = object.identifier("id", product: true)
        if id == "_portal" { object.report("id", "is reserved") }
        let name = object.nonEmptyString("name")
        var upstream: UpstreamURL?
        if let text = object.string("upstream") {
            upstream = UpstreamURL(text)
            if upstream == nil { object.report("upstream", "must be an absolute http:// or https:// URL without query") }
        }
        let upstreamCA = object.nonEmptyString("upstream_ca", required: false)
        if upstreamCA != nil, let upstream, !upstream.isTLS {
            object.report("upstream_ca", "applies to https:// upstreams only")
        }
        var header: HeaderField?
        if let headerObject = object.object("upstream_header", required: false) {
            let headerName = headerObject.nonEmptyString("name")
            let value = headerObject.string("value")
            headerObject.finish()
            if let headerName {
                if !headerName.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) {
                    headerObject.report("name", "must be a valid header name")
                } else if let value {
                    header = HeaderField(name: headerName, value: value)
                }
            }
        }
        let webhook = WebhookTarget.read(object)
        var policy = UnlistedEndpointPolicy.allow
        if let text = object.choice("unlisted_endpoints", of: UnlistedEndpointPolicy.allCases.map(\.rawValue), required: false) {
            policy = UnlistedEndpointPolicy(rawValue: text) ?? .allow
        }
        let caseSensitivePaths = object.bool("case_sensitive_paths", required: false) ?? false
        var endpoints: [Endpoint] = []
        for item in object.list("endpoints", required: false) ?? [] {
            if let endpoint = Endpoint.read(item.node, at: item.path, reader) {
                if endpoints.contains(where: { $0.identifier == endpoint.identifier }) {
                    reader.report(item.path + ".identifier", item.node, "duplicate endpoint identifier \"\(endpoint.identifier)\"")
                }
                endpoints.append(endpoint)
            }
        }
        guard let id, let name, let upstream else { return nil }
        return Product(
            id: id, name: name, upstream: upstream, upstreamHeader: header, upstreamCA: upstreamCA, webhook: webhook,
            unlistedEndpoints: policy, caseSensitivePaths: caseSensitivePaths, endpoints: endpoints)
    }

    /// The product as a document. Secrets (the upstream header's value, the webhook secret) are
    /// written only when `secrets` is true (for storage); the admin API never shows them.
    public func document(secrets: Bool, endpoints withEndpoints: Bool = true) -> DocumentNode {
        var entries: [(String, DocumentNode)] = [
            ("id", .init(.string(id))),
            ("name", .init(.string(name))),
            ("upstream", .init(.string(upstream.description))),
        ]
        if let upstreamHeader {
            var header: [(String, DocumentNode)] = [("name", .init(.string(upstreamHeader.name)))]
            if secrets { header.append(("value", .init(.string(upstreamHeader.value)))) }
            entries.append(("upstream_header", .object(header)))
        }
        if let upstreamCA { entries.append(("upstream_ca", .init(.string(upstreamCA)))) }
        if let webhook {
            var hook: [(String, DocumentNode)] = [("url", .init(.string(webhook.url)))]
            if secrets { hook.append(("secret", .init(.string(webhook.secret)))) }
            entries.append(("webhook", .object(hook)))
        }
        entries.append(("unlisted_endpoints", .init(.string(unlistedEndpoints.rawValue))))
        entries.append(("case_sensitive_paths", .init(.bool(caseSensitivePaths))))
        if withEndpoints {
            entries.append(("endpoints", .init(.list(endpoints.map { $0.document() }))))
        }
        return .object(entries)
    }
}

extension WebhookTarget {
    static func read(_ parent: ObjectReader) -> WebhookTarget? {
        guard let object = parent.object("webhook", required: false) else { return nil }
        defer { object.finish() }
        let url = object.string("url")
        let secret = object.nonEmptyString("secret")
        if let url {
            guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme?.lowercased()),
                  components.host?.isEmpty == false else {
                object.report("url", "must be an absolute http:// or https:// URL")
                return nil
            }
        }
        guard let url, let secret else { return nil }
        return WebhookTarget(url: url, secret: secret)
    }
}

extension Endpoint {
    /// Reads an endpoint from a document.
    public static func read(_ node: DocumentNode, at path: String, _ reader: DocumentReader) -> Endpoint? {
        guard let object = reader.object(node, at: path) else { return nil }
        defer { object.finish() }
        let identifier = object.identifier("identifier")
        let name = object.nonEmptyString("name")
        let description = object.string("description", required: false) ?? ""
        let method = object.string("method").map { $0.uppercased() }
        if let method, !httpMethods.contains(method) {
            object.report("method", "must be one of \(httpMethods.joined(separator: ", "))")
        }
        var template: PathTemplate?
        if let text = object.string("path") {
            template = PathTemplate(text)
            if template == nil { object.report("path", "must start with '/' and use {name} for placeholders") }
        }
        let archived = object.bool("archived", required: false) ?? false
        guard let identifier, let name, let method, httpMethods.contains(method), let template else { return nil }
        return Endpoint(
            identifier: identifier, name: name, description: description, method: method, path: template, archived: archived)
    }

    public func document() -> DocumentNode {
        var entries: [(String, DocumentNode)] = [
            ("identifier", .init(.string(identifier))),
            ("name", .init(.string(name))),
            ("description", .init(.string(description))),
            ("method", .init(.string(method))),
            ("path", .init(.string(path.description))),
        ]
        if archived { entries.append(("archived", .init(.bool(true)))) }
        return .object(entries)
    }
}

extension Meter {
    /// Reads a meter from a document.
    public static func read(_ node: DocumentNode, at path: String, _ reader: DocumentReader) -> Meter? {
        guard let object = reader.object(node, at: path) else { return nil }
        defer { object.finish() }
        let id = object.identifier("id")
        let name = object.nonEmptyString("name")
        var source: MeterSource?
        if let text = object.string("source") {
            source = MeterSource(text)
            if source == nil { object.report("source", "must be api_calls or event:<name>") }
        }
        var filter = MeterFilter()
        if let filterObject = object.object("filter", required: false) {
            // Like every optional key, `null` is the key left out.
            if let text = filterObject.string("endpoint", required: false) {
                if Identifier.isValid(text) { filter.endpoint = text } else { filterObject.report("endpoint", Identifier.rule) }
            }
            filter.method = filterObject.string("method", required: false)?.uppercased()
            if let method = filter.method, !httpMethods.contains(method) {
                filterObject.report("method", "must be one of \(httpMethods.joined(separator: ", "))")
            }
            if let text = filterObject.string("status", required: false) {
                filter.status = StatusFilter(text)
                if filter.status == nil { filterObject.report("status", "must look like 2xx, 404, <500 or >=400") }
            }
            if let properties = filterObject.object("properties", required: false) {
                for entry in properties.node.entries ?? [] {
                    _ = properties.field(entry.key, required: false)
                    guard let text = entry.node.scalarText else {
                        properties.report(entry.key, "must be a string, number or boolean")
                        continue
                    }
                    filter.properties[entry.key] = text
                }
                properties.finish()
            }
            filterObject.finish()
        }
        var aggregation: Aggregation?
        if let text = object.choice("aggregation", of: Aggregation.allCases.map(\.rawValue)) {
            aggregation = Aggregation(rawValue: text)
        }
        let property = object.nonEmptyString("property", required: false)
        if let aggregation, aggregation != .count, property == nil {
            object.report("property", "is required for the \(aggregation.rawValue) aggregation")
        }
        guard let id, let name, let source, let aggregation else { return nil }
        return Meter(id: id, name: name, source: source, filter: filter, aggregation: aggregation, property: property)
    }

    public func document() -> DocumentNode {
        var entries: [(String, DocumentNode)] = [
            ("id", .init(.string(id))),
            ("name", .init(.string(name))),
            ("source", .init(.string(source.description))),
        ]
        if !filter.isEmpty {
            var filterEntries: [(String, DocumentNode)] = []
            if let endpoint = filter.endpoint { filterEntries.append(("endpoint", .init(.string(endpoint)))) }
            if let method = filter.method { filterEntries.append(("method", .init(.string(method)))) }
            if let status = filter.status { filterEntries.append(("status", .init(.string(status.description)))) }
            if !filter.properties.isEmpty {
                filterEntries.append(("properties", .object(filter.properties.sorted { $0.key < $1.key }.map {
                    ($0.key, DocumentNode(.string($0.value)))
                })))
            }
            entries.append(("filter", .object(filterEntries)))
        }
        entries.append(("aggregation", .init(.string(aggregation.rawValue))))
        if let property { entries.append(("property", .init(.string(property)))) }
        return .object(entries)
    }
}

extension Plan {
    /// Reads a plan from a document.
    public static func read(_ node: DocumentNode, at path: String, _ reader: DocumentReader) -> Plan? {
        guard let object = reader.object(node, at: path) else { return nil }
        defer { object.finish() }
        let id = object.identifier("id")
        let product = object.identifier("product", product: true)
        let name = object.nonEmptyString("name")
        var currency: String?
        if let text = object.string("currency") {
            if Currency.minorUnits(text) != nil {
                currency = text
            } else {
                object.report("currency", "must be an ISO 4217 code such as EUR, USD or JPY")
            }
        }
        let period = object.choice("period", of: BillingPeriodUnit.allCases.map(\.rawValue)).flatMap(BillingPeriodUnit.init)
        let isPublic = object.bool("public", required: false) ?? false
        var prices: [Price] = []
        var complete = true
        for item in object.list("prices") ?? [] {
            if let price = Price.read(item.node, at: item.path, reader) { prices.append(price) } else { complete = false }
        }
        guard let id, let product, let name, let currency, let period, complete else { return nil }
        return Plan(id: id, product: product, name: name, currency: currency, period: period, prices: prices, isPublic: isPublic)
    }

    /// The plan as the catalog writes it; `public` appears only when true.
    public func document() -> DocumentNode {
        var entries: [(String, DocumentNode)] = [
            ("id", .init(.string(id))),
            ("product", .init(.string(product))),
            ("name", .init(.string(name))),
            ("currency", .init(.string(currency))),
            ("period", .init(.string(period.rawValue))),
        ]
        if isPublic { entries.append(("public", .init(.bool(true)))) }
        entries.append(("prices", .init(.list(prices.map { $0.document() }))))
        return .object(entries)
    }
}

extension Price {
    static let kinds = ["flat", "setup", "prepaid", "usage"]

    /// Reads a price from a document.
    public static func read(_ node: DocumentNode, at path: String, _ reader: DocumentReader) -> Price? {
        guard let object = reader.object(node, at: path) else { return nil }
        defer { object.finish() }
        guard let kind = object.choice("kind", of: kinds) else {
            object.skipRemainingKeys()
            return nil
        }
        switch kind {
        case "flat":
            return object.amount("amount").map { .flat(amount: $0) }
        case "setup":
            return object.amount("amount").map { .setup(amount: $0) }
        case "prepaid":
            let endpoint = object.node["endpoint"] == nil ? nil : object.identifier("endpoint")
            let quota = object.integer("quota", in: 1...Int(Int32.max))
            let window = object.choice("window", of: QuotaWindow.allCases.map(\.rawValue)).flatMap(QuotaWindow.init)
            let amount = object.amount("amount", required: false)
            guard let quota, let window else { return nil }
            if object.node["endpoint"] != nil, endpoint == nil { return nil }
            return .prepaid(PrepaidQuota(endpoint: endpoint, quota: quota, window: window, amount: amount))
        default:
            let meter = object.identifier("meter")
            guard let model = object.choice("model", of: ["per_unit", "graduated", "volume", "package"]) else {
                object.skipRemainingKeys()
                return nil
            }
            let pricing: PricingModel?
            switch model {
            case "per_unit":
                pricing = object.amount("unit").map { .perUnit(unit: $0) }
            case "graduated":
                pricing = Tier.readTiers(object).map { .graduated(tiers: $0) }
            case "volume":
                pricing = Tier.readTiers(object).map { .volume(tiers: $0) }
            default:
                let size = object.integer("package_size", in: 1...Int(Int32.max))
                let amount = object.amount("amount")
                let free = object.integer("free_units", required: false) ?? 0
                if let size, let amount { pricing = .package(size: size, amount: amount, freeUnits: free) } else { pricing = nil }
            }
            guard let meter, let pricing else { return nil }
            return .usage(UsagePrice(meter: meter, model: pricing))
        }
    }

    public func document() -> DocumentNode {
        var entries: [(String, DocumentNode)] = [("kind", .init(.string(kind)))]
        switch self {
        case .flat(let amount), .setup(let amount):
            entries.append(("amount", .init(.string(amount.description))))
        case .prepaid(let quota):
            if let endpoint = quota.endpoint { entries.append(("endpoint", .init(.string(endpoint)))) }
            entries.append(("quota", .init(.number(String(quota.quota)))))
            entries.append(("window", .init(.string(quota.window.rawValue))))
            if let amount = quota.amount { entries.append(("amount", .init(.string(amount.description)))) }
        case .usage(let usage):
            entries.append(("meter", .init(.string(usage.meter))))
            entries.append(("model", .init(.string(usage.model.name))))
            switch usage.model {
            case .perUnit(let unit):
                entries.append(("unit", .init(.string(unit.description))))
            case .graduated(let tiers), .volume(let tiers):
                entries.append(("tiers", .init(.list(tiers.map { $0.document() }))))
            case .package(let size, let amount, let freeUnits):
                entries.append(("package_size", .init(.number(String(size)))))
                entries.append(("amount", .init(.string(amount.description))))
                if freeUnits > 0 { entries.append(("free_units", .init(.number(String(freeUnits))))) }
            }
        }
        return .object(entries)
    }
}

extension Tier {
    static func readTiers(_ object: ObjectReader) -> [Tier]? {
        guard let items = object.list("tiers") else { return nil }
        guard !items.isEmpty else {
            object.report("tiers", "must have at least one tier")
            return nil
        }
        var tiers: [Tier] = []
        var valid = true
        for (index, item) in items.enumerated() {
            guard let tierObject = object.reader.object(item.node, at: item.path) else {
                valid = false
                continue
            }
            _ = tierObject.field("up_to", required: false)
            var upTo: Amount?
            if tierObject.node["up_to"].map({ if case .null = $0.value { false } else { true } }) == true {
                upTo = tierObject.amount("up_to")
                if upTo == nil { valid = false }
            } else if tierObject.node["up_to"] == nil {
                tierObject.report("up_to", "is required (null for the last, open tier)")
                valid = false
            }
            let unit = tierObject.amount("unit")
            let flat = tierObject.amount("flat", required: false)
            tierObject.finish()
            let isLast = index == items.count - 1
            if isLast, upTo != nil {
                tierObject.report("up_to", "must be null on the last tier")
                valid = false
            }
            if !isLast, upTo == nil, tierObject.node["up_to"] != nil {
                tierObject.report("up_to", "only the last tier may be open (null)")
                valid = false
            }
            if let upTo, let previous = tiers.last?.upTo, upTo <= previous {
                tierObject.report("up_to", "must be greater than the previous tier's up_to")
                valid = false
            }
            guard let unit else {
                valid = false
                continue
            }
            tiers.append(Tier(upTo: upTo, unit: unit, flat: flat))
        }
        return valid ? tiers : nil
    }

    public func document() -> DocumentNode {
        var entries: [(String, DocumentNode)] = [
            ("up_to", upTo.map { .init(.string($0.description)) } ?? .init(.null)),
            ("unit", .init(.string(unit.description))),
        ]
        if let flat { entries.append(("flat", .init(.string(flat.description)))) }
        return .object(entries)
    }
}

extension DocumentNode {
    /// A map node from ordered entries.
    public static func object(_ entries: [(String, DocumentNode)]) -> DocumentNode {
        DocumentNode(.map(entries.map { (key: $0.0, node: $0.1) }))
    }

    /// A string node, or null.
    public static func text(_ value: String?) -> DocumentNode {
        value.map { DocumentNode(.string($0)) } ?? DocumentNode(.null)
    }

    /// A number node.
    public static func integer(_ value: Int) -> DocumentNode {
        DocumentNode(.number(String(value)))
    }
}
