import Foundation
import Logging
import NIOCore
import PostgresKit
import SQLKit

/// Rows in the text format of PostgreSQL's `COPY ... FROM STDIN`: a tab between columns, a
/// newline after each row, `\N` for NULL, and backslash, tab, newline and carriage return
/// escaped with a backslash. Each row is written in place into the bytes sent (`CopyRow`),
/// with room made once for the most it can take.
struct CopyText: Sendable {
    private(set) var bytes: ByteBuffer

    init(reservingCapacity capacity: Int = 0) {
        bytes = ByteBuffer()
        bytes.reserveCapacity(capacity)
    }

    /// Appends one row, which `body` writes and ends; it may take at most `maximumBytes`
    /// (`CopyRowBound` counts them).
    mutating func appendRow(maximumBytes: Int, _ body: (inout CopyRow) -> Void) {
        bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: maximumBytes) { raw in
            var row = CopyRow(raw.bindMemory(to: UInt8.self))
            body(&row)
            precondition(row.count <= maximumBytes, "a COPY row outgrew its bound")
            return row.count
        }
    }
}

/// One row of `CopyText` being written: values in column order, then `endRow`.
struct CopyRow {
    private let base: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0
    private var columns = 0

    fileprivate init(_ base: UnsafeMutableBufferPointer<UInt8>) {
        self.base = base
    }

    mutating func append(_ value: String?) {
        guard var value else { return appendNull() }
        separate()
        value.withUTF8 { escape($0) }
    }

    /// A JSON text as the scanner keeps it: its strings hold no raw tab, newline or carriage
    /// return (JSON escapes them) and it has no whitespace between tokens, so only backslashes
    /// are doubled, found with `memchr`.
    mutating func append(json value: UnsafeBufferPointer<UInt8>) {
        separate()
        var rest = UnsafeRawBufferPointer(value)
        while let start = rest.baseAddress, let found = memchr(start, Int32(UInt8(ascii: "\\")), rest.count) {
            let through = start.distance(to: UnsafeRawPointer(found)) + 1
            copy(UnsafeRawBufferPointer(rebasing: rest[..<through]))
            put(UInt8(ascii: "\\"))
            rest = UnsafeRawBufferPointer(rebasing: rest[through...])
        }
        copy(rest)
    }

    mutating func append(_ value: Int64?) {
        guard let value else { return appendNull() }
        separate()
        if value < 0 { put(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 1
        var scale: UInt64 = 10
        while digits < 20, magnitude >= scale {
            digits += 1
            scale &*= 10
        }
        var index = count + digits
        count = index
        repeat {
            index -= 1
            base[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
    }

    mutating func appendNull() {
        separate()
        put(UInt8(ascii: "\\"))
        put(UInt8(ascii: "N"))
    }

    /// Ends the row.
    mutating func endRow() {
        put(UInt8(ascii: "\n"))
        columns = 0
    }

    private mutating func separate() {
        if columns > 0 { put(UInt8(ascii: "\t")) }
        columns += 1
    }

    private mutating func put(_ byte: UInt8) {
        base[count] = byte
        count += 1
    }

    private mutating func copy(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: base[count..<count + bytes.count])).copyMemory(from: bytes)
        count += bytes.count
    }

    /// Copies the bytes, a backslash before each backslash, tab, newline and carriage return.
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
            copy(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: value[start..<index])))
            put(UInt8(ascii: "\\"))
            put(escaped)
            start = index + 1
        }
        copy(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: value[start...])))
    }
}

/// The most bytes a row can take in `CopyText`: every byte of a value escaped, the longest
/// number, a separator per column and the newline.
struct CopyRowBound {
    private(set) var bytes = 1

    mutating func text(utf8Count: Int?) { bytes += 1 + max(2, 2 * (utf8Count ?? 0)) }
    mutating func integer() { bytes += 1 + 20 }
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

    /// Copies rows in `CopyText`'s format into `table`'s `columns`, one message per part (a
    /// batch's rows: hundreds of kilobytes). Names are the caller's constants, never input.
    func copy(_ parts: [CopyText], into table: String, columns: [String]) async throws {
        try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
            for part in parts where part.bytes.readableBytes > 0 {
                try await writer.write(part.bytes)
            }
        }
    }
}

/// Whether PostgreSQL refused a statement for a duplicate key (SQLSTATE 23505).
func isUniqueViolation(_ error: any Error) -> Bool {
    (error as? PSQLError)?.serverInfo?[.sqlState] == "23505"
}
