import Foundation
import Mustache

/// A link among others on a page (navigation, filters, ranges); `current` marks the one shown.
struct PageLink: Sendable {
    var label: String
    var href: String
    var current: Bool
}

/// What every page shows around its content: title, navigation, sign-out, messages.
struct Chrome: Sendable {
    var title: String
    /// `Tollgate` and the area's name (`Portal`, `Dashboard`).
    var area: String
    var stylesheet: String
    var nav: [PageLink] = []
    /// The sign-out form's action, when signed in.
    var signOut: String?
    var csrf: String = ""
    var notice: String?
    var error: String?
}

/// Renders the mustache templates of `Templates` into full pages with the security headers
/// every page carries.
struct PageRenderer: Sendable {
    let library: MustacheLibrary

    /// The Content-Security-Policy of every page: nothing from outside Tollgate, no script at
    /// all, no inline style, forms only to Tollgate, never framed.
    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    init() {
        var library = MustacheLibrary()
        for (name, text) in Templates.all {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("template \(name) does not parse: \(error)")
            }
        }
        self.library = library
    }

    /// The root every template sees: the chrome and the page's own view.
    private struct Root {
        var chrome: Chrome
        var page: Any
    }

    /// A page as a response: `text/html; charset=utf-8`, the CSP, never cached.
    func page(_ template: String, chrome: Chrome, _ view: Any, status: Int = 200) -> WebResponse {
        let html = library.render(Root(chrome: chrome, page: view), withTemplate: template) ?? ""
        return WebResponse(status: status, headers: Self.headers(contentType: "text/html; charset=utf-8"), body: Array(html.utf8))
    }

    /// The stylesheet.
    static func stylesheet() -> WebResponse {
        var headers = headers(contentType: "text/css; charset=utf-8")
        headers.removeAll { $0.0 == "Cache-Control" }
        headers.append(("Cache-Control", "public, max-age=3600"))
        return WebResponse(status: 200, headers: headers, body: Array(Stylesheet.css.utf8))
    }

    static func headers(contentType: String) -> [(String, String)] {
        [
            ("Content-Type", contentType),
            ("Content-Security-Policy", contentSecurityPolicy),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-store"),
        ]
    }
}
