import Testing
@testable import Storage

/// Usage rows go to the database in statements of a few fixed sizes, so a store session prepares a handful
/// of statement texts rather than one per row count.
@Suite struct UsageStatementRowsTests {
    @Test func everyRowGoesInExactlyOneStatementOfOneOfSevenSizes() {
        var sizes = Set<Int>()
        for n in 0...500 {
            let rows = SQLStore.statementRows(n)
            #expect(rows.reduce(0, +) == n, "n = \(n): \(rows)")
            #expect(rows == rows.sorted(by: >), "n = \(n): the 64-row statements first")
            sizes.formUnion(rows)
        }
        #expect(sizes == [1, 2, 4, 8, 16, 32, 64])
        #expect(SQLStore.statementRows(4000) == Array(repeating: 64, count: 62) + [32])
    }
}
