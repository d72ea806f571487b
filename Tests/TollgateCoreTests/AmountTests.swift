import Foundation
import Testing
import TollgateCore

@Suite("Amount")
struct AmountTests {
    @Test("parses decimal strings and keeps their text", arguments: [
        ("29.00", "29"),
        ("0", "0"),
        ("0.002", "0.002"),
        ("1000000", "1000000"),
        ("-1.5", "-1.5"),
        ("007", "7"),
        ("0.10", "0.1"),
        ("1234567890123456789012345678901234", "1234567890123456789012345678901234"),
    ])
    func parses(text: String, value: String) throws {
        let amount = try #require(Amount(text))
        #expect(amount.description == text)
        #expect(amount.value == Decimal(string: value, locale: Locale(identifier: "en_US_POSIX")))
    }

    @Test("refuses anything but -?digits(.digits)", arguments: [
        "1e3", "1E3", "", "1.", ".5", " 1", "1 ", "+1", "1,5", "1.2.3", "-", "--1", "-.5", "abc", "0x10", "NaN",
        "Infinity", "1_000", "١٢", "１", "12345678901234567890123456789012345", "1.-2", "\u{0}1",
    ])
    func refuses(text: String) {
        #expect(Amount(text) == nil)
    }

    @Test("compares by value, whatever the text", arguments: [
        ("1.0", "1"), ("29.00", "29"), ("-0", "0"), ("0.10", "0.1"), ("007", "7.000"),
    ])
    func equalByValue(lhs: String, rhs: String) throws {
        let left = try #require(Amount(lhs))
        let right = try #require(Amount(rhs))
        #expect(left == right)
        #expect(Set([left, right]).count == 1)
        #expect(!(left < right) && !(right < left))
    }

    @Test("orders by numeric value, not by text", arguments: [
        ("0.002", "0.01"), ("-1", "0"), ("9", "10"), ("1.999", "2"), ("-10", "-9.5"),
    ])
    func ordering(smaller: String, larger: String) throws {
        let small = try #require(Amount(smaller))
        let large = try #require(Amount(larger))
        #expect(small < large)
        #expect(!(large < small))
        #expect(small != large)
    }

    @Test("adds exactly, unlike binary floating point")
    func addition() throws {
        let sum = try #require(Amount("0.1")) + #require(Amount("0.2"))
        #expect(sum == Amount("0.3"))
        #expect(sum.description == "0.3")
        #expect(Amount(2) + Amount(3) == Amount(5))
        #expect(Amount.zero + Amount(7) == Amount("7.00"))
    }

    @Test("negative amounts are known as such", arguments: [("-1.5", true), ("0", false), ("-0", false), ("3", false)])
    func negative(text: String, isNegative: Bool) throws {
        #expect(try #require(Amount(text)).isNegative == isNegative)
    }

    @Test("encodes as its decimal string and decodes only decimal strings")
    func codable() throws {
        let amount = try #require(Amount("29.00"))
        let data = try JSONEncoder().encode([amount])
        #expect(String(decoding: data, as: UTF8.self) == #"["29.00"]"#)
        let decoded = try JSONDecoder().decode([Amount].self, from: data)
        #expect(decoded == [amount])
        #expect(decoded.first?.description == "29.00")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Amount].self, from: Data(#"["1e3"]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Amount].self, from: Data("[29]".utf8)) }
    }
}

@Suite("Currency")
struct CurrencyTests {
    @Test("knows the digits of the minor unit", arguments: [
        ("EUR", 2 as Int?), ("USD", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3),
        ("eur", nil), ("XXX", nil), ("", nil), ("EURO", nil),
    ])
    func minorUnits(code: String, digits: Int?) {
        #expect(Currency.minorUnits(code) == digits)
    }
}
