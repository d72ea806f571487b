import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresKit
import SQLKit
import SQLiteKit
import Synchronization

/// How Tollgate talks to PostgreSQL over TLS: the URL's `sslmode`, with libpq's names.
public enum PostgresTLSMode: Sendable, Equatable {
    /// Plain TCP (the default when the URL names no `sslmode`).
    case disable
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    case prefer
    /// TLS or no connection; the certificate is not checked (it protects against eavesdroppers,
    /// not against someone in the middle).
    case require
    /// TLS with the server's certificate checked against `rootCertificate` (a PEM file, the
    /// URL's `sslrootcert`) or, without one, the system's trust roots, and its name or IP
    /// address against the URL's host.
    case verifyFull(rootCertificate: String?)

    /// The `sslmode` value.
    public var name: String {
        switch self {
        case .disable: "disable"
        case .prefer: "prefer"
        case .require: "require"
        case .verifyFull: "verify-full"
        }
    }
}

/// Why a database URL was not understood. Its text never repeats the password.
public struct DatabaseURLError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
}

/// Where Tollgate keeps its state: `sqlite:PATH` or `postgres://user:pass@host:port/db`.
public enum DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    /// `?search_path=NAME` puts Tollgate's tables in schema NAME (created at start);
    /// `sslmode=disable|prefer|require|verify-full` and `sslrootcert=PATH` choose TLS.
    case postgres(
        host: String, port: Int, username: String, password: String?, database: String, schema: String? = nil,
        tls: PostgresTLSMode = .disable)

    /// Parses a database URL; nil when it is neither form (`parse` says why).
    public init?(_ text: String) {
        guard case .success(let url) = Self.parse(text) else { return nil }
        self = url
    }

    /// Parses a database URL, or says what is wrong with it (without the password).
    public static func parse(_ text: String) -> Result<DatabaseURL, DatabaseURLError> {
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else { return .failure(DatabaseURLError(description: "sqlite: needs a path (sqlite:PATH)")) }
            return .success(.sqlite(path: path))
        }
        let form = "the database must be sqlite:PATH or postgres://user:pass@host:port/db"
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme),
              let host = components.host, !host.isEmpty, let user = components.user else {
            return .failure(DatabaseURLError(description: form))
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        func query(_ name: String) -> String? { components.queryItems?.first { $0.name == name }?.value }
        let schema = query("search_path")
        if let schema, !schema.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
            return .failure(DatabaseURLError(description: "search_path may hold only letters, digits and _"))
        }
        let rootCertificate = query("sslrootcert")
        let tls: PostgresTLSMode
        switch query("sslmode") {
        case nil, "disable": tls = .disable
        case "prefer": tls = .prefer
        case "require": tls = .require
        case "verify-full": tls = .verifyFull(rootCertificate: rootCertificate)
        case .some(let mode):
            let shown = mode.count <= 20 && mode.allSatisfy({ $0.isLetter || $0 == "-" }) ? " (got \(mode))" : ""
            return .failure(DatabaseURLError(description: "sslmode must be disable, prefer, require or verify-full\(shown)"))
        }
        if rootCertificate != nil, tls.name != "verify-full" {
            return .failure(DatabaseURLError(description: "sslrootcert is used only with sslmode=verify-full"))
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else {
            return .failure(DatabaseURLError(description: form))
        }
        return .success(.postgres(
            host: host, port: port, username: user.removingPercentEncoding ?? user,
            password: components.password?.removingPercentEncoding, database: database.isEmpty ? user : database,
            schema: schema, tls: tls))
    }

    /// The URL with everything needed to connect, password included (never log it).
    public var connectionString: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let host, let port, let username, let password, let database, let schema, let tls):
            let credentials = password.map { "\(Self.encoded(username)):\(Self.encoded($0))" } ?? Self.encoded(username)
            return "postgres://\(credentials)@\(Self.hostPart(host)):\(port)/\(database)" + Self.query(schema: schema, tls: tls)
        }
    }

    /// The URL without its password, for logs and errors.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let host, let port, let username, _, let database, let schema, let tls):
            "postgres://\(Self.encoded(username))@\(Self.hostPart(host)):\(port)/\(database)" + Self.query(schema: schema, tls: tls)
        }
    }

    private static func query(schema: String?, tls: PostgresTLSMode) -> String {
        var items: [String] = []
        if let schema { items.append("search_path=\(schema)") }
        if tls != .disable { items.append("sslmode=\(tls.name)") }
        if case .verifyFull(let root?) = tls { items.append("sslrootcert=\(encoded(root))") }
        return items.isEmpty ? "" : "?" + items.joined(separator: "&")
    }

    private static func hostPart(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }

    private static func encoded(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
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
    /// Runs `body`, which only reads, outside of a transaction; it sees everything committed
    /// before it started and does not wait for writers.
    func read<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Runs `body` in one transaction of the usage writer (`EventWriter`): on PostgreSQL its
    /// statements and the Swift between them run on the connection's event loop.
    func usageTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Where the writer's statements run (SQLite: its connection's thread); nil for anywhere.
    var writerExecutor: (any TaskExecutor)? { get }
    /// Runs `body` where the writer's statements run (SQLite: on its connection's thread), so
    /// that a task waiting for the writer's turn goes on there without another hop.
    func nearWriter<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T
}

