import Testing
import TollgateCore

@Suite("distinctValues")
struct DistinctValuesTests {
    @Test func everyValueOnceWhateverTheRunsAndNilsLeftOut() {
        let values: [String?] = ["a", "a", nil, "b", "a", "a", "c", nil, "b", "b"]
        let distinct: Set<String> = values.distinctValues { $0 }
        #expect(distinct == ["a", "b", "c"])
        let none: Set<String> = [String?]().distinctValues { $0 }
        #expect(none.isEmpty)
        let halves: Set<Int> = [1, 2, 3, 4].distinctValues { $0 % 2 == 0 ? $0 / 2 : nil }
        #expect(halves == [1, 2])
    }
}
