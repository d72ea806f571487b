import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit

/// Where Tollgate keeps its state: `sqlite:PATH` or `postgres://user:pass@host:port/db`.
public enum DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    /// `?search_path=NAME` puts Tollgate's tables in schema NAME (created at start).
    case postgres(host: String, port: Int, username: String, password: String?, database: String, schema: String? = nil)

    /// Parses a database URL; nil when it is neither form.
    public init?(_ text: String) {
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else { return nil }
            self = .sqlite(path: path)
            return
        }
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme),
              let host = components.host, !host.isEmpty, let user = components.user else {
            return nil
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        let schema = components.queryItems?.first { $0.name == "search_path" }?.value
        if let schema, !schema.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) { return nil }
        self = .postgres(
            host: host, port: components.port ?? 5432, username: user.removingPercentEncoding ?? user,
            password: components.password?.removingPercentEncoding, database: database.isEmpty ? user : database,
            schema: schema)
    }

    /// The URL with everything needed to connect, password included (never log it).
    public var connectionString: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let host, let port, let username, let password, let database, let schema):
            let credentials = password.map { "\(username):\($0)" } ?? username
            return "postgres://\(credentials)@\(host):\(port)/\(database)" + (schema.map { "?search_path=\($0)" } ?? "")
        }
    }

    /// The URL without its password, for logs.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let host, let port, let username, _, let database, let schema):
            "postgres://\(username)@\(host):\(port)/\(database)" + (schema.map { "?search_path=\($0)" } ?? "")
        }
    }
}

/// Which SQL dialect a database speaks, for the few statements that differ.
public enum DatabaseKind: String, Sendable {
    case sqlite, postgres
}

/// A connection to the database that runs SQL one statement or one transaction at a time.
/// The store's queries are written once, against SQLKit, for both databases.
public protocol SQLBackend: Sendable {
    var kind: DatabaseKind { get }
    /// Runs `body` with a database handle, outside of a transaction.
    func withSQL<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T
}

/// SQLite in WAL mode through one connection; statements and transactions take turns.
final class SQLiteBackend: SQLBackend {
    let kind = DatabaseKind.sqlite
    private let connection: SQLiteConnection
    private let database: any SQLDatabase
    private let turns = AsyncTurns()

    private init(connection: SQLiteConnection, logger: Logger) {
        self.connection = connection
        self.database = connection.sql(queryLogLevel: nil)
    }

    static func open(path: String, logger: Logger) async throws -> SQLiteBackend {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        let backend = SQLiteBackend(connection: connection, logger: logger)
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=10000", "PRAGMA foreign_keys=ON"] {
            try await backend.database.raw(SQLQueryString(pragma)).run()
        }
        return backend
    }

    func withSQL<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await turns.take { try await body(database) }
    }

    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await turns.take {
            try await database.raw("BEGIN IMMEDIATE").run()
            do {
                let result = try await body(database)
                try await database.raw("COMMIT").run()
                return result
            } catch {
                try? await database.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    func close() async throws {
        try await turns.take { try await connection.close() }
    }
}

/// PostgreSQL through PostgresNIO's connection pool.
final class PostgresBackend: SQLBackend {
    let kind = DatabaseKind.postgres
    private let client: PostgresClient
    private let logger: Logger

    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    func withSQL<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await body(connection.sql(queryLogLevel: nil))
        }
    }

    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(connection.sql(queryLogLevel: nil))
            }
        } catch let error as PostgresTransactionError {
            // Callers see their own error, as with SQLite, once the rollback went through.
            if let closureError = error.closureError, error.rollbackError == nil { throw closureError }
            throw error
        }
    }
}

/// A first-come, first-served lock for async code: one holder at a time.
actor AsyncTurns {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func take<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        do {
            let result = try await body()
            release()
            return result
        } catch {
            release()
            throw error
        }
    }

    private func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}

extension TollgateStore {
    /// Opens the database at `url`, runs `body` with a store on it, and closes it afterwards.
    /// PostgreSQL's connection pool runs in a child task for exactly as long as `body`.
    public static func withStore<T: Sendable>(
        url: DatabaseURL, logger: Logger, _ body: @Sendable (TollgateStore) async throws -> T
    ) async throws -> T {
        switch url {
        case .sqlite(let path):
            let backend = try await SQLiteBackend.open(path: path, logger: logger)
            do {
                let result = try await body(TollgateStore(backend: backend, logger: logger))
                try await backend.close()
                return result
            } catch {
                try? await backend.close()
                throw error
            }
        case .postgres(let host, let port, let username, let password, let database, let schema):
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: .disable)
            configuration.options.maximumConnections = 16
            if let schema { configuration.options.additionalStartupParameters = [("search_path", schema)] }
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                let backend = PostgresBackend(client: client, logger: logger)
                if let schema {
                    try await backend.withSQL { try await $0.raw("CREATE SCHEMA IF NOT EXISTS \(ident: schema)").run() }
                }
                return try await body(TollgateStore(backend: backend, logger: logger))
            }
        }
    }
}
