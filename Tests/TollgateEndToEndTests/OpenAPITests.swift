import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// `/openapi.json` describes exactly what the admin port serves.
@Suite("OpenAPI description")
struct OpenAPITests {
    @Test func everyDescribedOperationIsServedAndNothingElse() async throws {
        try await withTollgate { server in
            let response = try await server.admin("GET", "/openapi.json", key: "")
            #expect(response.status == 200)
            let document = try response.json()
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
            #expect(schemas["Product"] != nil)
            var operations = 0
            for (path, methods) in paths {
                let concrete = path.replacingOccurrences(of: "{id}", with: "shop").replacingOccurrences(of: "{identifier}", with: "hello")
                for (method, operation) in methods {
                    operations += 1
                    // Every $ref points at a schema that exists.
                    let text = String(decoding: try JSONSerialization.data(withJSONObject: operation), as: UTF8.self)
                    for name in text.components(separatedBy: "#\\/components\\/schemas\\/").dropFirst().map({ $0.prefix { $0 != "\"" } }) {
                        #expect(schemas[String(name)] != nil, "\(method) \(path) refers to \(name)")
                    }
                    // A described route is routed: whatever it answers, it is not "no such route".
                    let answer = try await server.admin(method.uppercased(), concrete, body: method == "get" ? nil : "{}")
                    #expect(answer.status != 405, "\(method) \(path)")
                    if answer.status == 404 {
                        #expect(!(answer.body.contains("no such resource")), "\(method) \(path) is not served")
                    }
                }
            }
            #expect(operations >= 30)
            // And a route that is not described is not served.
            #expect(try await server.admin("GET", "/v1/undocumented").status == 404)
        }
    }
}
