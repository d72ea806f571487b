/// A Stripe API request body: `application/x-www-form-urlencoded` pairs in the given order,
/// nested keys in brackets (`metadata[tollgate_invoice]`), as Stripe documents them.
public struct StripeForm: Sendable, Equatable {
    public var fields: [(key: String, value: String)]

    public init(_ fields: [(key: String, value: String)] = []) {
        self.fields = fields
    }

    public static func == (lhs: StripeForm, rhs: StripeForm) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.key == $1.key && $0.value == $1.value }
    }

    /// The value of `key`, if present.
    public subscript(key: String) -> String? {
        fields.first { $0.key == key }?.value
    }

    /// The encoded body: every byte outside `A-Z a-z 0-9 - . _ ~ [ ]` percent-encoded, spaces as `+`.
    public var encoded: String {
        fields.map { Self.escape($0.key) + "=" + Self.escape($0.value) }.joined(separator: "&")
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "["), UInt8(ascii: "]"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "):
                out += "+"
            default:
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                out += "%"
                out.unicodeScalars.append(digits[Int(byte >> 4)])
                out.unicodeScalars.append(digits[Int(byte & 0x0F)])
            }
        }
        return out
    }
}
