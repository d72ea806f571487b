// The SQLite library SQLiteNIO links (its symbols prefixed `sqlite_nio_`): one copy of SQLite
// in the process, so that every connection to a file shares SQLite's own lock bookkeeping.
import TollgateCore
import VaporCSQLite

/// A SQLite call that failed, with SQLite's message (which never holds bound values).
struct SQLiteCallError: Error, CustomStringConvertible {
    var code: Int32
    var message: String

    var description: String { "SQLite error \(code): \(message)" }
}

/// One SQLite connection driven through SQLite's C interface, with its statements prepared
/// once and kept. Not thread-safe: its owner uses it from one thread at a time.
final class SQLiteHandle {
    private let database: OpaquePointer
    private var prepared: [String: OpaquePointer] = [:]

    /// Opens (read-write) the database at `path`, which must exist, through the VFS named
    /// `vfs` (SQLite's default for nil), and runs `pragmas`.
    init(path: String, vfs: String? = nil, pragmas: [String]) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, flags, vfs)
        guard opened == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite_nio_sqlite3_close_v2(handle)
            throw SQLiteCallError(code: opened, message: message)
        }
        database = handle
        do {
            for pragma in pragmas { try execute(pragma) }
        } catch {
            sqlite_nio_sqlite3_close_v2(handle)
            throw error
        }
    }

    deinit {
        for statement in prepared.values { sqlite_nio_sqlite3_finalize(statement) }
        sqlite_nio_sqlite3_close_v2(database)
    }

    /// Runs SQL text that returns no rows (pragmas, `BEGIN`, `COMMIT`).
    func execute(_ sql: String) throws {
        let status = sqlite_nio_sqlite3_exec(database, sql, nil, nil, nil)
        guard status == SQLITE_OK else { throw error(status) }
    }

    /// The statement of `sql`, prepared the first time it is asked for, reset and unbound.
    func statement(_ sql: String) throws -> SQLiteStatementHandle {
        if let statement = prepared[sql] { return SQLiteStatementHandle(handle: statement, owner: self) }
        var statement: OpaquePointer?
        let status = sqlite_nio_sqlite3_prepare_v3(database, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status) }
        prepared[sql] = statement
        return SQLiteStatementHandle(handle: statement, owner: self)
    }

    /// Rows the last statement inserted, updated or deleted.
    var changes: Int { Int(sqlite_nio_sqlite3_changes(database)) }

    fileprivate func error(_ status: Int32) -> SQLiteCallError {
        SQLiteCallError(code: status, message: String(cString: sqlite_nio_sqlite3_errmsg(database)))
    }
}

/// A prepared statement of a `SQLiteHandle`: bind its parameters (from 1), step, read columns
/// (from 0). `run` and `rows` reset it afterwards, so it is ready for its next use.
///
/// A reset keeps the values bound: every use binds every parameter again. Clearing them
/// (`sqlite3_clear_bindings`) would expire any statement whose plan SQLite made with a
/// parameter in mind (`WHERE subscription_id = ?`), and SQLite would then parse and plan it
/// again at its next step: once per commit for the late-invoice look-up.
struct SQLiteStatementHandle {
    fileprivate let handle: OpaquePointer
    fileprivate let owner: SQLiteHandle

    func bind(_ index: Int32, _ value: String?) throws {
        func bindText(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
            bytes.withMemoryRebound(to: CChar.self) { text in
                sqlite_nio_sqlite3_bind_text64(handle, index, text.baseAddress, UInt64(text.count), Self.transient, UInt8(SQLITE_UTF8))
            }
        }
        let status: Int32
        if let value, !value.isEmpty {
            status = value.withUTF8Bytes(bindText)
        } else if value != nil {
            status = sqlite_nio_sqlite3_bind_text64(handle, index, "", 0, Self.transient, UInt8(SQLITE_UTF8))
        } else {
            status = sqlite_nio_sqlite3_bind_null(handle, index)
        }
        guard status == SQLITE_OK else { throw owner.error(status) }
    }

    func bind(_ index: Int32, _ value: Int64?) throws {
        let status = value.map { sqlite_nio_sqlite3_bind_int64(handle, index, $0) } ?? sqlite_nio_sqlite3_bind_null(handle, index)
        guard status == SQLITE_OK else { throw owner.error(status) }
    }

    func bind(_ index: Int32, _ value: Int?) throws {
        try bind(index, value.map(Int64.init))
    }

    /// Runs a statement that returns no rows.
    func run() throws {
        defer { reset() }
        let status = sqlite_nio_sqlite3_step(handle)
        guard status == SQLITE_DONE || status == SQLITE_ROW else { throw owner.error(status) }
    }

    /// Runs a query, handing each row to `row`.
    func rows(_ row: (SQLiteRowReader) throws -> Void) throws {
        defer { reset() }
        while true {
            let status = sqlite_nio_sqlite3_step(handle)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw owner.error(status) }
            try row(SQLiteRowReader(handle: handle))
        }
    }

    private func reset() {
        sqlite_nio_sqlite3_reset(handle)
    }

    /// How many times SQLite prepared the statement again since it was first prepared.
    var reprepareCount: Int {
        Int(sqlite_nio_sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_REPREPARE, 0))
    }

    /// SQLite copies bound text before `bind` returns.
    fileprivate static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// The current row of a query.
struct SQLiteRowReader {
    fileprivate let handle: OpaquePointer

    func text(_ column: Int32) -> String? {
        guard sqlite_nio_sqlite3_column_type(handle, column) != SQLITE_NULL,
              let text = sqlite_nio_sqlite3_column_text(handle, column) else { return nil }
        return String(cString: text)
    }

    func integer(_ column: Int32) -> Int64? {
        sqlite_nio_sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : sqlite_nio_sqlite3_column_int64(handle, column)
    }
}
