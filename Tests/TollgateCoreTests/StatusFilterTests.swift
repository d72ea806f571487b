import Testing
import TollgateCore

@Suite("StatusFilter")
struct StatusFilterTests {
    @Test("matches exactly the statuses it names", arguments: [
        ("2xx", [200, 201, 204, 299], [100, 199, 300, 404, 500]),
        ("5xx", [500, 502, 599], [499, 200, 600]),
        ("1xx", [100, 101, 199], [99, 200]),
        ("<500", [100, 200, 404, 499], [500, 502, 599]),
        ("<=499", [100, 200, 404, 499], [500, 502, 599]),
        (">=400", [400, 404, 500, 599], [100, 200, 399]),
        (">399", [400, 404, 500, 599], [100, 200, 399]),
        ("<200", [100, 199], [200, 201, 500]),
        (">500", [501, 599], [500, 200]),
        ("404", [404], [400, 403, 405, 200, 500]),
        (" 404 ", [404], [403, 405]),
    ])
    func matching(text: String, matching: [Int], notMatching: [Int]) throws {
        let filter = try #require(StatusFilter(text))
        for status in matching {
            #expect(filter.matches(status), "\(text) should match \(status)")
        }
        for status in notMatching {
            #expect(!filter.matches(status), "\(text) should not match \(status)")
        }
    }

    @Test("keeps its (trimmed) text as description", arguments: [
        ("2xx", "2xx"), ("<500", "<500"), ("<=499", "<=499"), (">=400", ">=400"), (">399", ">399"), ("404", "404"),
        ("  <500 ", "<500"),
    ])
    func description(text: String, expected: String) throws {
        #expect(try #require(StatusFilter(text)).description == expected)
    }

    @Test("filters that match the same statuses are equal", arguments: [
        ("<500", "<=499", true),
        (">=400", ">399", true),
        ("2xx", ">=200", false),
        ("404", "4xx", false),
        ("404", " 404", true),
        ("<500", "<501", false),
    ])
    func equality(lhs: String, rhs: String, equal: Bool) throws {
        let left = try #require(StatusFilter(lhs))
        let right = try #require(StatusFilter(rhs))
        #expect((left == right) == equal)
    }

    @Test("invalid filters are refused", arguments: [
        "", " ", "xx", "2x", "2xxx", "6xx", "0xx", "9xx", "2XX", "x2x", "abc", "<", "<=", ">", ">=", "=404", "==404",
        "40", "4040", "600", "099", "99", "<600", ">=1000", "<50a", "4 04", "<=<404", "404,500", "-404", "+404",
    ])
    func invalid(text: String) {
        #expect(StatusFilter(text) == nil)
    }
}
