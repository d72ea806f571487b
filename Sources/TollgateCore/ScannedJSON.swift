import Foundation

/// JSON text read once: checked, stripped of its insignificant whitespace and indexed, so that
/// values are found, and their text kept, without building a tree. A `ScannedJSON` is one value of
/// the scanned document: the whole of it, an element or a member. Numbers keep their exact digits.
public struct ScannedJSON: Sendable {
    /// What a value is.
    public enum Kind: UInt8, Sendable {
        case object, array, string, number, `true`, `false`, null
    }

    let document: Document
    let position: Int

    /// The text without insignificant whitespace, and one token per value (and per key) in it,
    /// in the order they appear.
    final class Document: Sendable {
        let bytes: [UInt8]
        let tokens: [Token]

        init(bytes: [UInt8], tokens: [Token]) {
            self.bytes = bytes
            self.tokens = tokens
        }
    }

    /// Where a value is in `Document.bytes`, and where the values after it start in `tokens`.
    struct Token {
        var kind: Kind
        /// A string with at least one escape, whose text needs decoding.
        var escaped = false
        /// A string of ASCII characters only (escapes aside): two such keys are the same key
        /// exactly when their bytes are.
        var ascii = true
        var start: UInt32
        var end: UInt32
        /// The token past this value and everything inside it.
        var after: UInt32
        /// How many bytes the value took in the text as it arrived, whitespace inside included.
        var arrivedSize: UInt32 = 0
        /// A key's `JSONScanner.keyPrint`: two plain keys (ASCII, no escapes) that differ in it
        /// differ, so most pairs are told apart without reading their bytes.
        var keyPrint: UInt32 = 0

        /// A key of ASCII characters only, without escapes: compared byte for byte.
        var isPlainKey: Bool { ascii && !escaped }

        /// A string's bytes between its quotes, in the text it was scanned into.
        func body(in text: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: text[Int(start) + 1..<Int(end) - 1])
        }

