import Testing
import TollgateCore

@Suite("RequestPath normalization (DESIGN §3.3)")
struct RequestPathTests {
    static let normalized: [(raw: String, expected: String)] = [
        // Already normal.
        ("/", "/"),
        ("/invoices", "/invoices"),
        ("/invoices/invoice/42", "/invoices/invoice/42"),
        // Unreserved escapes are decoded, in either case of hex digit.
        ("/%7Euser", "/~user"),
        ("/%7euser", "/~user"),
        ("/%41%42c", "/ABc"),
        ("/a%2D%2E%5F%7Eb", "/a-._~b"),
        ("/%30%39", "/09"),
        // Reserved and other escapes stay encoded, with upper-case hex.
        ("/a%2Fb", "/a%2Fb"),
        ("/a%2fb", "/a%2Fb"),
        ("/a%20b", "/a%20b"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/q%3fx", "/q%3Fx"),
        ("/p%25", "/p%25"),
        // An encoded slash is not a separator: `..` next to it is part of one segment.
        ("/a%2F..%2Fb", "/a%2F..%2Fb"),
        ("/a/b%2F../c", "/a/b%2F../c"),
        // Repeated slashes are merged.
        ("//", "/"),
        ("//a", "/a"),
        ("/a//b///c", "/a/b/c"),
        // `.` and `..` segments are resolved.
        ("/a/./b", "/a/b"),
        ("/./a", "/a"),
        ("/a/b/../c", "/a/c"),
        ("/a/b/c/../../d", "/a/d"),
        ("/a/..", "/"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/.", "/"),
        ("/a//..//b", "/b"),
        // Escaped dots are decoded first, then resolved like plain dots.
        ("/a/%2E%2E/b", "/b"),
        ("/a/%2e/b", "/a/b"),
        // Segments that only look like dot segments are kept.
        ("/a/..b", "/a/..b"),
        ("/a/.../b", "/a/.../b"),
        ("/a/.b.", "/a/.b."),
        // A trailing slash is kept.
        ("/a/", "/a/"),
        ("/a/b/", "/a/b/"),
        ("/a//", "/a/"),
    ]

    @Test("normalizes", arguments: normalized)
    func normalizes(raw: String, expected: String) throws {
        #expect(try RequestPath.normalize(raw[...]) == expected)
    }

    @Test("normalizing is idempotent", arguments: normalized)
    func idempotent(raw: String, expected: String) throws {
        let once = try RequestPath.normalize(raw[...])
        #expect(try RequestPath.normalize(once[...]) == once)
        #expect(once == expected)
    }

    @Test("a `..` above the root is refused", arguments: [
        "/..", "/../a", "/a/../..", "/a/../../b", "/./..", "/%2E%2E", "/a/%2e%2e/%2E%2E/b", "//../a",
    ])
    func escapesRoot(raw: String) {
        #expect(throws: RequestPath.Failure.escapesRoot) { try RequestPath.normalize(raw[...]) }
    }

    @Test("malformed escapes are refused", arguments: [
        "/%zz", "/%", "/a%", "/a%2", "/%g0", "/%0g", "/%%41", "/a%2/b", "/%-1",
    ])
    func malformedEscape(raw: String) {
        #expect(throws: RequestPath.Failure.malformedEscape) { try RequestPath.normalize(raw[...]) }
    }

    @Test("a path that does not start with a slash is refused", arguments: ["", "a", "a/b", "*", "%2Fa", "http://x/a"])
    func notAbsolute(raw: String) {
        #expect(throws: RequestPath.Failure.notAbsolute) { try RequestPath.normalize(raw[...]) }
    }

    @Test("split separates the normalized path from the raw query", arguments: [
        ("/a/b?x=1&y=2", "/a/b", "x=1&y=2" as String?),
        ("/a/b", "/a/b", nil),
        ("/a?", "/a", ""),
        ("/a?b?c", "/a", "b?c"),
        ("/a/../b?p=/../%7E", "/b", "p=/../%7E"),
        ("/a%3Fb?q", "/a%3Fb", "q"),
        ("/%7e//x/?apikey=tg_1", "/~/x/", "apikey=tg_1"),
        ("/?", "/", ""),
    ])
    func split(target: String, path: String, query: String?) throws {
        let result = try RequestPath.split(target: target)
        #expect(result.path == path)
        #expect(result.query == query)
    }

    @Test("split refuses what normalize refuses, whatever the query")
    func splitFailures() {
        #expect(throws: RequestPath.Failure.escapesRoot) { try RequestPath.split(target: "/..?x=1") }
        #expect(throws: RequestPath.Failure.malformedEscape) { try RequestPath.split(target: "/%zz?x") }
        #expect(throws: RequestPath.Failure.notAbsolute) { try RequestPath.split(target: "?x=/a") }
        // A malformed escape in the query is the upstream's business, not the path's.
        #expect(throws: Never.self) { try RequestPath.split(target: "/a?x=%zz") }
    }

    // Found by RequestPathPropertyTests: a combining mark after `/` or `?` makes one `Character`
    // of the two, and cutting by characters left `..` segments and `?` in the path unresolved.
    @Test("separators are bytes, also before a combining mark", arguments: [
        ("/shop/../\u{301}x", "/\u{301}x", nil),
        ("/a/\u{301}/../b", "/a/b", nil),
        ("/a/b/../\u{301}", "/a/\u{301}", nil),
        ("/a/..\u{301}", "/a/..\u{301}", nil),
        ("/a/.\u{301}/", "/a/.\u{301}/", nil),
        ("/a?\u{301}b", "/a", "\u{301}b"),
        ("/a/.?\u{301}", "/a/", "\u{301}"),
    ] as [(String, String, String?)])
    func combiningMarks(target: String, path: String, query: String?) throws {
        let result = try RequestPath.split(target: target)
        #expect(Array(result.path.utf8) == Array(path.utf8))
        #expect(result.query.map { Array($0.utf8) } == query.map { Array($0.utf8) })
    }

    @Test("a `..` before a combining mark still may not leave the root")
    func combiningMarkAboveRoot() {
        #expect(throws: RequestPath.Failure.escapesRoot) { try RequestPath.normalize("/../\u{301}"[...]) }
        #expect(throws: RequestPath.Failure.escapesRoot) { try RequestPath.split(target: "/a/../../\u{301}x") }
    }
}
