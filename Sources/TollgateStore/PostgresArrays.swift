import NIOCore
import PostgresKit
import SQLKit

/// A one-dimensional `text[]` or `bigint[]` in PostgreSQL's binary format, built element by
/// element and bound as one parameter: a batch of rows goes to the server as one array per
/// column and comes out of `unnest` as rows, with nothing for either side to parse (no JSON,
/// no text to number conversions).
struct PostgresArray: PostgresDynamicTypeEncodable, Sendable {
    /// What the elements are.
    enum Element: Sendable {
        case text, bigint

        var type: PostgresDataType { self == .text ? .text : .int8 }
        var arrayType: PostgresDataType { self == .text ? .textArray : .int8Array }
        /// The type as `unnest` parameters spell it.
        var sqlName: String { self == .text ? "text[]" : "bigint[]" }
    }

    let element: Element
    private(set) var count: Int32 = 0
    private(set) var bytes: ByteBuffer

    /// The header's fields: dimensions, has-nulls flag, element type, then the one dimension's
    /// length and lower bound.
    private static let nullFlagOffset = 4
    private static let lengthOffset = 12

    init(_ element: Element, reservingCapacity bytes: Int = 0) {
        self.element = element
        var buffer = ByteBuffer()
        buffer.reserveCapacity(20 + bytes)
        buffer.writeInteger(Int32(1))
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(Int32(bitPattern: element.type.rawValue))
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(Int32(1))
        self.bytes = buffer
    }

    var psqlType: PostgresDataType { element.arrayType }
    var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeImmutableBuffer(bytes)
    }

    mutating func append(_ value: String?) {
        precondition(element == .text)
        guard let value else { return appendNull() }
        let lengthIndex = bytes.writerIndex
        bytes.writeInteger(Int32(0))
        let written = bytes.writeString(value)
        bytes.setInteger(Int32(written), at: lengthIndex)
        counted()
    }

    /// A text element from raw UTF-8 bytes (a JSON text as the scanner kept it).
    mutating func append(utf8 value: UnsafeBufferPointer<UInt8>) {
        precondition(element == .text)
        bytes.writeInteger(Int32(value.count))
        bytes.writeBytes(UnsafeRawBufferPointer(value))
        counted()
    }

    mutating func append(_ value: Int64?) {
        precondition(element == .bigint)
        guard let value else { return appendNull() }
        bytes.writeInteger(Int32(8))
        bytes.writeInteger(value)
        counted()
    }

    mutating func appendNull() {
        bytes.writeInteger(Int32(-1))
        bytes.setInteger(Int32(1), at: bytes.readerIndex + Self.nullFlagOffset)
        counted()
    }

    private mutating func counted() {
        count += 1
        bytes.setInteger(count, at: bytes.readerIndex + Self.lengthOffset)
    }
}

/// Rows of one table as one array per column, for `INSERT ... SELECT ... FROM unnest(...)`.
struct ColumnArrays: Sendable {
    var arrays: [PostgresArray]
    /// The column the next value of a row goes to (`EventRow`).
    var next = 0

    init(_ elements: [PostgresArray.Element], reservingCapacity bytes: [Int] = []) {
        arrays = elements.enumerated().map { index, element in
            PostgresArray(element, reservingCapacity: index < bytes.count ? bytes[index] : 0)
        }
    }

    /// `unnest($1::text[], $2::bigint[], ...) AS alias(names...)`, with the arrays bound.
    func unnest(as alias: String, columns names: [String]) -> SQLQueryString {
        var sql: SQLQueryString = "unnest("
        for (index, array) in arrays.enumerated() {
            sql += "\(unsafeRaw: index > 0 ? ", " : "")\(bind: array)::\(unsafeRaw: array.element.sqlName)"
        }
        sql += ") AS \(unsafeRaw: alias)(\(unsafeRaw: names.joined(separator: ", ")))"
        return sql
    }
}

/// PostgresKit binds a value that encodes itself for PostgreSQL as it is (its fast path), so an
/// array goes through SQLKit's `bind` unchanged; no other database can take it.
extension PostgresArray: Encodable {
    func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(
            self, EncodingError.Context(codingPath: encoder.codingPath, debugDescription: "a PostgreSQL array binds only to PostgreSQL"))
    }
}
