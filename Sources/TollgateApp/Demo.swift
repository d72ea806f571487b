import Foundation
import Logging
import TollgateControl
import TollgateCore
import TollgateStore

/// `tollgate demo`: a demo upstream, product, plan and subscribed customer, and `curl` lines
/// with a working token.
public enum Demo {
    /// The header the demo upstream requires, which Tollgate adds to every call (the vendor's secret).
    public static let upstreamSecret = (name: "X-Upstream-Secret", value: "demo-secret")

    /// The demo catalog for an upstream on `upstreamPort`.
    public static func catalog(upstreamPort: Int) throws -> Catalog {
        try Catalog.parse(yaml: """
            products:
              - id: demo
                name: Demo API
                upstream: http://127.0.0.1:\(upstreamPort)
                upstream_header: { name: X-Upstream-Secret, value: demo-secret }
                unlisted_endpoints: allow
                endpoints:
                  - { identifier: hello, name: Hello, description: Says hello, method: GET, path: /hello }
                  - { identifier: get-invoice, name: Get invoice, method: GET, path: "/invoice/{id}" }
                  - { identifier: create-invoice, name: Create invoice, method: POST, path: /invoice }
            meters:
              - id: demo-calls
                name: Successful calls
                source: api_calls
                filter: { status: "<500" }
                aggregation: count
            plans:
              - id: demo-starter
                product: demo
                name: Starter
                currency: EUR
                period: month
                public: true
                prices:
                  - { kind: flat, amount: "29.00" }
                  - { kind: prepaid, endpoint: create-invoice, quota: 1000, window: month }
                  - { kind: usage, meter: demo-calls, model: graduated,
                      tiers: [ { up_to: 1000, unit: "0" }, { up_to: null, unit: "0.002" } ] }
            """)
    }

    /// Creates the demo customer and subscription (each run gets a fresh token).
    public static func seed(_ control: ControlPlane) async throws -> IssuedSubscription {
        if try await control.store.customer("demo-customer") == nil {
            try await control.store.saveCustomer(
                Customer(id: "demo-customer", name: "Demo Customer", email: "demo@example.com", createdAt: Date()), mode: .create)
        }
        return try await control.subscribe(customer: "demo-customer", plan: "demo-starter", startedAt: nil)
    }

    /// What the demo prints once it is ready.
    public static func instructions(host: String, ready: ServerReady, issued: IssuedSubscription) -> String {
        let proxy = "http://\(host):\(ready.proxyPort ?? 8000)"
        let admin = "http://\(host):\(ready.adminPort ?? 8001)"
        return """

            Tollgate demo is running.
              proxy  \(proxy)   (consumers)
              admin  \(admin)   (the vendor: admin API, /openapi.json)

            Call the demo API as the subscribed customer:
              curl -H "apikey: \(issued.token)" \(proxy)/demo/hello
              curl -H "Authorization: Bearer \(issued.token)" \(proxy)/demo/invoice/42
              curl -X POST -H "apikey: \(issued.token)" \(proxy)/demo/invoice

            Without a token, or with a wrong one:
              curl -i \(proxy)/demo/hello

            See the usage of subscription \(issued.subscription.id):
              curl -H "Authorization: Bearer \(ready.adminKey)" \(admin)/v1/subscriptions/\(issued.subscription.id)/usage

            Its invoices (the first, for the month's fee in advance, is issued within a minute, or now with the close):
              curl -X POST -H "Authorization: Bearer \(ready.adminKey)" \(admin)/v1/billing/close
              curl -H "Authorization: Bearer \(ready.adminKey)" "\(admin)/v1/invoices?subscription=\(issued.subscription.id)"

            In the browser:
              \(proxy)/_portal/signup      (consumers: sign up, see quotas, usage and invoices)
              \(admin)/dashboard           (the vendor: sign in with the admin key \(ready.adminKey))

            Press Ctrl-C to stop.

            """
    }
}
