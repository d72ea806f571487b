import Foundation
import Testing
import TollgateCore

@Suite("APIToken and TokenHash")
struct TokenTests {
    static let base62 = Set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    @Test("a token is tg_ and 32 base-62 characters")
    func shape() {
        for _ in 0..<100 {
            let token = APIToken.generate()
            #expect(token.hasPrefix("tg_"))
            #expect(token.count == 35)
            #expect(token.utf8.count == 35)
            #expect(token.dropFirst(3).allSatisfy { Self.base62.contains($0) })
        }
    }

    @Test("tokens are unique and their hashes too")
    func uniqueness() {
        let tokens = (0..<1000).map { _ in APIToken.generate() }
        #expect(Set(tokens).count == 1000)
        #expect(Set(tokens.map { APIToken.hash($0) }).count == 1000)
        #expect(Set(tokens.map { APIToken.hash($0).description }).count == 1000)
    }

    @Test("random tokens use the whole alphabet")
    func alphabetCoverage() {
        var seen = Set<Character>()
        for _ in 0..<200 { seen.formUnion(APIToken.generate().dropFirst(3)) }
        #expect(seen == Self.base62)
    }

    @Test("the hash is SHA-256 of the token's UTF-8", arguments: [
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("The quick brown fox jumps over the lazy dog", "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"),
    ])
    func knownDigests(token: String, hex: String) {
        #expect(APIToken.hash(token).description == hex)
        #expect(APIToken.hash(token) == TokenHash(hex: hex))
    }

    @Test("the hash of a token is a known SHA-256, however the text is held")
    func stable() throws {
        // Computed outside Tollgate: printf '%s' TOKEN | sha256sum
        let token = "tg_4kP9xQ2mZ7vR1sT8uW3yA6bC5dE0fG2h"
        let expected = try #require(TokenHash(hex: "ab970db6b7a2931281aeb5ed9f074f259e8f5bf4533a8bacc76c7baf80d7a821"))
        #expect(APIToken.hash(token) == expected)
        // A substring of a larger text, and a bridged (non-native) string.
        #expect(APIToken.hash(("x" + token + "y").dropFirst().dropLast()) == expected)
        #expect(APIToken.hash(String(NSString(string: token))) == expected)
        // Equal hashes made in different ways hash alike, so a dictionary finds one by the other.
        #expect(expected.hashValue == APIToken.hash(token).hashValue)
        var byHash: [TokenHash: String] = [:]
        byHash[expected] = "sub_1"
        #expect(byHash[APIToken.hash(token)] == "sub_1")
        #expect(byHash[APIToken.hash(token + "x")] == nil)
    }

    @Test("different tokens, even one character apart, have different hashes")
    func different() {
        let token = APIToken.generate()
        let last = token.last!
        let other = String(token.dropLast()) + (last == "a" ? "b" : "a")
        #expect(APIToken.hash(token) != APIToken.hash(other))
        #expect(APIToken.hash(token) != APIToken.hash(APIToken.generate()))
    }

    @Test("a connection's last token gets its own hash again; any other token, however close, its own")
    func recentTokenHash() {
        func hash(_ token: String, _ recent: inout RecentTokenHash) -> TokenHash {
            Array(token.utf8).withUnsafeBytes { recent.hash(bytes: $0) }
        }
        let token = APIToken.generate()
        var recent = RecentTokenHash()
        // The same token, the last one again, then tokens that differ in their last byte, their
        // length (a prefix and an extension), and an unrelated one: each is its own SHA-256.
        for presented in [token, token, String(token.dropLast()) + "!", token, String(token.dropLast()), token + "x",
                          APIToken.generate(), "", token] {
            #expect(hash(presented, &recent) == APIToken.hash(presented), "\(presented.count) bytes")
        }
    }

