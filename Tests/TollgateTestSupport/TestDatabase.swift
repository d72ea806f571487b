import Foundation
import Logging
import TollgateCore
import TollgateStore

/// The databases tests run against. PostgreSQL comes from `TOLLGATE_TEST_POSTGRES_URL`
/// (`scripts/test` starts a throwaway cluster and sets it); each use gets a fresh schema.
public enum TestDatabase: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    public static var postgresURL: String {
        ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_URL"] ?? "postgres://tollgate:tollgate@127.0.0.1:5432/tollgate_test"
    }

    /// A new, empty database of this kind.
    public func makeURL() throws -> DatabaseURL {
        switch self {
        case .sqlite:
            return .sqlite(path: TemporaryDirectory.make().appendingPathComponent("tollgate.sqlite").path)
        case .postgres:
            let schema = "t_" + RandomID.make("s").dropFirst(2)
            let separator = TestDatabase.postgresURL.contains("?") ? "&" : "?"
            guard let url = DatabaseURL(TestDatabase.postgresURL + separator + "search_path=" + schema) else {
                throw TestFailure("TOLLGATE_TEST_POSTGRES_URL is not a postgres:// URL")
            }
            return url
        }
    }

    /// Runs `body` with a migrated store on a new database of this kind.
    public func withStore<T: Sendable>(_ body: @Sendable (TollgateStore) async throws -> T) async throws -> T {
        try await TollgateStore.withStore(url: try makeURL(), logger: TestLogger.make()) { store in
            try await store.migrate()
            return try await body(store)
        }
    }
}

/// A failure of the test set-up itself.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Quiet loggers for tests (`LOG_LEVEL=debug` to see more).
public enum TestLogger {
    public static func make() -> Logger {
        var logger = Logger(label: "tollgate-test")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return logger
    }
}

/// Fresh folders for tests, all in one folder of this test process under the system's temporary
/// directory, which is removed with everything in it when the process exits.
public enum TemporaryDirectory {
    public static func make() -> URL {
        let url = root.appendingPathComponent(RandomID.make("d"))
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// This process's folder, made on first use; its removal is registered then.
    private static let root: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-test-" + RandomID.make("p"))
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TemporaryDirectory.root) }
        return url
    }()
}
