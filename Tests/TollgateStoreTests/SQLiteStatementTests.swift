import Foundation
import Testing
@testable import TollgateStore

/// The prepared statements the usage writer keeps across commits (`SQLiteHandle`).
@Suite("SQLite statements")
struct SQLiteStatementTests {
    /// A statement whose plan depends on a parameter is reused as prepared: SQLite does not
    /// parse and plan it again at every use (as it did when its bindings were cleared).
    @Test
    func aQueryByParameterIsNotPreparedAgainOnEachUse() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("statements-\(UUID().uuidString).sqlite").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let handle = try SQLiteHandle(path: path, pragmas: [])
        try handle.execute("CREATE TABLE periods (id TEXT PRIMARY KEY, owner TEXT NOT NULL, ends BIGINT NOT NULL, UNIQUE (owner, ends))")
        let insert = try handle.statement("INSERT INTO periods (id, owner, ends) VALUES (?, ?, ?)")
        for (id, owner, ends) in [("a", "x", 2), ("b", "x", 1), ("c", "y", 5)] as [(String, String, Int64)] {
            try insert.bind(1, id)
            try insert.bind(2, owner)
            try insert.bind(3, ends)
            try insert.run()
        }
        let query = try handle.statement("SELECT id FROM periods WHERE owner = ? ORDER BY ends")
        for (owner, expected) in [("x", ["b", "a"]), ("y", ["c"]), ("z", []), ("x", ["b", "a"])] {
            var found: [String] = []
            try query.bind(1, owner)
            try query.rows { row in found.append(row.text(0) ?? "") }
            #expect(found == expected)
        }
        #expect(try handle.statement("SELECT id FROM periods WHERE owner = ? ORDER BY ends").reprepareCount == 0)
    }
}
