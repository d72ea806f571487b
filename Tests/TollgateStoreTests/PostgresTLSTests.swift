import Foundation
import SQLKit
import Testing
import TollgateCore
@testable import TollgateStore
import TollgateTestSupport

/// `sslmode` and `sslrootcert` of PostgreSQL URLs: how they are read and shown.
@Suite("Database URL")
struct DatabaseURLTests {
    @Test func sslModesAreReadAndShownWithoutThePassword() throws {
        let url = try #require(DatabaseURL(
            "postgres://app:s3cr%40t@db.example:6543/billing?search_path=t1&sslmode=verify-full&sslrootcert=/etc/ca%20files/root.pem"))
        #expect(url == .postgres(
            host: "db.example", port: 6543, username: "app", password: "s3cr@t", database: "billing", schema: "t1",
            tls: .verifyFull(rootCertificate: "/etc/ca files/root.pem")))
        #expect(url.description == "postgres://app@db.example:6543/billing?search_path=t1&sslmode=verify-full&sslrootcert=/etc/ca%20files/root.pem")
        #expect(!url.description.contains("s3cr"))
        // The connection string reads back as the same URL.
        #expect(DatabaseURL(url.connectionString) == url)

        #expect(DatabaseURL("postgres://app@h/db")?.postgresTLS == .disable)
        #expect(DatabaseURL("postgres://app@h/db?sslmode=disable")?.postgresTLS == .disable)
        #expect(DatabaseURL("postgres://app@h/db?sslmode=prefer")?.postgresTLS == .prefer)
        #expect(DatabaseURL("postgres://app@h/db?sslmode=require")?.postgresTLS == .require)
        #expect(DatabaseURL("postgres://app@h/db?sslmode=verify-full")?.postgresTLS == .verifyFull(rootCertificate: nil))
    }

    @Test(arguments: [
        ("postgres://app:pw-Hidden-1@h/db?sslmode=allow-ish", "sslmode must be disable, prefer, require or verify-full (got allow-ish)"),
        ("postgres://app:pw-Hidden-1@h/db?sslmode=%22pw-Hidden-1%22", "sslmode must be disable, prefer, require or verify-full"),
        ("postgres://app:pw-Hidden-1@h/db?sslmode=require&sslrootcert=/ca.pem", "sslrootcert is used only with sslmode=verify-full"),
        ("postgres://app:pw-Hidden-1@h/db?search_path=a;b", "search_path may hold only letters, digits and _"),
        ("mysql://app:pw-Hidden-1@h/db", "the database must be sqlite:PATH or postgres://user:pass@host:port/db"),
    ])
    func badURLsSayWhyWithoutThePassword(text: String, problem: String) {
        guard case .failure(let error) = DatabaseURL.parse(text) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(error.description == problem)
        #expect(!error.description.contains("pw-Hidden-1"))
        #expect(DatabaseURL(text) == nil)
    }
}

extension DatabaseURL {
    var postgresTLS: PostgresTLSMode? {
        guard case .postgres(_, _, _, _, _, _, let tls) = self else { return nil }
        return tls
    }

    /// This PostgreSQL URL with another TLS mode (and password).
    func with(tls: PostgresTLSMode, password newPassword: String? = nil) throws -> DatabaseURL {
        guard case .postgres(let host, let port, let username, let password, let database, let schema, _) = self else {
            throw TestFailure("not a PostgreSQL URL")
        }
        return .postgres(
            host: host, port: port, username: username, password: newPassword ?? password, database: database, schema: schema, tls: tls)
    }
}

/// Connections to the test cluster over TLS (`scripts/test` gives it a certificate for
/// 127.0.0.1 from a CA of its own and exports that CA's path).
@Suite(
    "PostgreSQL over TLS",
    .enabled(if: ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_CA"] != nil,
             "scripts/test's cluster (TOLLGATE_TEST_POSTGRES_CA) is needed"))
struct PostgresTLSTests {
    static var ca: String { ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_CA"] ?? "" }
    static var wrongCA: String { ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_WRONG_CA"] ?? "" }

    /// Whether the store's own connection is encrypted, as the server sees it.
    static func encrypted(_ store: TollgateStore) async throws -> Bool {
        try await store.backend.withSQL { database in
            try await database.raw("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").first()?.decode(column: "ssl", as: Bool.self)
        } ?? false
    }

    @Test(arguments: [PostgresTLSMode.require, .verifyFull(rootCertificate: PostgresTLSTests.ca)])
    func theStoreWorksOverTLS(mode: PostgresTLSMode) async throws {
        let url = try TestDatabase.postgres.makeURL().with(tls: mode)
        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            try await store.migrate()
            #expect(try await Self.encrypted(store))
            try await store.saveCustomer(Customer(id: "acme", name: "Acme", createdAt: Date()), mode: .create)
            #expect(try await store.customer("acme")?.value.name == "Acme")
        }
    }

    @Test func withoutTLSTheConnectionIsPlain() async throws {
        let url = try TestDatabase.postgres.makeURL().with(tls: .disable)
        try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { store in
            let encrypted = try await Self.encrypted(store)
            #expect(!encrypted)
        }
    }

    @Test func verifyFullRefusesAServerItsCADidNotSign() async throws {
        let password = "pw-Hidden-\(UUID().uuidString.prefix(8))"
        let url = try TestDatabase.postgres.makeURL().with(tls: .verifyFull(rootCertificate: Self.wrongCA), password: password)
        let error = await #expect(throws: DatabaseConnectionError.self) {
            try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { _ in }
        }
        let text = try #require(error).description
        #expect(text.contains("TLS handshake failed"), "\(text)")
        #expect(text.hasPrefix("cannot connect to postgres://tollgate@127.0.0.1:"), "\(text)")
        #expect(!text.contains(password))
        #expect(!String(reflecting: try #require(error)).contains(password))
    }

    @Test func aWrongPasswordIsRefusedWithoutShowingIt() async throws {
        let password = "pw-Hidden-\(UUID().uuidString.prefix(8))"
        let url = try TestDatabase.postgres.makeURL().with(tls: .verifyFull(rootCertificate: Self.ca), password: password)
        let error = await #expect(throws: DatabaseConnectionError.self) {
            try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { _ in }
        }
        let text = try #require(error).description
        #expect(text.contains("the server refused: password authentication failed"), "\(text)")
        #expect(!text.contains(password))
    }

    @Test func anUnreadableRootCertificateIsNamed() async throws {
        let missing = TemporaryDirectory.make().appendingPathComponent("none.pem").path
        let url = try TestDatabase.postgres.makeURL().with(tls: .verifyFull(rootCertificate: missing))
        let error = await #expect(throws: DatabaseConnectionError.self) {
            try await TollgateStore.withStore(url: url, logger: TestLogger.make()) { _ in }
        }
        #expect(error?.reason == "sslrootcert \(missing) is not a readable PEM certificate file")
    }
}
