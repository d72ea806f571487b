import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// The admin API's answers: auth, validation, conflicts, unknown ids, pagination, usage.
@Suite("Admin API")
struct AdminAPITests {
    @Test(arguments: ["", "wrong-key"])
    func everyAdminRouteNeedsTheKey(key: String) async throws {
        try await withTollgate { server in
            for (method, path) in [("GET", "/v1/products"), ("POST", "/v1/customers"), ("GET", "/v1/subscriptions/x"),
                                   ("POST", "/v1/subscriptions/x/terminate"), ("GET", "/v1/meters")] {
                let response = try await server.admin(method, path, body: method == "POST" ? "{}" : nil, key: key)
                #expect(response.status == 401, "\(method) \(path)")
                #expect(try response.json()["message"] as? String != nil)
            }
            #expect(try await server.admin("GET", "/healthz", key: "").status == 200)
            #expect(try await server.admin("GET", "/openapi.json", key: "").status == 200)
        }
    }

    @Test func unknownIdsAre404() async throws {
        try await withTollgate { server in
            for path in ["/v1/products/nope", "/v1/plans/nope", "/v1/meters/nope", "/v1/customers/nope", "/v1/subscriptions/nope",
                         "/v1/products/shop/endpoints/nope", "/v1/subscriptions/nope/usage", "/v1/nothing-here"] {
                let response = try await server.admin("GET", path)
                #expect(response.status == 404, "\(path)")
                #expect(try response.json()["message"] as? String != nil)
            }
            #expect(try await server.admin("POST", "/v1/subscriptions/nope/terminate").status == 404)
        }
    }

    @Test func aWrongMethodIs405WithAllow() async throws {
        try await withTollgate { server in
            let response = try await server.admin("DELETE", "/v1/products")
            #expect(response.status == 405)
            #expect(response.header("Allow")?.contains("GET") == true)
            #expect(response.header("Allow")?.contains("POST") == true)
            #expect(try response.json()["message"] as? String != nil)
        }
    }

    @Test func invalidBodiesAre422WithEveryProblemAndStoreNothing() async throws {
        try await withTollgate { server in
            let response = try await server.admin("POST", "/v1/plans", body: """
                {"id":"p1","product":"shop","name":"","currency":"EURO","period":"fortnight","colour":"red",
                 "prices":[{"kind":"flat","amount":"ten"},{"kind":"usage","meter":"nope","model":"per_unit","unit":"0.1"}]}
                """)
            #expect(response.status == 422)
            let problems = try #require(try response.json()["problems"] as? [[String: String]])
            let paths = Set(problems.compactMap { $0["path"] })
            #expect(paths.isSuperset(of: ["name", "currency", "period", "colour", "prices[0].amount"]))
            #expect(try await server.admin("GET", "/v1/plans/p1").status == 404)

            let references = try await server.admin("POST", "/v1/plans", body: """
                {"id":"p2","product":"shop","name":"P","currency":"EUR","period":"month",
                 "prices":[{"kind":"usage","meter":"nope","model":"per_unit","unit":"0.1"},{"kind":"prepaid","endpoint":"nope","quota":5,"window":"day"}]}
                """)
            #expect(references.status == 422)
            let referencePaths = Set((try references.json()["problems"] as? [[String: String]] ?? []).compactMap { $0["path"] })
            #expect(referencePaths == ["prices[0].meter", "prices[1].endpoint"])
        }
    }

