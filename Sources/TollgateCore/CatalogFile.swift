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
        var lines: [String: Int] = [:]
        for item in object.list("products", required: false) ?? [] {
            guard let product = Product.read(item.node, at: item.path, reader) else { continue }
            if catalog.products.contains(where: { $0.id == product.id }) {
                reader.report(item.path + ".id", item.node, "duplicate product id \"\(product.id)\"")
            }
            catalog.products.append(product)
        }
        for item in object.list("meters", required: false) ?? [] {
            guard let meter = Meter.read(item.node, at: item.path, reader) else { continue }
            if catalog.meters.contains(where: { $0.id == meter.id }) {
                reader.report(item.path + ".id", item.node, "duplicate meter id \"\(meter.id)\"")
            }
            lines["meter:" + meter.id] = item.node.line
            catalog.meters.append(meter)
        }
        for item in object.list("plans", required: false) ?? [] {
            guard let plan = Plan.read(item.node, at: item.path, reader) else { continue }
            if catalog.plans.contains(where: { $0.id == plan.id }) {
                reader.report(item.path + ".id", item.node, "duplicate plan id \"\(plan.id)\"")
            }
            lines["plan:" + plan.id] = item.node.line
            catalog.plans.append(plan)
        }
        object.finish()
        let references = CatalogReferences(products: catalog.products, meters: catalog.meters)
        for (index, meter) in catalog.meters.enumerated() {
            for problem in references.problems(in: meter) {
                reader.report("meters[\(index)].\(problem.path)", DocumentNode(.null, line: lines["meter:" + meter.id]), problem.message)
            }
        }
        for (index, plan) in catalog.plans.enumerated() {
            for problem in references.problems(in: plan) {
                reader.report("plans[\(index)].\(problem.path)", DocumentNode(.null, line: lines["plan:" + plan.id]), problem.message)
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
        guard let endpoints = endpointsByProduct[plan.product] else {
            return [("product", "unknown product \"\(plan.product)\"")]
        }
        var problems: [(path: String, message: String)] = []
        for (index, price) in plan.prices.enumerated() {
            switch price {
            case .prepaid(let quota):
                if let endpoint = quota.endpoint, !endpoints.contains(endpoint) {
                    problems.append(("prices[\(index)].endpoint", "unknown endpoint \"\(endpoint)\" of product \"\(plan.product)\""))
                }
            case .usage(let usage):
                if !meterIDs.contains(usage.meter) {
                    problems.append(("prices[\(index)].meter", "unknown meter \"\(usage.meter)\""))
                }
            case .flat, .setup:
                break
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