        /// A string key as `JSONScanner.sameKey` compares it.
        func key(in text: UnsafeBufferPointer<UInt8>) -> JSONScanner.Key {
            JSONScanner.Key(body: body(in: text), escaped: escaped, ascii: ascii)
        }
    }

    /// Scans a JSON document; throws the reason when it is not one value of strict JSON (UTF-8,
    /// no duplicate keys, at most 64 levels deep).
    public static func scan(_ data: some Collection<UInt8>) throws(InvalidDocument) -> ScannedJSON {
        let scanned: Result<Document, JSONScanner.Failure> =
            data.withContiguousStorageIfAvailable(JSONScanner.scan) ?? Array(data).withUnsafeBufferPointer(JSONScanner.scan)
        switch scanned {
        case .success(let document): return ScannedJSON(document: document, position: 0)
        case .failure(let failure):
            throw InvalidDocument([DocumentProblem(path: "", line: nil, message: "malformed JSON: \(failure.reason)")])
        }
    }

    private var token: Token { document.tokens[position] }

    public var kind: Kind { token.kind }

    public var isObject: Bool { token.kind == .object }

    /// Whether the value is a string, number or boolean (what `scalarText` reads).
    public var isScalar: Bool {
        switch token.kind {
        case .string, .number, .true, .false: true
        case .object, .array, .null: false
        }
    }

    /// The elements of an array; empty for other values.
    public var elements: [ScannedJSON] {
        guard kind == .array else { return [] }
        var elements: [ScannedJSON] = []
        var next = position + 1
        let end = Int(token.after)
        while next < end {
            elements.append(ScannedJSON(document: document, position: next))
            next = Int(document.tokens[next].after)
        }
        return elements
    }

    /// The members of an object, in their order; empty for other values.
    public var members: [(key: String, value: ScannedJSON)] {
        guard kind == .object else { return [] }
        var members: [(key: String, value: ScannedJSON)] = []
        var key = position + 1
        let end = Int(token.after)
        while key < end {
            members.append((string(at: key), ScannedJSON(document: document, position: key + 1)))
            key = Int(document.tokens[key + 1].after)
        }
        return members
    }

    /// The value stored under `key` in an object.
    public subscript(key: some StringProtocol) -> ScannedJSON? {
        guard kind == .object else { return nil }
        let member = key.utf8.withContiguousStorageIfAvailable { document.member($0, ofObjectAt: position) }
            ?? Array(key.utf8).withUnsafeBufferPointer { document.member($0, ofObjectAt: position) }
        return member.map { ScannedJSON(document: document, position: $0) }
    }

    /// The value at a dotted path of object keys (`metadata.cost`).
    public func value(atPath path: String) -> ScannedJSON? {
        position(atPath: path).map(value(at:))
    }

    /// The position of `value(atPath:)` in this value's document, found without making a value
    /// per step.
    func position(atPath path: String) -> Int? {
        var path = path
        return path.withUTF8 { path in
            var found = position
            var rest = path[...]
            while true {
                let dot = rest.firstIndex(of: UInt8(ascii: ".")) ?? rest.endIndex
                guard document.tokens[found].kind == .object,
                      let next = document.member(UnsafeBufferPointer(rebasing: rest[..<dot]), ofObjectAt: found) else { return nil }
                found = next
                guard dot < rest.endIndex else { return found }
                rest = rest[(dot + 1)...]
            }
        }
    }

    /// The plain text of a scalar (a string decoded, a number's digits, `true`/`false`); nil for
    /// null, objects and arrays.
    public var scalarText: String? { scalarText(at: position) }

    /// The value's JSON text, without insignificant whitespace.
    public var text: String {
        String(decoding: document.bytes[Int(token.start)..<Int(token.end)], as: UTF8.self)
    }

    /// How many bytes the value's text has, without insignificant whitespace.
    public var byteCount: Int { Int(token.end - token.start) }

    /// How many bytes the value took as it arrived.
    public var arrivedSize: Int { Int(token.arrivedSize) }

    /// Appends the value's JSON text, without insignificant whitespace.
    public func appendText(to out: inout [UInt8]) {
        out.append(contentsOf: document.bytes[Int(token.start)..<Int(token.end)])
    }

    /// Calls `body` with the value's JSON text, without insignificant whitespace, in place.
    public func withText<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        let token = token
        return try document.bytes.withUnsafeBufferPointer { bytes in
            try body(UnsafeBufferPointer(rebasing: bytes[Int(token.start)..<Int(token.end)]))
        }
    }

    /// Calls `body` with a string's bytes (between its quotes) when it has no escapes, so that
    /// they can be read without making a `String`; nil for other strings and other values.
    public func withUnescapedBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result? {
        withUnescapedBytes(at: position, body)
    }

    // MARK: Reading a known shape

    /// Where the value under `key`, and under `inner` within that, is in this object's
    /// document; nil where a step is missing or not an object. Readers of a fixed shape
    /// (`CollectorFormat`) find their members this way, without making a value per step.
    func position(of key: StaticString, _ inner: StaticString? = nil) -> Int? {
        guard let found = document.member(key, ofObjectAt: position) else { return nil }
        guard let inner else { return found }
        return document.member(inner, ofObjectAt: found)
    }

    /// The value at a `position(of:)` in the same document.
    func value(at position: Int) -> ScannedJSON { ScannedJSON(document: document, position: position) }

    /// `scalarText` of the value at a `position(of:)`, nil for no position.
    func scalarText(at position: Int?) -> String? {
        guard let position else { return nil }
        let token = document.tokens[position]
        switch token.kind {
        case .string: return string(at: position)
        case .number: return String(decoding: document.bytes[Int(token.start)..<Int(token.end)], as: UTF8.self)
        case .true: return "true"
        case .false: return "false"
        case .object, .array, .null: return nil
        }
    }

    /// `withUnescapedBytes` of the value at a `position(of:)`.
    func withUnescapedBytes<Result>(at position: Int, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result? {
        let token = document.tokens[position]
        guard token.kind == .string, !token.escaped else { return nil }
        return document.bytes.withUnsafeBufferPointer { body(token.key(in: $0).body) }
    }

    /// The decoded text of the string token at `index`.
    private func string(at index: Int) -> String {
        let token = document.tokens[index]
        return document.bytes.withUnsafeBufferPointer { token.key(in: $0).text }
    }
}

extension ScannedJSON.Document {
    /// The token of the value stored under the UTF-8 key `wanted` in the object at `object`.
    /// Keys are compared as `JSONScanner.sameKey` says.
    func member(_ wanted: UnsafeBufferPointer<UInt8>, ofObjectAt object: Int) -> Int? {
        member(JSONScanner.Key(body: wanted, escaped: false, ascii: wanted.allSatisfy { $0 < 0x80 }), ofObjectAt: object)
    }