extension SQLBackend {
    func nearWriter<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await body()
    }

    /// SQLite: runs `body` with the usage writer (`SQLiteUsageLog`) in the writer's turn, and
    /// returns its result. PostgreSQL: nil, without running `body`.
    func withUsageLog<T: Sendable>(_ body: @Sendable (SQLiteUsageLog) throws -> T) async throws -> T? {
        guard let sqlite = self as? SQLiteBackend else { return nil }
        return try await sqlite.inWritersTurn(body)
    }

    var writerExecutor: (any TaskExecutor)? { nil }

    func usageTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await transaction(body)
    }
}

/// SQLite in WAL mode: one connection writes, statements and transactions taking turns; a
/// second one reads beside it (WAL readers never wait for the writer), and checkpoints run on
/// a third (`WALCheckpointer`). Each connection has a thread of its own (`SQLiteThread`).
final class SQLiteBackend: SQLBackend {
    let kind = DatabaseKind.sqlite
    private let connection: SQLiteConnection
    private let database: any SQLDatabase
    private let writerThread: SQLiteThread
    private let turns = AsyncTurns()
    private let reader: SQLiteConnection
    private let readerDatabase: any SQLDatabase
    private let readerThread: SQLiteThread
    private let readerTurns = AsyncTurns()
    private let checkpointer: WALCheckpointer
    private let usageLog: SQLiteUsageLog

    private init(
        connection: SQLiteConnection, writerThread: SQLiteThread, reader: SQLiteConnection, readerThread: SQLiteThread,
        checkpointer: WALCheckpointer, usageLog: SQLiteUsageLog
    ) {
        self.usageLog = usageLog
        self.connection = connection
        self.database = connection.sql(queryLogLevel: nil)
        self.writerThread = writerThread
        self.reader = reader
        self.readerDatabase = reader.sql(queryLogLevel: nil)
        self.readerThread = readerThread
        self.checkpointer = checkpointer
    }