    @Test("byte strings compare equal only when every byte and the length agree")
    func constantTimeComparison() {
        let bytes: [UInt8] = Array("tg_abc".utf8)
        #expect(bytesEqualInConstantTime(bytes, Array("tg_abc".utf8)))
        #expect(bytesEqualInConstantTime([UInt8](), [UInt8]()))
        #expect(!bytesEqualInConstantTime(bytes, Array("tg_abd".utf8)))
        #expect(!bytesEqualInConstantTime(bytes, Array("ug_abc".utf8)))
        #expect(!bytesEqualInConstantTime(bytes, Array("tg_ab".utf8)))
        #expect(!bytesEqualInConstantTime(bytes, Array("tg_abcd".utf8)))
        bytes.withUnsafeBytes { raw in
            #expect(bytesEqualInConstantTime(bytes, raw))
            #expect(!bytesEqualInConstantTime(Array("tg_abC".utf8), raw))
        }
    }

    @Test("the hex form is 64 lower-case digits and parses back")
    func hexRoundTrip() throws {
        for _ in 0..<200 {
            let hash = APIToken.hash(APIToken.generate())
            let hex = hash.description
            #expect(hex.count == 64)
            #expect(hex.allSatisfy { "0123456789abcdef".contains($0) })
            let parsed = try #require(TokenHash(hex: hex))
            #expect(parsed == hash)
            #expect(parsed.description == hex)
            #expect(TokenHash(hex: hex.uppercased()) == hash)
        }
    }

    @Test("leading zero words keep their zeros in hex")
    func leadingZeros() throws {
        let hex = String(repeating: "0", count: 15) + "1" + String(repeating: "0", count: 32) + "000000000000000f"
        let hash = try #require(TokenHash(hex: hex))
        #expect(hash.description == hex)
        #expect(hash.words.0 == 1 && hash.words.1 == 0 && hash.words.2 == 0 && hash.words.3 == 15)
    }

    @Test("malformed hex is refused", arguments: [
        "",
        String(repeating: "a", count: 63),
        String(repeating: "a", count: 65),
        String(repeating: "g", count: 64),
        String(repeating: "a", count: 63) + "z",
        " " + String(repeating: "a", count: 63),
        "+" + String(repeating: "a", count: 63),
        "-" + String(repeating: "0", count: 63),
        String(repeating: "0", count: 16) + "+" + String(repeating: "0", count: 47),
        // 64 bytes but fewer characters: must be refused, not read past its end.
        String(repeating: "0", count: 48) + String(repeating: "é", count: 8),
        String(repeating: "0", count: 48) + String(repeating: "\r\n", count: 8),
        String(repeating: "é", count: 32),
    ])
    func malformedHex(hex: String) {
        #expect(TokenHash(hex: hex) == nil)
    }
}

@Suite("RandomID")
struct RandomIDTests {
    @Test("prefix, underscore and 20 base-36 characters", arguments: ["sub", "cus", "inv"])
    func shape(prefix: String) {
        let id = RandomID.make(prefix)
        #expect(id.hasPrefix(prefix + "_"))
        #expect(id.count == prefix.count + 21)
        #expect(id.dropFirst(prefix.count + 1).allSatisfy { "0123456789abcdefghijklmnopqrstuvwxyz".contains($0) })
    }

    @Test("ids are unique")
    func unique() {
        #expect(Set((0..<1000).map { _ in RandomID.make("sub") }).count == 1000)
    }
}

@Suite("Time-ordered ids")
struct TimeOrderedIDTests {
    @Test func idsSortByTimeAndDiffer() {
        let earlier = RandomID.timeOrdered("req", at: Date(timeIntervalSince1970: 1_700_000_000))
        let later = RandomID.timeOrdered("req", at: Date(timeIntervalSince1970: 1_700_000_000.000_001))
        let muchLater = RandomID.timeOrdered("req", at: Date(timeIntervalSince1970: 2_000_000_000))
        #expect(earlier.hasPrefix("req_"))
        #expect(earlier.count == 4 + 20)
        #expect(earlier.dropLast(9) < later.dropLast(9))
        #expect(later < muchLater)
        let now = Date()
        #expect(Set((0..<1000).map { _ in RandomID.timeOrdered("e", at: now) }).count == 1000)
    }
}