    @Test func malformedJSONIs400() async throws {
        try await withTollgate { server in
            let response = try await server.admin("POST", "/v1/customers", body: #"{"name": "#)
            #expect(response.status == 400)
            #expect((try response.json()["message"] as? String)?.contains("JSON") == true)
        }
    }

    @Test func duplicatesAre409() async throws {
        try await withTollgate { server in
            #expect(try await server.admin("POST", "/v1/customers", body: #"{"id":"acme","name":"Acme"}"#).status == 201)
            let again = try await server.admin("POST", "/v1/customers", body: #"{"id":"acme","name":"Acme"}"#)
            #expect(again.status == 409)
            #expect(try await server.admin("POST", "/v1/products/shop/endpoints", body: """
                {"identifier":"hello","name":"Again","method":"GET","path":"/again"}
                """).status == 409)
        }
    }

    @Test func productsRoundTripWithoutSecretsAndEndpointsKeepTheirIdentifier() async throws {
        try await withTollgate { server in
            let created = try await server.admin("POST", "/v1/products", body: """
                {"id":"maps","name":"Maps","upstream":"http://127.0.0.1:\(server.upstream.port)",
                 "upstream_header":{"name":"X-Upstream-Secret","value":"demo-secret"},
                 "webhook":{"url":"http://127.0.0.1:9/hooks","secret":"whsec_1"},
                 "endpoints":[{"identifier":"tile","name":"Tile","method":"GET","path":"/tiles/{z}"}]}
                """)
            #expect(created.status == 201)
            #expect(!created.body.contains("demo-secret"))
            #expect(!created.body.contains("whsec_1"))
            let patched = try await server.admin("PATCH", "/v1/products/maps", body: #"{"name":"Maps v2"}"#)
            #expect(patched.status == 200)
            #expect(try patched.json()["name"] as? String == "Maps v2")
            // The secret survived the patch: calls still carry it.
            #expect(try await server.admin("POST", "/v1/plans", body: """
                {"id":"maps-plan","product":"maps","name":"M","currency":"JPY","period":"week","prices":[]}
                """).status == 201)
            let (_, token) = try await server.subscribe(plan: "maps-plan")
            let call = try await server.proxy("/maps/tiles/3", headers: [("apikey", token)])
            #expect(call.status == 200)
            #expect(try call.json()["vendor_secret"] as? String == "verified")

            let renamed = try await server.admin("PATCH", "/v1/products/maps/endpoints/tile", body: #"{"identifier":"other"}"#)
            #expect(renamed.status == 422)
            let archived = try await server.admin("POST", "/v1/products/maps/endpoints/tile/archive")
            #expect(archived.status == 200)
            #expect(try archived.json()["archived"] as? Bool == true)
        }
    }

    @Test func listsArePaginated() async throws {
        try await withTollgate { server in
            for index in 0..<5 {
                #expect(try await server.admin("POST", "/v1/customers", body: #"{"id":"c\#(index)","name":"C"}"#).status == 201)
            }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await server.admin("GET", "/v1/customers?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200)
                let json = try page.json()
                let data = try #require(json["data"] as? [[String: Any]])
                #expect(data.count <= 2)
                seen += data.compactMap { $0["id"] as? String }
                cursor = json["next_cursor"] as? String
            } while cursor != nil
            #expect(seen == ["c0", "c1", "c2", "c3", "c4"])
            #expect(try await server.admin("GET", "/v1/customers?limit=0").status == 422)
        }
    }

    @Test func subscriptionsCanStartInThePastButNotInTheFuture() async throws {
        try await withTollgate { server in
            let (id, _) = try await server.subscribe(plan: "shop-basic", startedAt: "2026-01-31T10:00:00Z")
            let json = try await server.admin("GET", "/v1/subscriptions/\(id)").json()
            #expect(json["started_at"] as? String == "2026-01-31T10:00:00Z")
            let start = try #require(json["current_period_start"] as? String)
            #expect(start.hasSuffix("T10:00:00Z"))
            let future = try await server.admin("POST", "/v1/subscriptions", body: #"{"customer":"x","plan":"shop-basic","started_at":"2999-01-01T00:00:00Z"}"#)
            #expect(future.status == 422)
        }
    }

    @Test func usageCountsBillableCallsPerEndpointAndCountMeters() async throws {
        try await withTollgate { server in
            let (id, token) = try await server.subscribe(plan: "shop-basic")
            for path in ["/shop/hello", "/shop/hello", "/shop/items/1", "/shop/status/500", "/shop/unlisted"] {
                _ = try await server.proxy(path, headers: [("apikey", token)])
            }
            _ = try await server.proxy("/shop/hello", headers: [("apikey", "wrong")])
            let usage = try await server.admin("GET", "/v1/subscriptions/\(id)/usage?granularity=hour")
            #expect(usage.status == 200)
            let json = try usage.json()
            let endpoints = try #require(json["endpoints"] as? [String: Int])
            #expect(endpoints["hello"] == 2)
            #expect(endpoints["get-item"] == 1)
            #expect(endpoints["status"] == 1)
            #expect(endpoints["upload"] == 0)
            let meters = try #require(json["meters"] as? [String: String])
            #expect(meters["hello-calls"] == "2")
            #expect(meters["shop-calls"] == "3")
            let series = try #require(json["series"] as? [[String: Any]])
            #expect(!series.isEmpty)
            let summed = series.compactMap { ($0["endpoints"] as? [String: Int])?["hello"] }.reduce(0, +)
            #expect(summed == 2)
            #expect(try await server.admin("GET", "/v1/subscriptions/\(id)/usage?granularity=week").status == 422)
            #expect(try await server.admin("GET", "/v1/subscriptions/\(id)/usage?from=yesterday").status == 422)
        }
    }
}