    /// The token of the value stored under a key known in advance; nil also when the value at
    /// `object` is not an object.
    func member(_ wanted: StaticString, ofObjectAt object: Int) -> Int? {
        guard tokens[object].kind == .object else { return nil }
        return wanted.withUTF8Buffer { body in
            member(JSONScanner.Key(body: body, escaped: false, ascii: wanted.isASCII), ofObjectAt: object)
        }
    }

    private func member(_ wantedKey: JSONScanner.Key, ofObjectAt object: Int) -> Int? {
        let wantedIsPlain = wantedKey.ascii && !wantedKey.escaped
        let wantedPrint = JSONScanner.keyPrint(wantedKey.body)
        return tokens.withUnsafeBufferPointer { tokens in
            bytes.withUnsafeBufferPointer { bytes in
                var key = object + 1
                let end = Int(tokens[object].after)
                while key < end {
                    let token = tokens[key]
                    if !(wantedIsPlain && token.isPlainKey && token.keyPrint != wantedPrint),
                       JSONScanner.sameKey(token.key(in: bytes), wantedKey) {
                        return key + 1
                    }
                    key = Int(tokens[key + 1].after)
                }
                return nil
            }
        }
    }
}

/// Reads strict JSON into a `ScannedJSON.Document` in one pass.
struct JSONScanner {
    struct Failure: Error { var reason: String }

    typealias Token = ScannedJSON.Token

    /// Objects with more keys than this are checked for duplicates through a set.
    private static let keysComparedInPairs = 16

    private let input: UnsafeBufferPointer<UInt8>
    private var index = 0
    private let output: UnsafeMutableBufferPointer<UInt8>
    private var count = 0
    private var tokens: [Token] = []
    private var depth = 0

    private init(input: UnsafeBufferPointer<UInt8>, output: UnsafeMutableBufferPointer<UInt8>) {
        self.input = input
        self.output = output
        // About one token per eight bytes of JSON with short keys and values (a batch of API
        // events has one per ten or so); a denser document grows the array.
        tokens.reserveCapacity(input.count / 8 + 1)
    }

    static func scan(_ input: UnsafeBufferPointer<UInt8>) -> Result<ScannedJSON.Document, Failure> {
        var tokens: [Token] = []
        var failure: Failure?
        let bytes = [UInt8](unsafeUninitializedCapacity: input.count) { output, initialized in
            var scanner = JSONScanner(input: input, output: output)
            do throws(Failure) {
                try scanner.scanDocument()
            } catch {
                failure = error
            }
            initialized = scanner.count
            tokens = scanner.tokens
        }
        if let failure { return .failure(failure) }
        return .success(ScannedJSON.Document(bytes: bytes, tokens: tokens))
    }

    private mutating func scanDocument() throws(Failure) {
        skipWhitespace()
        try scanValue()
        skipWhitespace()
        guard index == input.count else { throw Failure(reason: "unexpected text after the value at byte \(index)") }
    }

