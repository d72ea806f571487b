import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TollgateTestSupport

/// A browser as the page tests need one: keeps cookies, never follows redirects (so tests see
/// each `Set-Cookie` and `Location`), posts forms.
final class WebClient: @unchecked Sendable {
    /// One client for every test, never shut down (like `HTTPClient.shared`), that follows no redirect.
    private static let sharedClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
    private var client: HTTPClient { Self.sharedClient }
    /// Cookies by name (one site: these tests use one server).
    private(set) var cookies: [String: String] = [:]
    /// Every `Set-Cookie` header seen, as sent.
    private(set) var setCookies: [String] = []
    private let lock = NSLock()

    func get(_ url: String) async throws -> TestResponse {
        try await send("GET", url, body: nil)
    }

    func post(_ url: String, form: [(String, String)]) async throws -> TestResponse {
        let body = form.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        return try await send("POST", url, body: body)
    }

    private func send(_ method: String, _ url: String, body: String?) async throws -> TestResponse {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        let jar = lock.withLock { cookies }
        if !jar.isEmpty { request.headers.add(name: "Cookie", value: jar.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        lock.withLock {
            for header in response.headers["Set-Cookie"] {
                setCookies.append(header)
                let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { continue }
                if pair[1].isEmpty || header.contains("Max-Age=0") { cookies.removeValue(forKey: String(pair[0])) } else {
                    cookies[String(pair[0])] = String(pair[1])
                }
            }
        }
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: buffer))
    }


    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// The text of the element with `id` (the first `>` after it to the next `<`), HTML entities decoded.
    static func element(_ id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\"") else { return nil }
        guard let open = html[start.upperBound...].firstIndex(of: ">") else { return nil }
        let rest = html[html.index(after: open)...]
        let text = rest.prefix { $0 != "<" }
        return String(text).replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The value of the first hidden `csrf` field of a page.
    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: "name=\"csrf\" value=\"") else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }
}

/// Checks every page must pass: HTML in UTF-8, a strict CSP, no script and nothing fetched from elsewhere.
func isSafePage(_ response: TestResponse) -> Bool {
    let csp = response.header("Content-Security-Policy") ?? ""
    let body = response.body
    return response.header("Content-Type") == "text/html; charset=utf-8"
        && csp.contains("default-src 'none'") && !csp.contains("unsafe-inline")
        && !body.contains("<script") && !body.contains("src=\"http") && !body.contains("href=\"http") && !body.contains("href=\"//")
        && !body.contains("style=\"")
}
