import Crypto
import Foundation

/// The types of events Tollgate sends to a vendor's webhook.
public enum WebhookEventType: String, Sendable, CaseIterable {
    case subscriptionCreated = "subscription.created"
    case subscriptionUpdated = "subscription.updated"
    case subscriptionTerminated = "subscription.terminated"
    case invoiceFinalized = "invoice.finalized"
    case quotaExhausted = "quota.exhausted"
}

/// `Tollgate-Signature: t=UNIX,v1=HEX(HMAC-SHA256(secret, "t.body"))`.
public enum WebhookSignature {
    public static let header = "Tollgate-Signature"

    public static func sign(body: some DataProtocol, secret: String, timestamp: Int) -> String {
        var message = Data("\(timestamp).".utf8)
        message.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(timestamp),v1=" + Hex.encode(mac)
    }

    /// Checks a signature header against a body, in constant time; `tolerance` bounds the age.
    public static func verify(header: String, body: some DataProtocol, secret: String, now: Date, tolerance: TimeInterval = 300) -> Bool {
        var timestamp: Int?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int(pair[1]) }
            if pair[0] == "v1" { signatures.append(String(pair[1])) }
        }
        guard let timestamp, abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else { return false }
        let expected = Array(sign(body: body, secret: secret, timestamp: timestamp).utf8)
        return signatures.contains { candidate in
            let given = Array("t=\(timestamp),v1=\(candidate)".utf8)
            guard given.count == expected.count else { return false }
            return zip(given, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }
}

/// When a failed delivery is tried again: exponential back-off from `baseDelay`, doubling, capped
/// at `maxDelay`; a `Retry-After` of the receiver wins when it asks for longer; after `giveUpAfter`
/// since the first attempt the delivery is given up.
public struct WebhookRetrySchedule: Sendable, Equatable {
    public var baseDelay: TimeInterval
    public var maxDelay: TimeInterval
    public var giveUpAfter: TimeInterval

    public init(baseDelay: TimeInterval = 1, maxDelay: TimeInterval = 3600, giveUpAfter: TimeInterval = 3 * 86_400) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.giveUpAfter = giveUpAfter
    }

    /// The delay after the `attempts`-th failed attempt (1 for the first failure).
    public func delay(afterAttempts attempts: Int, retryAfter: TimeInterval? = nil) -> TimeInterval {
        let exponent = min(max(attempts - 1, 0), 40)
        let backoff = min(maxDelay, baseDelay * pow(2, Double(exponent)))
        guard let retryAfter, retryAfter > backoff else { return backoff }
        return min(retryAfter, giveUpAfter)
    }

    /// The next attempt after a failure at `now`, or nil when the delivery is given up.
    public func nextAttempt(afterAttempts attempts: Int, firstAttempt: Date, now: Date, retryAfter: TimeInterval? = nil) -> Date? {
        let next = now.addingTimeInterval(delay(afterAttempts: attempts, retryAfter: retryAfter))
        return next.timeIntervalSince(firstAttempt) > giveUpAfter ? nil : next
    }
}

/// Lower-case hexadecimal text of bytes.
public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
