import NIOCore
import Testing
import TollgateCore
@testable import TollgateStore

/// PostgreSQL's `COPY` text format as `CopyText` writes it, and which invoice a late event
/// belongs to (`InvoicedPeriods`): in memory, without a database.
@Suite("COPY rows and invoiced periods")
struct CopyTextTests {
    @Test func valuesAreEscapedSeparatedAndNullsSpelledOut() {
        var rows = CopyText()
        rows.appendRow(maximumBytes: 200) { row in
            row.append("a\tb\nc\rd\\e")
            row.append(nil as String?)
            row.append("\\N")
            row.append(Int64.min)
            row.append(0 as Int64?)
            row.append(-7 as Int64?)
            row.endRow()
        }
        rows.appendRow(maximumBytes: 200) { row in
            row.append(Int64.max)
            row.append(1_000 as Int64?)
            row.append("")
            row.endRow()
        }
        #expect(String(buffer: rows.bytes) == "a\\tb\\nc\\rd\\\\e\t\\N\t\\\\N\t-9223372036854775808\t0\t-7\n9223372036854775807\t1000\t\n")
    }

    @Test func anEventsJSONGoesInAsTheScannerKeptIt() throws {
        let json = try ScannedJSON.scan(#"{ "a" : "x\ty\\" , "b":[1, 2] }"#.utf8)
        var bound = CopyRowBound()
        bound.json(json)
        bound.json(nil)
        var rows = CopyText()
        rows.appendRow(maximumBytes: bound.bytes) { row in
            row.json(json)
            row.json(nil)
            row.endRow()
        }
        #expect(String(buffer: rows.bytes) == #"{"a":"x\\ty\\\\","b":[1,2]}"# + "\t\\N\n")
    }

    @Test func aRowOfEscapesOnlyFitsItsBound() {
        let text = String(repeating: "\\\t\n\r", count: 50)
        var bound = CopyRowBound()
        bound.text(text)
        bound.text(nil)
        bound.integer(Int64.min)
        var rows = CopyText()
        rows.appendRow(maximumBytes: bound.bytes) { row in
            row.text(text)
            row.text(nil)
            row.integer(Int64.min)
            row.endRow()
        }
        #expect(rows.bytes.readableBytes == 400 + 1 + 2 + 1 + 20 + 1)
    }

    @Test func aLateEventBelongsToTheEarliestEndingInvoiceThatHoldsIt() {
        var invoiced = InvoicedPeriods()
        invoiced.add(invoice: "first", subscription: "s1", start: 100, end: 100)
        invoiced.add(invoice: "a", subscription: "s1", start: 100, end: 200)
        invoiced.add(invoice: "overlap", subscription: "s1", start: 150, end: 300)
        invoiced.loaded("s2")
        func event(_ subscription: String?, at micros: Int64) -> UsageEvent {
            UsageEvent(
                id: "e\(micros)", source: .gateway, occurredAt: Micros.date(micros), timeFromSender: true, subscription: subscription,
                customer: nil, product: nil, endpoint: nil, method: nil, path: nil, status: nil, latencyMicroseconds: nil,
                requestBytes: nil, responseBytes: nil, billable: true)
        }
        #expect(invoiced.knows("s1") && invoiced.knows("s2") && !invoiced.knows("s3"))
        let events = [event("s1", at: 99), event("s1", at: 100), event("s1", at: 160), event("s1", at: 250), event("s1", at: 300),
                      event("s2", at: 160), event(nil, at: 160), event("s3", at: 160)]
        #expect(invoiced.lateInvoices(events) == [1: "a", 2: "a", 3: "overlap"])
        #expect(InvoicedPeriods().lateInvoices(events).isEmpty)
    }
}
