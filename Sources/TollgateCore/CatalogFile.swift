/// A declarative catalog: products with their endpoints, meters and plans (DESIGN §3.2).
public struct Catalog: Sendable, Equatable {
    public var products: [Product]
    public var meters: [Meter]
    public var plans: [Plan]

    public init(products: [Product] = [], meters: [Meter] = [], plans: [Plan] = []) {
        self.products = products
        self.meters = meters
        self.plans = plans
    }

    /// Parses and validates a YAML catalog; throws every problem found, each with its line.
    public static func parse(yaml text: String) throws(InvalidDocument) -> Catalog {
        let root = try DocumentNode.parseYAML(text)
        let reader = DocumentReader()
        guard let object = reader.object(root, at: "") else { throw InvalidDocument(reader.problems) }
        var catalog = Catalog()
        // Where each read meter and plan came from: its index may differ from its place in the file
        // when an earlier one was invalid and skipped.
        var meterItems: [(path: String, node: DocumentNode)] = []
        var planItems: [(path: String, node: DocumentNode)] = []
        // Ids of products and meters that have mistakes of their own: plans referring to them
        // are not also told that they do not exist.
        var unreadableIDs: Set<String> = []
        for item in object.list("products", required: false) ?? [] {
            guard let product = Product.read(item.node, at: item.path, reader) else {
                if let id = item.node["id"]?.scalarText { unreadableIDs.insert(id) }
                continue
            }
            if catalog.products.contains(where: { $0.id == product.id }) {
                reader.report(item.path + ".id", item.node["id"] ?? item.node, "duplicate product id \"\(product.id)\"")
            }
            catalog.products.append(product)
        }
        for item in object.list("meters", required: false) ?? [] {
            guard let meter = Meter.read(item.node, at: item.path, reader) else {
                if let id = item.node["id"]?.scalarText { unreadableIDs.insert(id) }
                continue
            }
            if catalog.meters.contains(where: { $0.id == meter.id }) {
                reader.report(item.path + ".id", item.node["id"] ?? item.node, "duplicate meter id \"\(meter.id)\"")
            }
            meterItems.append(item)
            catalog.meters.append(meter)
        }
        var unreadablePlans: [(path: String, node: DocumentNode)] = []
        for item in object.list("plans", required: false) ?? [] {
            guard let plan = Plan.read(item.node, at: item.path, reader) else {
                unreadablePlans.append(item)
                continue
            }
            if catalog.plans.contains(where: { $0.id == plan.id }) {
                reader.report(item.path + ".id", item.node["id"] ?? item.node, "duplicate plan id \"\(plan.id)\"")
            }
            planItems.append(item)
            catalog.plans.append(plan)
        }
        object.finish()
        let references = CatalogReferences(products: catalog.products, meters: catalog.meters)
        for (meter, item) in zip(catalog.meters, meterItems) {
            for problem in references.problems(in: meter) {
                reader.report("\(item.path).\(problem.path)", item.node.descendant(at: problem.path), problem.message)
            }
        }
        let planChecks = zip(catalog.plans, planItems).map { (PlanReferences($0.0), $0.1) }
            // A plan with other mistakes still gets its references checked, so every problem is listed.
            + unreadablePlans.map { (PlanReferences($0.node), $0) }
        for (plan, item) in planChecks {
            for problem in references.problems(in: plan) where !unreadableIDs.contains(problem.target) {
                reader.report("\(item.path).\(problem.path)", item.node.descendant(at: problem.path), problem.message)
            }
        }
        try reader.throwIfProblems()
        return catalog
    }
}

/// What catalog objects may refer to: the known products (with endpoints) and meters.
public struct CatalogReferences: Sendable {
    public var endpointsByProduct: [String: Set<String>]
    public var meterIDs: Set<String>

    public init(products: [Product], meters: [Meter]) {
        endpointsByProduct = Dictionary(products.map { ($0.id, Set($0.endpoints.map(\.identifier))) }, uniquingKeysWith: { $1 })
        meterIDs = Set(meters.map(\.id))
    }

    /// Problems with what a plan refers to, with paths relative to the plan.
    public func problems(in plan: Plan) -> [(path: String, message: String)] {
        problems(in: PlanReferences(plan)).map { ($0.path, $0.message) }
    }

    /// Problems with what a plan refers to; `target` is the id that was not found.
    func problems(in plan: PlanReferences) -> [(path: String, message: String, target: String)] {
        guard let product = plan.product else { return [] }
        var problems: [(path: String, message: String, target: String)] = []
        let endpoints = endpointsByProduct[product]
        if endpoints == nil { problems.append(("product", "unknown product \"\(product)\"", product)) }
        for price in plan.prices {
            if let endpoint = price.endpoint, let endpoints, !endpoints.contains(endpoint) {
                problems.append((
                    "prices[\(price.index)].endpoint", "unknown endpoint \"\(endpoint)\" of product \"\(product)\"", endpoint))
            }
            if let meter = price.meter, !meterIDs.contains(meter) {
                problems.append(("prices[\(price.index)].meter", "unknown meter \"\(meter)\"", meter))
            }
        }
        return problems
    }

    /// Problems with what a meter refers to, with paths relative to the meter.
    public func problems(in meter: Meter) -> [(path: String, message: String)] {
        if let endpoint = meter.filter.endpoint, !endpointsByProduct.values.contains(where: { $0.contains(endpoint) }) {
            return [("filter.endpoint", "unknown endpoint \"\(endpoint)\"")]
        }
        return []
    }
}

extension DocumentNode {
    /// The node at a relative path such as `prices[1].endpoint`, or the deepest node found on the
    /// way (so that a problem is reported on the closest line known).
    public func descendant(at path: String) -> DocumentNode {
        var node = self
        for component in path.split(separator: ".") {
            var parts = component.split(separator: "[")
            guard !parts.isEmpty else { break }
            let key = String(parts.removeFirst())
            guard let child = node[key] else { break }
            node = child
            for part in parts {
                guard let index = Int(part.dropLast()), case .list(let items) = node.value, items.indices.contains(index) else {
                    return node
                }
                node = items[index]
            }
        }
        return node
    }
}

/// What a plan refers to: its product, and each price's endpoint and meter. Read from a valid
/// plan or, when the plan has other mistakes, straight from its document.
struct PlanReferences {
    var product: String?
    var prices: [(index: Int, endpoint: String?, meter: String?)]

    init(_ plan: Plan) {
        product = plan.product
        prices = plan.prices.enumerated().map { index, price in
            switch price {
            case .prepaid(let quota): (index, quota.endpoint, nil)
            case .usage(let usage): (index, nil, usage.meter)
            case .flat, .setup: (index, nil, nil)
            }
        }
    }

    init(_ node: DocumentNode) {
        product = node["product"]?.scalarText
        var prices: [(index: Int, endpoint: String?, meter: String?)] = []
        if case .list(let items)? = node["prices"]?.value {
            for (index, item) in items.enumerated() {
                prices.append((index, item["endpoint"]?.scalarText, item["meter"]?.scalarText))
            }
        }
        self.prices = prices
    }
}