    static func open(path: String, logger: Logger) async throws -> SQLiteBackend {
        try PrivateFiles.prepareDatabase(at: path)
        let writerThread = SQLiteThread(), readerThread = SQLiteThread()
        var opened: [SQLiteConnection] = []
        do {
            // The writer checkpoints only when the log outgrows WALCheckpointer.logBound pages
            // (the checkpointer fell behind); WAL commits are durable against a crash of the
            // process, and the log is synced at every checkpoint.
            let connection = try await writerThread.open(path: path, logger: logger, pragmas: [
                "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=10000", "PRAGMA foreign_keys=ON",
                "PRAGMA cache_size=-65536", "PRAGMA temp_store=MEMORY", "PRAGMA wal_autocheckpoint=\(WALCheckpointer.logBound)",
            ])
            opened.append(connection)
            let reader = try await readerThread.open(path: path, logger: logger, pragmas: [
                "PRAGMA busy_timeout=10000", "PRAGMA cache_size=-16384", "PRAGMA query_only=1",
            ])
            opened.append(reader)
            let usageLog = try SQLiteUsageLog(path: path)
            let checkpointer = try await WALCheckpointer.start(path: path, logger: logger)
            return SQLiteBackend(
                connection: connection, writerThread: writerThread, reader: reader, readerThread: readerThread,
                checkpointer: checkpointer, usageLog: usageLog)
        } catch {
            for connection in opened { try? await connection.close() }
            await writerThread.stop()
            await readerThread.stop()
            throw error
        }
    }

    func withSQL<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(writerThread) {
            try await turns.take { try await body(database) }
        }
    }

    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(writerThread) {
            try await transactionInTurn(body)
        }
    }

    func read<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(readerThread) {
            try await readerTurns.take { try await body(readerDatabase) }
        }
    }

    func nearWriter<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(writerThread) { try await body() }
    }

    func inWritersTurn<T: Sendable>(_ body: @Sendable (SQLiteUsageLog) throws -> T) async throws -> T {
        let usageLog = usageLog
        return try await withTaskExecutorPreference(writerThread) {
            try await turns.take { try body(usageLog) }
        }
    }

    /// Runs `body` with the usage writer on the calling thread, now, if no one holds the
    /// writer's turn; nil, without running it, if someone does.
    func inWritersTurnIfFree<T>(_ body: (SQLiteUsageLog) throws -> T) rethrows -> T? {
        try turns.takeIfFree { try body(usageLog) }
    }

    var writerExecutor: (any TaskExecutor)? { writerThread }

    private func transactionInTurn<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
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
        await checkpointer.stop()
        var failure: (any Error)?
        do { try await readerTurns.take { try await reader.close() } } catch { failure = error }
        do { try await turns.take { try await connection.close() } } catch { failure = failure ?? error }
        // The threads stop whatever happened to the connections.
        await readerThread.stop()
        await writerThread.stop()
        if let failure { throw failure }
    }
}

/// Copies committed pages from the write-ahead log into the database file a few times a second,
/// on its own connection and thread: the writer's turn never includes a checkpoint's writes
/// and fsync, which otherwise stall every writer behind it.
final class WALCheckpointer: Sendable {
    /// Pages the log may hold before the writer checkpoints by itself (64 MB of 4 KB pages).
    static let logBound = 16_384
    static let interval = Duration.milliseconds(200)

    private let connection: SQLiteConnection
    private let thread: SQLiteThread
    private let loop: Task<Void, Never>

    private init(connection: SQLiteConnection, thread: SQLiteThread, loop: Task<Void, Never>) {
        self.connection = connection
        self.thread = thread
        self.loop = loop
    }

