import Crypto
import Foundation
import TollgateControl
import TollgateCore
import TollgateStore

/// Sign-in sessions of one kind (portal or dashboard): a random id in an `HttpOnly`,
/// `SameSite=Lax` cookie, stored only as its SHA-256 digest; every form of a signed-in page
/// carries a CSRF token derived from the id, checked in constant time.
public struct WebSessions: Sendable {
    public var store: TollgateStore
    public var kind: WebSession.Kind
    public var cookieName: String
    /// The cookie's path: the pages' prefix.
    public var path: String
    public var lifetime: TimeInterval
    /// Whether cookies are marked `Secure` (the pages are reached over TLS).
    public var secure: Bool

    public init(store: TollgateStore, kind: WebSession.Kind, cookieName: String, path: String, lifetime: TimeInterval, secure: Bool) {
        self.store = store
        self.kind = kind
        self.cookieName = cookieName
        self.path = path
        self.lifetime = lifetime
        self.secure = secure
    }

    /// A signed-in browser: the session and the CSRF token its forms carry.
    public struct Current: Sendable {
        public var session: WebSession
        public var csrf: String
        /// The digest the session is stored under (for sign-out).
        var idHash: String
    }

    /// Starts a session; returns the `Set-Cookie` header value.
    public func start(customer: String?, now: Date) async throws -> String {
        let id = ControlPlane.randomSecret()
        try await store.createWebSession(
            idHash: ControlPlane.secretDigest(id),
            WebSession(kind: kind, customer: customer, expiresAt: now.addingTimeInterval(lifetime)), now: now)
        return WebCookies.session(name: cookieName, value: id, path: path, maxAge: Int(lifetime), secure: secure)
    }

    /// The request's session, if its cookie names a live one of this kind.
    public func current(_ request: WebRequest, now: Date) async throws -> Current? {
        guard let id = request.cookies[cookieName], id.utf8.count == 64 else { return nil }
        let idHash = ControlPlane.secretDigest(id)
        guard let session = try await store.webSession(idHash: idHash, now: now), session.kind == kind else { return nil }
        return Current(session: session, csrf: Self.csrfToken(sessionID: id), idHash: idHash)
    }

    /// Ends the session; returns the `Set-Cookie` header value that clears the cookie.
    public func end(_ current: Current) async throws -> String {
        try await store.deleteWebSession(idHash: current.idHash)
        return WebCookies.clear(name: cookieName, path: path, secure: secure)
    }

    /// Whether a form's `csrf` field matches the session's token (compared in constant time).
    public static func checkCSRF(_ request: WebRequest, _ current: Current) -> Bool {
        guard let given = request.form["csrf"] else { return false }
        return bytesEqualInConstantTime(Array(given.utf8), Array(current.csrf.utf8))
    }

    /// The CSRF token of a session: a digest of its id, so that only its holder can know it.
    static func csrfToken(sessionID: String) -> String {
        ControlPlane.secretDigest("csrf:" + sessionID)
    }
}