    private mutating func skipWhitespace() {
        while index < input.count {
            switch input[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func emit(_ byte: UInt8) {
        output[count] = byte
        count += 1
    }

    /// Scans one value, whose token is the next one.
    private mutating func scanValue() throws(Failure) {
        guard index < input.count else { throw Failure(reason: "unexpected end of input") }
        let first = tokens.count
        let arrivedFrom = index
        switch input[index] {
        case UInt8(ascii: "{"): try scanObject()
        case UInt8(ascii: "["): try scanArray()
        case UInt8(ascii: "\""): try scanString()
        case UInt8(ascii: "t"): try scanLiteral("true", .true)
        case UInt8(ascii: "f"): try scanLiteral("false", .false)
        case UInt8(ascii: "n"): try scanLiteral("null", .null)
        default: try scanNumber()
        }
        tokens[first].arrivedSize = UInt32(index - arrivedFrom)
    }

    private mutating func open(_ kind: ScannedJSON.Kind) throws(Failure) -> Int {
        depth += 1
        if depth > 64 { throw Failure(reason: "nested too deeply") }
        tokens.append(Token(kind: kind, start: UInt32(count), end: 0, after: 0))
        emit(input[index])
        index += 1
        skipWhitespace()
        return tokens.count - 1
    }

    private mutating func close(_ token: Int) {
        depth -= 1
        emit(input[index])
        index += 1
        tokens[token].end = UInt32(count)
        tokens[token].after = UInt32(tokens.count)
    }

    private mutating func scanObject() throws(Failure) {
        let object = try open(.object)
        if index < input.count, input[index] == UInt8(ascii: "}") { return close(object) }
        var keys = 0
        while true {
            skipWhitespace()
            guard index < input.count, input[index] == UInt8(ascii: "\"") else {
                throw Failure(reason: "expected a key at byte \(index)")
            }
            let key = tokens.count
            try scanString()
            tokens[key].keyPrint = Self.keyPrint(tokens[key].body(in: UnsafeBufferPointer(output)))
            keys += 1
            if keys <= Self.keysComparedInPairs { try Self.checkNewKey(key, in: object, of: tokens, in: output) }
            skipWhitespace()
            guard index < input.count, input[index] == UInt8(ascii: ":") else {
                throw Failure(reason: "expected ':' at byte \(index)")
            }
            emit(UInt8(ascii: ":"))
            index += 1
            skipWhitespace()
            try scanValue()
            if try reachedEnd(of: UInt8(ascii: "}")) {
                close(object)
                if keys > Self.keysComparedInPairs { try checkAllKeys(of: object) }
                return
            }
        }
    }

    /// After a member or an element: true at the closing bracket, false past a comma.
    private mutating func reachedEnd(of closing: UInt8) throws(Failure) -> Bool {
        skipWhitespace()
        guard index < input.count else { throw Failure(reason: "unexpected end of input") }
        if input[index] == closing { return true }
        guard input[index] == UInt8(ascii: ",") else {
            throw Failure(reason: "expected ',' or '\(Character(Unicode.Scalar(closing)))' at byte \(index)")
        }
        emit(UInt8(ascii: ","))
        index += 1
        return false
    }

    /// Refuses a key that an earlier key of the same object already says. Static, and given the
    /// tokens: a method of the scanner, called from its mutating scan, would be handed a copy of
    /// the whole scanner for every key.
    private static func checkNewKey(_ key: Int, in object: Int, of tokens: [Token], in output: UnsafeMutableBufferPointer<UInt8>) throws(Failure) {
        var earlier = object + 1
        while earlier < key {
            if sameKey(earlier, key, of: tokens, in: output) {
                throw Failure(reason: "duplicate key \"\(keyText(key, of: tokens, in: output))\"")
            }
            earlier = Int(tokens[earlier + 1].after)
        }
    }

    /// Refuses a repeated key in a large object, in one pass.
    private func checkAllKeys(of object: Int) throws(Failure) {
        var seen: Set<String> = []
        var key = object + 1
        while key < Int(tokens[object].after) {
            let text = Self.keyText(key, of: tokens, in: output)
            guard seen.insert(text).inserted else { throw Failure(reason: "duplicate key \"\(text)\"") }
            key = Int(tokens[key + 1].after)
        }
    }

    private static func keyText(_ key: Int, of tokens: [Token], in output: UnsafeMutableBufferPointer<UInt8>) -> String {
        tokens[key].key(in: UnsafeBufferPointer(output)).text
    }

    private static func sameKey(_ a: Int, _ b: Int, of tokens: [Token], in output: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        let (first, second) = (tokens[a], tokens[b])
        if first.isPlainKey && second.isPlainKey && first.keyPrint != second.keyPrint { return false }
        return sameKey(first.key(in: UnsafeBufferPointer(output)), second.key(in: UnsafeBufferPointer(output)))
    }

    /// A key's length and its first, middle and last bytes in one number: plain keys that are
    /// the same have the same print.
    static func keyPrint(_ body: UnsafeBufferPointer<UInt8>) -> UInt32 {
        guard let first = body.first, let last = body.last else { return 0 }
        return UInt32(truncatingIfNeeded: body.count) | UInt32(first) << 8 | UInt32(body[body.count / 2]) << 16 | UInt32(last) << 24
    }

    /// A key's bytes between its quotes, with what says how to compare them.
    struct Key {
        var body: UnsafeBufferPointer<UInt8>
        var escaped: Bool
        var ascii: Bool

        /// The key decoded.
        var text: String { escaped ? decode(body) : String(decoding: body, as: UTF8.self) }
    }

    /// Whether two keys say the same: byte for byte when both are ASCII without escapes,
    /// otherwise as Swift strings (canonically equivalent spellings are the same key, as in
    /// `DocumentNode`).
    static func sameKey(_ a: Key, _ b: Key) -> Bool {
        guard a.ascii && b.ascii && !a.escaped && !b.escaped else { return a.text == b.text }
        // Keys of one object mostly differ in length or in their first byte.
        return a.body.count == b.body.count
            && (a.body.isEmpty || a.body[0] == b.body[0] && memcmp(a.body.baseAddress!, b.body.baseAddress!, a.body.count) == 0)
    }

    private mutating func scanArray() throws(Failure) {
        let array = try open(.array)
        if index < input.count, input[index] == UInt8(ascii: "]") { return close(array) }
        while true {
            skipWhitespace()
            try scanValue()
            if try reachedEnd(of: UInt8(ascii: "]")) { return close(array) }
        }
    }

    private mutating func scanLiteral(_ literal: StaticString, _ kind: ScannedJSON.Kind) throws(Failure) {
        let length = literal.utf8CodeUnitCount
        guard index + length <= input.count,
              literal.withUTF8Buffer({ input[index..<index + length].elementsEqual($0) }) else {
            throw Failure(reason: "unexpected character at byte \(index)")
        }
        let start = count
        literal.withUTF8Buffer { for byte in $0 { emit(byte) } }
        index += length
        tokens.append(Token(kind: kind, start: UInt32(start), end: UInt32(count), after: UInt32(tokens.count + 1)))
    }

    private mutating func scanNumber() throws(Failure) {
        let from = index
        if index < input.count, input[index] == UInt8(ascii: "-") { index += 1 }
        let integerStart = index
        guard skipDigits() > 0 else { throw Failure(reason: "unexpected character at byte \(from)") }
        if input[integerStart] == UInt8(ascii: "0"), index - integerStart > 1 {
            throw Failure(reason: "leading zero in a number at byte \(from)")
        }
        if index < input.count, input[index] == UInt8(ascii: ".") {
            index += 1
            guard skipDigits() > 0 else { throw Failure(reason: "bad number at byte \(from)") }
        }
        if index < input.count, input[index] == UInt8(ascii: "e") || input[index] == UInt8(ascii: "E") {
            index += 1
            if index < input.count, input[index] == UInt8(ascii: "+") || input[index] == UInt8(ascii: "-") { index += 1 }
            guard skipDigits() > 0 else { throw Failure(reason: "bad number at byte \(from)") }
        }
        let start = count
        for byte in input[from..<index] { emit(byte) }
        tokens.append(Token(kind: .number, start: UInt32(start), end: UInt32(count), after: UInt32(tokens.count + 1)))
    }

    private mutating func skipDigits() -> Int {
        let from = index
        while index < input.count, (48...57).contains(input[index]) { index += 1 }
        return index - from
    }

    /// Scans a string, checking its escapes and its UTF-8; the text keeps its escapes.
    private mutating func scanString() throws(Failure) {
        let start = count
        var escaped = false, ascii = true
        emit(UInt8(ascii: "\""))
        index += 1
        while true {
            copyPlainRun()
            guard index < input.count else { throw Failure(reason: "unterminated string") }
            let byte = input[index]
            if byte == UInt8(ascii: "\"") {
                emit(byte)
                index += 1
                tokens.append(Token(kind: .string, escaped: escaped, ascii: ascii, start: UInt32(start), end: UInt32(count),
                                    after: UInt32(tokens.count + 1)))
                return
            }
            let from = index
            if byte == UInt8(ascii: "\\") {
                escaped = true
                try skipEscape()
            } else if byte < 0x20 {
                throw Failure(reason: "control character in a string")
            } else {
                ascii = false
                try skipUTF8Sequence()
            }
            for byte in input[from..<index] { emit(byte) }
        }
    }

    /// Copies the run of bytes that a string keeps as they are (printable ASCII other than `"`
    /// and `\`) from `index`: eight bytes at a time while eight are left, then byte by byte.
    /// A word is stored whole before its stop is looked for; the bytes from the stop on are
    /// written again by what follows (the output is never ahead of the input, so eight bytes
    /// from `count` are always inside it).
    private mutating func copyPlainRun() {
        if let source = input.baseAddress, let target = output.baseAddress {
            while index + 8 <= input.count {
                let word = UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self)
                UnsafeMutableRawPointer(target + count).storeBytes(of: word, as: UInt64.self)
                let stops = Self.stops(in: UInt64(littleEndian: word))
                if stops != 0 {
                    let plain = stops.trailingZeroBitCount / 8
                    index += plain
                    count += plain
                    return
                }
                index += 8
                count += 8
            }
        }
        while index < input.count, Self.isPlain(input[index]) { emit(input[index]); index += 1 }
    }

    /// A byte a string keeps as it is.
    private static func isPlain(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte < 0x80 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
    }

    /// The high bit of each byte of `word` that is not `isPlain` (the first byte in memory is
    /// the lowest of a little-endian word). Borrows only reach bytes above one that is flagged,
    /// so the lowest flagged byte is exact.
    private static func stops(in word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quotes = word ^ (ones &* 0x22), backslashes = word ^ (ones &* 0x5C)
        let flagged = ((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes) | ((word &- ones &* 0x20) & ~word) | word
        return flagged & (ones &* 0x80)
    }

    private mutating func skipEscape() throws(Failure) {
        guard index + 1 < input.count else { throw Failure(reason: "unexpected end of input") }
        index += 1
        let escape = input[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            let code = try hex4()
            if (0xDC00...0xDFFF).contains(code) { throw Failure(reason: "invalid \\u escape") }
            guard (0xD800...0xDBFF).contains(code) else { return }
            guard index + 1 < input.count, input[index] == UInt8(ascii: "\\"), input[index + 1] == UInt8(ascii: "u") else {
                throw Failure(reason: "unpaired surrogate in a string")
            }
            index += 2
            guard (0xDC00...0xDFFF).contains(try hex4()) else { throw Failure(reason: "unpaired surrogate in a string") }
        default:
            throw Failure(reason: "invalid escape in a string")
        }
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard index + 4 <= input.count else { throw Failure(reason: "invalid \\u escape") }
        var value: UInt32 = 0
        for byte in input[index..<index + 4] {
            guard let digit = Self.hexValue(byte) else { throw Failure(reason: "invalid \\u escape") }
            value = value << 4 | digit
        }
        index += 4
        return value
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case 48...57: UInt32(byte - 48)
        case 65...70: UInt32(byte - 55)
        case 97...102: UInt32(byte - 87)
        default: nil
        }
    }

    /// Skips one well-formed UTF-8 sequence of two to four bytes (no overlong forms, no surrogates).
    private mutating func skipUTF8Sequence() throws(Failure) {
        let lead = input[index]
        let continuations: Int, secondRange: ClosedRange<UInt8>
        switch lead {
        case 0xC2...0xDF: (continuations, secondRange) = (1, 0x80...0xBF)
        case 0xE0: (continuations, secondRange) = (2, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (continuations, secondRange) = (2, 0x80...0xBF)
        case 0xED: (continuations, secondRange) = (2, 0x80...0x9F)
        case 0xF0: (continuations, secondRange) = (3, 0x90...0xBF)
        case 0xF1...0xF3: (continuations, secondRange) = (3, 0x80...0xBF)
        case 0xF4: (continuations, secondRange) = (3, 0x80...0x8F)
        default: throw Failure(reason: "invalid UTF-8 in a string")
        }
        guard index + continuations < input.count, secondRange.contains(input[index + 1]),
              input[index + 2..<index + 1 + continuations].allSatisfy({ (0x80...0xBF).contains($0) }) else {
            throw Failure(reason: "invalid UTF-8 in a string")
        }
        index += 1 + continuations
    }

    /// The text of a string body whose escapes were checked when it was scanned.
    static func decode(_ body: some Collection<UInt8>) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count)
        var index = body.startIndex
        func hex4() -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                value = value << 4 | (hexValue(body[index]) ?? 0)
                index = body.index(after: index)
            }
            return value
        }
        while index < body.endIndex {
            let byte = body[index]
            index = body.index(after: index)
            guard byte == UInt8(ascii: "\\") else {
                bytes.append(byte)
                continue
            }
            let escape = body[index]
            index = body.index(after: index)
            switch escape {
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var code = hex4()
                if (0xD800...0xDBFF).contains(code) {
                    index = body.index(index, offsetBy: 2)
                    code = 0x10000 + ((code - 0xD800) << 10) + (hex4() - 0xDC00)
                }
                bytes.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
            default: bytes.append(escape)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension DocumentNode {
    /// The tree of a scanned JSON value.
    public init(_ scanned: ScannedJSON) {
        switch scanned.kind {
        case .object: self.init(.map(scanned.members.map { (key: $0.key, node: DocumentNode($0.value)) }))
        case .array: self.init(.list(scanned.elements.map(DocumentNode.init)))
        case .string: self.init(.string(scanned.scalarText ?? ""))
        case .number: self.init(.number(scanned.scalarText ?? ""))
        case .true: self.init(.bool(true))
        case .false: self.init(.bool(false))
        case .null: self.init(.null)
        }
    }
}
