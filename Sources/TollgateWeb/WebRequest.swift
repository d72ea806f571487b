import Foundation

/// A browser's request as the portal and the dashboard see it, whichever port it came in on.
public struct WebRequest: Sendable {
    public var method: String
    /// The path below the pages' prefix, split at `/` (`/_portal/subscriptions/x` → `["subscriptions", "x"]`).
    public var path: [String]
    public var query: [String: String]
    /// Cookies sent with the request, by name.
    public var cookies: [String: String]
    /// The fields of an `application/x-www-form-urlencoded` body.
    public var form: [String: String]
    /// The client's address (for rate limits).
    public var clientAddress: String

    /// Reads a request; `prefix` is the pages' path (`/_portal`), `target` the path and query.
    public init(method: String, target: String, prefix: String, cookieHeaders: [String], contentType: String?, body: [UInt8], clientAddress: String) {
        self.method = method.uppercased()
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var path = parts.first.map(String.init) ?? ""
        if path.hasPrefix(prefix) { path.removeFirst(prefix.count) }
        self.path = path.split(separator: "/").map { WebForm.decode(String($0), plusIsSpace: false) }
        self.query = parts.count > 1 ? WebForm.parse(String(parts[1])) : [:]
        self.cookies = WebCookies.parse(cookieHeaders)
        let isForm = contentType?.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false
        self.form = isForm ? WebForm.parse(String(decoding: body, as: UTF8.self)) : [:]
        self.clientAddress = clientAddress
    }
}

/// An answer to a `WebRequest`.
public struct WebResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `303 See Other` to `location` (after a form post).
    public static func redirect(_ location: String, cookies: [String] = []) -> WebResponse {
        WebResponse(status: 303, headers: [("Location", location), ("Cache-Control", "no-store")] + cookies.map { ("Set-Cookie", $0) })
    }

    /// Adds a `Set-Cookie` header.
    public func setting(cookie: String) -> WebResponse {
        var copy = self
        copy.headers.append(("Set-Cookie", cookie))
        return copy
    }
}

/// `application/x-www-form-urlencoded` and query strings.
public enum WebForm {
    /// Fields by name; a repeated name keeps its first value; at most 200 fields are read.
    public static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&").prefix(200) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(String(parts[0]), plusIsSpace: true)
            guard !name.isEmpty, fields[name] == nil else { continue }
            fields[name] = parts.count > 1 ? decode(String(parts[1]), plusIsSpace: true) : ""
        }
        return fields
    }

    /// Percent-decodes `text` (invalid escapes are kept as they are).
    public static func decode(_ text: String, plusIsSpace: Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            if byte == UInt8(ascii: "+"), plusIsSpace {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), input.count >= 2,
                      let high = hexValue(input[input.startIndex]), let low = hexValue(input[input.startIndex + 1]) {
                bytes.append(high << 4 | low)
                input.removeFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Percent-encodes a value for a URL's query or path segment.
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (byte < 16 ? "0" : "") + hex
            }
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// `Cookie` and `Set-Cookie` headers.
public enum WebCookies {
    /// Cookies by name from every `Cookie` header.
    public static func parse(_ headers: [String]) -> [String: String] {
        var cookies: [String: String] = [:]
        for header in headers {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let name = parts[0].trimmingCharacters(in: .whitespaces)
                if cookies[name] == nil { cookies[name] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
        }
        return cookies
    }

    /// A session cookie: `HttpOnly`, `SameSite=Lax`, limited to `path`, `Secure` when asked.
    public static func session(name: String, value: String, path: String, maxAge: Int, secure: Bool) -> String {
        "\(name)=\(value); Path=\(path); Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// Removes a cookie.
    public static func clear(name: String, path: String, secure: Bool) -> String {
        session(name: name, value: "", path: path, maxAge: 0, secure: secure)
    }
}
