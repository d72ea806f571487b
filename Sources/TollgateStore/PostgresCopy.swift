import Logging
import NIOCore
import PostgresKit
import SQLKit

/// Rows in the text format of PostgreSQL's `COPY ... FROM STDIN`: a tab between columns, a
/// newline after each row, `\N` for NULL, and backslash, tab, newline and carriage return
/// escaped with a backslash. Built straight into the bytes sent, with no `String` per value.
struct CopyText: Sendable {
    private(set) var bytes: ByteBuffer
    private var columnsInRow = 0

    init(reservingCapacity capacity: Int = 0) {
        bytes = ByteBuffer()
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ value: String?) {
        guard var value else { return appendNull() }
        separate()
        value.withUTF8 { escape($0) }
    }

    /// A text value from UTF-8 bytes.
    mutating func append(utf8 value: UnsafeBufferPointer<UInt8>) {
        separate()
        escape(value)
    }

    mutating func append(_ value: Int64?) {
        guard let value else { return appendNull() }
        separate()
        if value < 0 { bytes.writeInteger(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.writeBytes(UnsafeRawBufferPointer(rebasing: buffer[start...]))
        }
    }

    mutating func append(_ value: Int?) {
        append(value.map { Int64($0) })
    }

    mutating func appendNull() {
        separate()
        bytes.writeStaticString("\\N")
    }

    /// Ends the row.
    mutating func endRow() {
        bytes.writeInteger(UInt8(ascii: "\n"))
        columnsInRow = 0
    }

    private mutating func separate() {
        if columnsInRow > 0 { bytes.writeInteger(UInt8(ascii: "\t")) }
        columnsInRow += 1
    }

    /// Writes the bytes, runs without special characters at once.
    private mutating func escape(_ value: UnsafeBufferPointer<UInt8>) {
        var start = 0
        for index in value.indices {
            let escaped: UInt8
            switch value[index] {
            case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
            case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
            case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
            case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
            default: continue
            }
            bytes.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: value[start..<index])))
            bytes.writeInteger(UInt8(ascii: "\\"))
            bytes.writeInteger(escaped)
            start = index + 1
        }
        bytes.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: value[start...])))
    }
}

/// A PostgreSQL connection as SQLKit's database, with the connection itself at hand for what
/// SQLKit has no words for (`COPY`). `PostgresBackend` hands one to each transaction.
struct PostgresSession: SQLDatabase {
    let connection: PostgresConnection
    private let sql: any SQLDatabase

    init(_ connection: PostgresConnection) {
        self.connection = connection
        self.sql = connection.sql(queryLogLevel: nil)
    }

    var logger: Logger { sql.logger }
    var eventLoop: any EventLoop { sql.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { sql.version }
    var dialect: any SQLDialect { sql.dialect }
    var queryLogLevel: Logger.Level? { sql.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        sql.execute(sql: query, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await sql.execute(sql: query, onRow)
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }

    /// Copies rows in `CopyText`'s format into `table`'s `columns`, a few hundred kilobytes per
    /// message. Names are the caller's constants, never input.
    func copy(_ rows: CopyText, into table: String, columns: [String]) async throws {
        try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
            var rest = rows.bytes
            while let chunk = rest.readSlice(length: min(rest.readableBytes, 256 * 1024)), chunk.readableBytes > 0 {
                try await writer.write(chunk)
            }
        }
    }
}

/// Whether PostgreSQL refused a statement for a duplicate key (SQLSTATE 23505).
func isUniqueViolation(_ error: any Error) -> Bool {
    (error as? PSQLError)?.serverInfo?[.sqlState] == "23505"
}