    static func start(path: String, logger: Logger) async throws -> WALCheckpointer {
        let thread = SQLiteThread()
        let connection: SQLiteConnection
        do {
            connection = try await thread.open(path: path, logger: logger, pragmas: ["PRAGMA synchronous=NORMAL"])
        } catch {
            await thread.stop()
            throw error
        }
        let loop = Task {
            while true {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return  // stopped
                }
                do {
                    _ = try await connection.query("PRAGMA wal_checkpoint(PASSIVE)")
                } catch {
                    logger.warning("WAL checkpoint failed", metadata: ["error": "\(error)"])
                }
            }
        }
        return WALCheckpointer(connection: connection, thread: thread, loop: loop)
    }

    func stop() async {
        loop.cancel()
        await loop.value
        try? await connection.close()
        await thread.stop()
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

    /// Holds one connection of the pool to `LISTEN` on `channel`, calling `notified` with each
    /// notification's payload, and once with nil as soon as it listens (whatever came before is
    /// then caught up once), until cancelled.
    func listen(on channel: String, _ notified: @escaping @Sendable (String?) -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: channel) { notifications in
                notified(nil)
                for try await notification in notifications { notified(notification.payload) }
            }
        }
    }

    func withSQL<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await body(connection.sql(queryLogLevel: nil))
        }
    }

    func read<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await withSQL(body)
    }

    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await Self.throwingCallersError {
            try await client.withTransaction(logger: logger) { connection in
                try await body(PostgresSession(connection))
            }
        }
    }

    /// The transaction's steps resume on the event loop that reads the connection's answers:
    /// the next statement goes out as soon as the last one's answer is in, instead of after a
    /// hop to a thread that may be busy parsing other batches (PostgreSQL waited for the
    /// client, `ClientRead`, in a fifth of the samples of its active backends during ingest).
    /// Only for the writer's short steps; the event loop serves other connections too.
    func usageTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await Self.throwingCallersError {
            try await client.withConnection { connection in
                try await withTaskExecutorPreference(EventLoopTaskExecutor(connection.eventLoop)) {
                    try await connection.withTransaction(logger: self.logger) { connection in
                        try await body(PostgresSession(connection))
                    }
                }
            }
        }
    }

    /// Runs a PostgresNIO transaction; callers see their own error, as with SQLite, once the
    /// rollback went through.
    private static func throwingCallersError<T>(_ transaction: () async throws -> T) async throws -> T {
        do {
            return try await transaction()
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError, error.rollbackError == nil { throw closureError }
            throw error
        }
    }
}

/// Runs a task's jobs on a NIO event loop (`PostgresBackend.usageTransaction`).
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A first-come, first-served lock for async code: one holder at a time. Not an actor, so that
/// taking and handing over a turn never waits for a thread of the shared pool.
final class AsyncTurns: Sendable {
    private struct State {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func take<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    /// Runs `body` in a turn taken now, if no one holds one or waits for one; nil otherwise.
    func takeIfFree<T>(_ body: () throws -> T) rethrows -> T? {
        let free = state.withLock { state in
            if state.busy { return false }
            state.busy = true
            return true
        }
        guard free else { return nil }
        defer { release() }
        return try body()
    }

