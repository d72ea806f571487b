import Crypto
import Foundation
import Synchronization

/// A consumer's API token: random, with a recognizable prefix, shown once and stored only as a hash.
public enum APIToken {
    /// Every token starts with this prefix, so that leaked tokens are easy to recognize.
    public static let prefix = "tg_"
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// A new token: the prefix and 32 base-62 characters (about 190 random bits).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = Array(prefix.utf8)
        for _ in 0..<32 {
            bytes.append(alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The hash a token is stored and looked up by.
    public static func hash(_ token: some StringProtocol) -> TokenHash {
        // A token taken out of a header is hashed where it lies, without a copy.
        token.withUTF8Bytes { hash(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// The hash of a token given as its UTF-8 bytes (where a request's head holds it).
    public static func hash(bytes: UnsafeRawBufferPointer) -> TokenHash {
        TokenHash(SHA256.hash(data: bytes))
    }
}

/// The hash of the token a connection presented last. A keep-alive client sends the same token
/// with every call, and hashing it (SHA-256) was the largest single cost of deciding a call: a
/// token equal to the last one, compared in constant time, gets the last hash again. The token
/// stays in the connection's memory for its life, never stored or logged; the credential its
/// hash names is still looked up for every call, so a revoked token stops at once.
public struct RecentTokenHash: Sendable {
    private var token: [UInt8] = []
    private var hash: TokenHash?

    public init() {}

    /// The hash of `bytes`, as `APIToken.hash(bytes:)` gives it.
    public mutating func hash(bytes: UnsafeRawBufferPointer) -> TokenHash {
        if let hash, bytesEqualInConstantTime(token, bytes) { return hash }
        let hashed = APIToken.hash(bytes: bytes)
        token.removeAll(keepingCapacity: true)
        token.append(contentsOf: bytes)
        hash = hashed
        return hashed
    }
}

/// Equal byte strings, in a time that depends only on their lengths: every byte is looked at
/// whatever the first difference.
public func bytesEqualInConstantTime(
    _ a: some RandomAccessCollection<UInt8>, _ b: some RandomAccessCollection<UInt8>
) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}

/// The SHA-256 of a token, kept as four words so that a million of them stay small in memory.
public struct TokenHash: Hashable, Sendable, CustomStringConvertible {
    public let words: (UInt64, UInt64, UInt64, UInt64)

    init(_ digest: SHA256.Digest) {
        words = digest.withUnsafeBytes { raw in
            func word(_ index: Int) -> UInt64 {
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
            }
            return (word(0), word(1), word(2), word(3))
        }
    }

    /// A hash from its four words, most significant first (as `description` prints them).
    public init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    /// Parses the 64 hex digits of `description`.
    public init?(hex: String) {
        // Only ASCII hex digits: `UInt64(_:radix:)` alone would accept a sign, and a 64-byte text of
        // fewer than 64 characters would make the character offsets below run past its end.
        guard hex.utf8.count == 64, hex.utf8.allSatisfy(\.isASCIIHexDigit) else { return nil }
        var words: [UInt64] = []
        var index = hex.startIndex
        for _ in 0..<4 {
            let end = hex.index(index, offsetBy: 16)
            guard let word = UInt64(hex[index..<end], radix: 16) else { return nil }
            words.append(word)
            index = end
        }
        self.words = (words[0], words[1], words[2], words[3])
    }

    /// 64 lower-case hex digits.
    public var description: String {
        [words.0, words.1, words.2, words.3].map { String($0, radix: 16).leftPadded(to: 16) }.joined()
    }

    /// Compares in constant time: every word is looked at whatever the first difference.
    public static func == (lhs: TokenHash, rhs: TokenHash) -> Bool {
        let difference = (lhs.words.0 ^ rhs.words.0) | (lhs.words.1 ^ rhs.words.1)
            | (lhs.words.2 ^ rhs.words.2) | (lhs.words.3 ^ rhs.words.3)
        return difference == 0
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

extension UInt8 {
    var isASCIIHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}

/// Random identifiers with a type prefix, e.g. `sub_4k9...`.
public enum RandomID {
    private static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)

    /// `prefix_` and 20 random base-36 characters (about 103 bits), from two draws of the
    /// system's generator (this runs for every proxied call).
    public static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        var words = (generator.next() as UInt64, generator.next() as UInt64)
        var bytes = Array(prefix.utf8)
        bytes.reserveCapacity(bytes.count + 21)
        bytes.append(UInt8(ascii: "_"))
        for index in 0..<20 {
            // Ten characters from each word: 36^10 < 2^52, so each stays uniform enough for ids.
            if index < 10 {
                bytes.append(alphabet[Int(words.0 % 36)])
                words.0 /= 36
            } else {
                bytes.append(alphabet[Int(words.1 % 36)])
                words.1 /= 36
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `prefix_`, the time in microseconds (11 base-36 characters, so ids sort by time) and 9
    /// pseudo-random characters (about 46 bits). Usage events use these: the ledger's index then
    /// grows at its end instead of at random places.
    ///
    /// The 9 characters are SplitMix64's output for a counter seeded once from the system's
    /// generator: two ids of the same microsecond share them with a chance of about 2^-46, as
    /// with random draws, but no id costs a system call. They are not secrets.
    public static func timeOrdered(_ prefix: String, at date: Date = Date()) -> String {
        var mixed = sequence.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        var random = mixed ^ (mixed >> 31)
        var time = UInt64(max(0, date.timeIntervalSince1970 * 1_000_000))
        let prefixLength = prefix.utf8.count
        return String(unsafeUninitializedCapacity: prefixLength + 21) { bytes in
            var end = bytes.initialize(fromContentsOf: prefix.utf8)
            bytes[end] = UInt8(ascii: "_")
            end += 1
            for index in stride(from: end + 10, through: end, by: -1) {
                bytes[index] = alphabet[Int(time % 36)]
                time /= 36
            }
            end += 11
            for index in end..<(end + 9) {
                bytes[index] = alphabet[Int(random % 36)]
                random /= 36
            }
            return end + 9
        }
    }

    /// SplitMix64's state: a random start, advanced by a constant for every time-ordered id.
    private static let sequence = Atomic<UInt64>({
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }())
}
