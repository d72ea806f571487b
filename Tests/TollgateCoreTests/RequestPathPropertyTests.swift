import Foundation
import PropertyBased
import Testing
import TollgateCore

/// What `RequestPath` promises (its doc comments, DESIGN §3.3), over random request targets
/// built from a hostile alphabet.
@Suite("RequestPath normalization: properties")
struct RequestPathPropertyTests {
    /// Pieces of request targets: separators, dots plain and escaped, escaped slashes, NUL,
    /// parameters, query and fragment marks, letters, unreserved escapes, multi-byte UTF-8 (a
    /// combining mark among it), and `%` with bad or missing hex.
    static let alphabet = [
        "/", "/", "/", ".", "..", "%2e", "%2E", "%2F", "%2f", "%00", ";", "?", "#", "a", "b", "Z", "~", "-",
        "%41", "%7e", "%7E", "%5F", "%20", "%25", "%c3%a9", "é", "\u{301}", "日", "🙂", "%", "%g", "%4", "%zz", "%-1",
    ]

    static var targets: Generator<String, some SendableSequenceType> {
        Gen.int(in: 0...(alphabet.count - 1)).array(of: 0...24).map { picks in
            "/" + picks.map { alphabet[$0] }.joined()
        }
    }

    static func contains(_ text: String, _ piece: String) -> Bool {
        let bytes = Array(text.utf8), needle = Array(piece.utf8)
        guard bytes.count >= needle.count else { return false }
        return (0...(bytes.count - needle.count)).contains { bytes[$0..<$0 + needle.count].elementsEqual(needle) }
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// The escapes (`%XY`) of a text, as the two hex digits' text.
    static func escapes(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var found: [String] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count {
                found.append(String(decoding: bytes[index + 1...index + 2], as: UTF8.self))
                index += 3
            } else {
                index += 1
            }
        }
        return found
    }

    /// Slash-separated segments, cut at the byte `/` only.
    static func segments(_ text: some StringProtocol) -> [String] {
        text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func aNormalizedPathIsCanonical() async {
        await propertyCheck(count: 3000, input: Self.targets) { target in
            let path: String
            let query: String?
            do {
                (path, query) = try RequestPath.split(target: target)
            } catch {
                return  // A refusal is an answer too (escapes the root, malformed escape); it must not crash.
            }
            #expect(path.utf8.first == UInt8(ascii: "/"), "\(target) -> \(path)")
            for piece in ["//", "/./", "/../", "?"] {
                #expect(!Self.contains(path, piece), "\(target) -> \(path) contains \(piece)")
            }
            #expect(!path.utf8.reversed().starts(with: "/.".utf8.reversed()), "\(target) -> \(path)")
            #expect(!path.utf8.reversed().starts(with: "/..".utf8.reversed()), "\(target) -> \(path)")
            // A fixed point: normalizing again changes nothing.
            #expect((try? RequestPath.normalize(path[...])) == path, "\(target) -> \(path)")
            // The query is what followed the first `?`, untouched.
            let mark = target.utf8.firstIndex(of: UInt8(ascii: "?"))
            #expect(query == mark.map { String(target[target.utf8.index(after: $0)...]) }, "\(target)")
            // Escapes left are of reserved or other bytes, with upper-case hex digits.
            for escape in Self.escapes(path) {
                let value = UInt8(escape, radix: 16)
                #expect(value != nil && escape == escape.uppercased(), "\(target) -> \(path): %\(escape)")
                if let value { #expect(!Self.isUnreserved(value), "\(target) -> \(path): %\(escape) survived") }
            }
        }
    }

    @Test func anEncodedSlashStaysEncodedAndNeverSeparates() async {
        await propertyCheck(count: 3000, input: Self.targets) { target in
            let raw = target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...]
            guard let path = try? RequestPath.split(target: target).path else { return }
            // Each segment of the result is one segment of the input (cut at literal slashes), on
            // its own normalized: no segment was cut at a `%2F`, none glued to another.
            let inputSegments = Set(Self.segments(raw).compactMap { try? RequestPath.normalize("/" + $0) }.map { Array($0.utf8.dropFirst()) })
            for segment in Self.segments(path) {
                #expect(inputSegments.contains(Array(segment.utf8)), "\(target) -> \(path): \(segment)")
            }
            // Without dot segments nothing is removed: every %2F is still there.
            let dotted = Self.segments(raw).contains { segment in
                let plain = segment.replacingOccurrences(of: "%2e", with: ".").replacingOccurrences(of: "%2E", with: ".")
                return plain.utf8.elementsEqual(".".utf8) || plain.utf8.elementsEqual("..".utf8)
            }
            let encodedSlashes = { (text: String) in Self.escapes(text).filter { $0.uppercased() == "2F" }.count }
            if !dotted { #expect(encodedSlashes(path) == encodedSlashes(String(raw)), "\(target) -> \(path)") }
        }
    }

    @Test func normalizingIsAFixedPointOnAnyAbsolutePath() async {
        await propertyCheck(count: 3000, input: Self.targets) { target in
            guard let once = try? RequestPath.normalize(target[...]) else { return }
            #expect((try? RequestPath.normalize(once[...])) == once, "\(target) -> \(once)")
        }
    }

    /// A path already in normal form is returned as it came; `/.` in front makes any path go
    /// the long way (its segments cut, resolved and joined again): both ways agree.
    @Test func aLeadingDotSegmentChangesNothing() async {
        await propertyCheck(count: 3000, input: Self.targets) { target in
            let direct = Result { () throws(RequestPath.Failure) in try RequestPath.normalize(target[...]) }
            let rebuilt = Result { () throws(RequestPath.Failure) in try RequestPath.normalize(("/." + target)[...]) }
            #expect(direct == rebuilt, "\(target)")
        }
    }
}