    private func acquire() async {
        let free = state.withLock { state in
            if state.busy { return false }
            state.busy = true
            return true
        }
        if free { return }
        await withCheckedContinuation { continuation in
            let handedOver = state.withLock { state in
                if state.busy {
                    state.waiting.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if handedOver { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.busy = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}

/// The thread of one SQLite connection: SQLiteNIO runs the connection's libsqlite3 calls on it
/// (a thread pool of one), and it is also the executor of the tasks using that connection. A
/// transaction's statements and the Swift between them thus run back to back on one thread,
/// without waking another thread for each statement, and never wait behind the shared pool's
/// work (parsing a large batch).
final class SQLiteThread: TaskExecutor {
    private let pool = NIOThreadPool(numberOfThreads: 1)

    init() {
        pool.start()
    }

    /// Opens a connection to the database at `path` on this thread and runs `pragmas` on it;
    /// closes it again if one fails.
    func open(path: String, logger: Logger, pragmas: [String]) async throws -> SQLiteConnection {
        let connection = try await SQLiteConnection.open(
            storage: .file(path: path), threadPool: pool, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any())
        do {
            for pragma in pragmas { _ = try await connection.query(pragma) }
            return connection
        } catch {
            try? await connection.close()
            throw error
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pool.submit { state in
            guard case .active = state else {
                // The thread has stopped (the store closed): the job still runs, on a shared queue.
                DispatchQueue.global().async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
                return
            }
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    func stop() async {
        try? await pool.shutdownGracefully()
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
        case .postgres(let host, let port, let username, let password, let database, let schema, let tlsMode):
            let tls = try PostgresTLS(tlsMode, url: url)
            // One connection first: a wrong password or certificate fails here, at once and
            // with its reason, rather than after the pool's retries.
            do {
                let probe = try await PostgresConnection.connect(
                    configuration: PostgresConnection.Configuration(
                        host: host, port: port, username: username, password: password, database: database,
                        tls: tls.connection),
                    id: 0, logger: logger)
                try? await probe.close()
            } catch {
                throw DatabaseConnectionError(url: url, error: error, password: password)
            }
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: tls.client)
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

/// The TLS settings of both PostgresNIO APIs (the pool's and a single connection's) for a mode.
struct PostgresTLS {
    var client: PostgresClient.Configuration.TLS
    var connection: PostgresConnection.Configuration.TLS

    init(_ mode: PostgresTLSMode, url: DatabaseURL) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable:
            client = .disable
            connection = .disable
            return
        case .prefer, .require:
            configuration.certificateVerification = .none
        case .verifyFull(let rootCertificate):
            configuration.certificateVerification = .fullVerification
            if let rootCertificate {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate))
                } catch {
                    throw DatabaseConnectionError(url: url, reason: "sslrootcert \(rootCertificate) is not a readable PEM certificate file")
                }
            }
        }
        let context = try NIOSSLContext(configuration: configuration)
        if mode == .prefer {
            client = .prefer(configuration)
            connection = .prefer(context)
        } else {
            client = .require(configuration)
            connection = .require(context)
        }
    }
}

/// The database could not be reached or refused the connection: which database (without its
/// password) and why.
public struct DatabaseConnectionError: Error, CustomStringConvertible, Sendable {
    /// The database, as `DatabaseURL.description` shows it.
    public var database: String
    public var reason: String

    public var description: String { "cannot connect to \(database): \(reason)" }

    init(url: DatabaseURL, reason: String) {
        self.database = url.description
        self.reason = reason
    }

    init(url: DatabaseURL, error: any Error, password: String?) {
        var reason = Self.reason(error)
        // The reasons come from the server and the TLS library, never from the URL; still, a
        // password must not be shown, whatever its source.
        if let password, !password.isEmpty { reason = reason.replacingOccurrences(of: password, with: "***") }
        self.init(url: url, reason: reason)
    }

    private static func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        switch error.code {
        case .sslUnsupported:
            return "the server does not accept TLS (sslmode requires it)"
        case .server:
            return "the server refused: " + (error.serverInfo?[.message] ?? "no reason given")
        case .connectionError, .failedToAddSSLHandler:
            guard let underlying = error.underlying else { return "the connection failed" }
            if underlying is NIOSSLError || underlying is BoringSSLError {
                return "TLS handshake failed (is the server's certificate trusted by sslrootcert, and its name the URL's host?): \(underlying)"
            }
            return "the connection failed: \(underlying)"
        default:
            return "\(error.code)"
        }
    }
}

/// Files only Tollgate's user may read: its folders `0700`, the SQLite database `0600`. SQLite
/// gives the `-wal` and `-shm` files the database file's permissions, so the database is
/// created before SQLite opens it; files left wider by an older version are narrowed.
public enum PrivateFiles {
    /// Creates `path` (and missing parents) as `0700`; an existing folder is left as it is.
    public static func createDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// Whether an existing folder lets its group or others in.
    public static func isOpenToOthers(_ path: String) -> Bool {
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int else { return false }
        return mode & 0o077 != 0
    }

    /// Makes the database's folder and an empty database file `0600` when they are missing, and
    /// narrows the database, its `-wal` and its `-shm` to `0600` when they are wider.
    static func prepareDatabase(at path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try createDirectory(directory)
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor >= 0 {
                close(descriptor)
            } else if errno != EEXIST {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
        }
        for file in [path, path + "-wal", path + "-shm"] {
            guard let mode = (try? manager.attributesOfItem(atPath: file))?[.posixPermissions] as? Int, mode & 0o077 != 0 else { continue }
            try manager.setAttributes([.posixPermissions: mode & 0o700], ofItemAtPath: file)
        }
    }
}
