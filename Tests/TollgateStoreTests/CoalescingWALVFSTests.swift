import Foundation
import Testing
@testable import TollgateStore

/// The VFS that writes a commit's log frames in one write (`CoalescingWALVFS`): whatever
/// `COMMIT` returned for is in the files, as a crash of the process would leave them.
@Suite("SQLite log frames written together")
struct CoalescingWALVFSTests {
    /// Commits of one frame, of several, and one larger than what is gathered at once: after
    /// each, a copy of the database and its log (without the shared memory, as after a crash)
    /// holds every row committed so far.
    @Test
    func everyCommitIsInTheFilesWhenItReturns() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try Self.database(in: directory)
        let writer = try Self.writer(of: path)
        let reader = try SQLiteHandle(path: path, pragmas: [])
        var stored: Int64 = 0
        // Up to 12 rows of 900 bytes, then 400 (about 90 pages: more than the 128 KB gathered at most).
        for rows in Array(1...12) + [400] {
            try Self.insert(rows, into: writer)
            stored += Int64(rows)
            #expect(try Self.count("SELECT COUNT(*) FROM calls", reader) == stored)
            let copy = try Self.crashCopy(of: path, named: "after-\(stored)", in: directory)
            #expect(try Self.count("SELECT COUNT(*) FROM calls", copy) == stored)
            #expect(try Self.integrity(copy) == "ok")
        }
    }

    /// A transaction that outgrows its page cache writes pages to the log before it commits,
    /// and writes some of them again: SQLite then rewrites the checksums of its frames after
    /// the commit's last one, reading each frame before writing its header. The copy holds
    /// the commit whole.
    @Test
    func aCommitWhoseFrameHeadersAreRewrittenIsInTheFilesWhenItReturns() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try Self.database(in: directory)
        let writer = try Self.writer(of: path, pragmas: ["PRAGMA cache_size=2"])
        try writer.execute("BEGIN IMMEDIATE")
        let insert = try writer.statement("INSERT INTO calls (body) VALUES (?)")
        for _ in 0..<300 {
            try insert.bind(1, String(repeating: "x", count: 900))
            try insert.run()
        }
        try writer.execute("UPDATE calls SET body = 'rewritten' WHERE id <= 50")
        try writer.execute("COMMIT")
        let copy = try Self.crashCopy(of: path, named: "rewritten", in: directory)
        #expect(try Self.count("SELECT COUNT(*) FROM calls", copy) == 300)
        #expect(try Self.count("SELECT COUNT(*) FROM calls WHERE body = 'rewritten'", copy) == 50)
        #expect(try Self.integrity(copy) == "ok")
    }

    private static let walPragmas = ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA wal_autocheckpoint=0"]

    private static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("coalescing-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private static func database(in directory: String) throws -> String {
        let path = directory + "/usage.sqlite"
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        return path
    }

    /// A connection through the VFS, in WAL mode, with the table `calls` created.
    private static func writer(of path: String, pragmas: [String] = []) throws -> SQLiteHandle {
        let vfs: String = try #require(CoalescingWALVFS.name)
        let writer = try SQLiteHandle(path: path, vfs: vfs, pragmas: walPragmas + pragmas)
        try writer.execute("CREATE TABLE calls (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        return writer
    }

    private static func insert(_ rows: Int, into handle: SQLiteHandle) throws {
        try handle.execute("BEGIN IMMEDIATE")
        let insert = try handle.statement("INSERT INTO calls (body) VALUES (?)")
        for _ in 0..<rows {
            try insert.bind(1, String(repeating: "x", count: 900))
            try insert.run()
        }
        try handle.execute("COMMIT")
    }

    /// The database and its log as they are in the file system now, opened elsewhere: SQLite
    /// recovers the log's committed frames (checked by their checksums) with no shared memory.
    private static func crashCopy(of path: String, named name: String, in directory: String) throws -> SQLiteHandle {
        let copy = directory + "/\(name).sqlite"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal")
        return try SQLiteHandle(path: copy, pragmas: [])
    }

    private static func count(_ sql: String, _ handle: SQLiteHandle) throws -> Int64? {
        var count: Int64?
        try handle.statement(sql).rows { row in count = row.integer(0) }
        return count
    }

    private static func integrity(_ handle: SQLiteHandle) throws -> String? {
        var result: String?
        try handle.statement("PRAGMA integrity_check").rows { row in result = row.text(0) }
        return result
    }
}
