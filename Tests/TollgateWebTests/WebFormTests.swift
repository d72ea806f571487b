import Foundation
import Testing
@testable import TollgateWeb

@Suite("Forms, queries and cookies")
struct WebFormTests {
    @Test("form fields are percent-decoded, + is a space, the first of a repeated name wins")
    func form() {
        let fields = WebForm.parse("name=Ada+Lovelace&email=ada%40example.com&plan=a&plan=b&empty=&broken=%zz")
        #expect(fields["name"] == "Ada Lovelace")
        #expect(fields["email"] == "ada@example.com")
        #expect(fields["plan"] == "a")
        #expect(fields["empty"] == "")
        #expect(fields["broken"] == "%zz")
    }

    @Test("encoding and decoding round-trip")
    func roundTrip() {
        for text in ["a b/c?d=e&f", "ünïcode", "100%", "plain-text_1.2~"] {
            #expect(WebForm.decode(WebForm.encode(text), plusIsSpace: true) == text)
        }
    }

    @Test("a request is split into path below the prefix, query, cookies and form")
    func request() {
        let request = WebRequest(
            method: "post", target: "/_portal/subscriptions/sub_1/rotate?x=1", prefix: "/_portal",
            cookieHeaders: ["a=1; tollgate_portal=abc", "b=2"], contentType: "application/x-www-form-urlencoded; charset=utf-8",
            body: Array("csrf=t".utf8), clientAddress: "127.0.0.1")
        #expect(request.method == "POST")
        #expect(request.path == ["subscriptions", "sub_1", "rotate"])
        #expect(request.query == ["x": "1"])
        #expect(request.cookies["tollgate_portal"] == "abc")
        #expect(request.cookies["b"] == "2")
        #expect(request.form["csrf"] == "t")
    }

    @Test("a body that is not a form is not read as one")
    func notAForm() {
        let request = WebRequest(
            method: "POST", target: "/dashboard/catalog", prefix: "/dashboard", cookieHeaders: [], contentType: "application/json",
            body: Array("yaml=x".utf8), clientAddress: "")
        #expect(request.form.isEmpty)
        #expect(request.path == ["catalog"])
    }

    @Test("session cookies are HttpOnly and SameSite=Lax, Secure when asked")
    func cookies() {
        let plain = WebCookies.session(name: "s", value: "v", path: "/_portal", maxAge: 60, secure: false)
        #expect(plain == "s=v; Path=/_portal; Max-Age=60; HttpOnly; SameSite=Lax")
        #expect(WebCookies.session(name: "s", value: "v", path: "/", maxAge: 60, secure: true).hasSuffix("; Secure"))
    }
}
