// The SQLite library SQLiteNIO links (its symbols prefixed `sqlite_nio_`).
import VaporCSQLite

/// SQLite's default VFS with one change for the write-ahead log: the frames a connection writes
/// for a commit reach the kernel in one `pwrite`, not two for each frame (its 24-byte header,
/// then its page), as SQLite writes them.
///
/// Only files SQLite opens as a write-ahead log are wrapped; the database file, its shared
/// memory and its locks are the default VFS's own, so connections of either VFS share them.
/// A log file's writes are gathered while they follow one another and handed on before
/// anything could need them: before the log is read, synced, truncated, sized or closed, when
/// a write does not continue the gathered ones, and right after the page of a commit's last
/// frame (the one whose header carries the database size), so that `COMMIT` returns only once
/// the whole commit is in the file (durable against a crash of the process, as without this
/// VFS) and any failure to write it fails the commit. A frame header SQLite rewrites after
/// reading its frame (new checksums, when a transaction wrote a page twice) goes straight
/// through, as it may be a commit's last write.
enum CoalescingWALVFS {
    /// The VFS's name for `sqlite3_open_v2`, once registered; nil if SQLite has no default VFS.
    static let name: String? = register()

    /// The default VFS this one hands everything to.
    private nonisolated(unsafe) static let wrapped = sqlite_nio_sqlite3_vfs_find(nil)
    /// The methods of a wrapped log file, where SQLite can point to them for good.
    private nonisolated(unsafe) static let logMethods: UnsafePointer<sqlite3_io_methods> = {
        let methods = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        methods.initialize(to: makeLogMethods())
        return UnsafePointer(methods)
    }()

    /// Bytes before the wrapped VFS's own file in a log file's memory: SQLite's `sqlite3_file`
    /// (its methods), then the log's `GatheredWrites`.
    private static let headerSize = 32
    private static let gatheredOffset = 8

    private static func register() -> String? {
        guard let base = wrapped else { return nil }
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: base.pointee)
        let name = "tollgate-coalescing-wal"
        let utf8 = name.utf8CString
        let storedName = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        utf8.withUnsafeBufferPointer { storedName.initialize(from: $0.baseAddress!, count: $0.count) }
        vfs.pointee.zName = UnsafePointer(storedName)
        vfs.pointee.pNext = nil
        vfs.pointee.szOsFile = Int32(headerSize) + base.pointee.szOsFile
        vfs.pointee.xOpen = { _, path, file, flags, outFlags in
            guard let file, let base = CoalescingWALVFS.wrapped else { return SQLITE_MISUSE }
            guard flags & SQLITE_OPEN_WAL != 0 else {
                return base.pointee.xOpen!(base, path, file, flags, outFlags)
            }
            let inner = CoalescingWALVFS.inner(file)
            // SQLite's memory for a file comes uninitialised: a failed open is told by this.
            inner.pointee.pMethods = nil
            let opened = base.pointee.xOpen!(base, path, inner, flags, outFlags)
            guard opened == SQLITE_OK else {
                if let methods = inner.pointee.pMethods { _ = methods.pointee.xClose!(inner) }
                file.pointee.pMethods = nil
                return opened
            }
            UnsafeMutableRawPointer(file).storeBytes(
                of: Unmanaged.passRetained(GatheredWrites()).toOpaque(), toByteOffset: CoalescingWALVFS.gatheredOffset, as: UnsafeMutableRawPointer.self)
            file.pointee.pMethods = CoalescingWALVFS.logMethods
            return SQLITE_OK
        }
        guard sqlite_nio_sqlite3_vfs_register(vfs, 0) == SQLITE_OK else { return nil }
        return name
    }

    /// The wrapped VFS's own file inside a log file's memory.
    private static func inner(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<sqlite3_file> {
        UnsafeMutableRawPointer(file).advanced(by: headerSize).assumingMemoryBound(to: sqlite3_file.self)
    }

    private static func gathered(_ file: UnsafeMutablePointer<sqlite3_file>) -> GatheredWrites {
        let pointer = UnsafeMutableRawPointer(file).load(fromByteOffset: CoalescingWALVFS.gatheredOffset, as: UnsafeMutableRawPointer.self)
        return Unmanaged<GatheredWrites>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// The gathered writes handed on, then `body` with the wrapped file: what every method
    /// but `xWrite` does.
    private static func afterFlushing(_ file: UnsafeMutablePointer<sqlite3_file>?, _ body: (UnsafeMutablePointer<sqlite3_file>) -> Int32) -> Int32 {
        guard let file else { return SQLITE_MISUSE }
        let inner = inner(file)
        let flushed = gathered(file).flush(to: inner)
        guard flushed == SQLITE_OK else { return flushed }
        return body(inner)
    }

    private static func makeLogMethods() -> sqlite3_io_methods {
        var methods = sqlite3_io_methods()
        methods.iVersion = 3
        methods.xClose = { file in
            guard let file else { return SQLITE_MISUSE }
            let inner = CoalescingWALVFS.inner(file)
            let writes = CoalescingWALVFS.gathered(file)
            let flushed = writes.flush(to: inner)
            let closed = inner.pointee.pMethods.pointee.xClose!(inner)
            let pointer = UnsafeMutableRawPointer(file).load(fromByteOffset: CoalescingWALVFS.gatheredOffset, as: UnsafeMutableRawPointer.self)
            Unmanaged<GatheredWrites>.fromOpaque(pointer).release()
            file.pointee.pMethods = nil
            return flushed == SQLITE_OK ? closed : flushed
        }
        methods.xRead = { file, bytes, amount, offset in
            CoalescingWALVFS.afterFlushing(file) { inner in
                if let file { CoalescingWALVFS.gathered(file).lastReadOffset = offset }
                return inner.pointee.pMethods.pointee.xRead!(inner, bytes, amount, offset)
            }
        }
        methods.xWrite = { file, bytes, amount, offset in
            guard let file, let bytes else { return SQLITE_MISUSE }
            return CoalescingWALVFS.gathered(file).write(bytes, count: Int(amount), at: offset, to: CoalescingWALVFS.inner(file))
        }
        methods.xTruncate = { file, size in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xTruncate!($0, size) }
        }
        methods.xSync = { file, flags in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xSync!($0, flags) }
        }
        methods.xFileSize = { file, size in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xFileSize!($0, size) }
        }
        methods.xLock = { file, level in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xLock!($0, level) }
        }
        methods.xUnlock = { file, level in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xUnlock!($0, level) }
        }
        methods.xCheckReservedLock = { file, result in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xCheckReservedLock!($0, result) }
        }
        methods.xFileControl = { file, operation, argument in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xFileControl!($0, operation, argument) }
        }
        methods.xSectorSize = { file in
            guard let file else { return 0 }
            let inner = CoalescingWALVFS.inner(file)
            return inner.pointee.pMethods.pointee.xSectorSize!(inner)
        }
        methods.xDeviceCharacteristics = { file in
            guard let file else { return 0 }
            let inner = CoalescingWALVFS.inner(file)
            return inner.pointee.pMethods.pointee.xDeviceCharacteristics!(inner)
        }
        methods.xShmMap = { file, page, pageSize, extend, address in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xShmMap!($0, page, pageSize, extend, address) }
        }
        methods.xShmLock = { file, offset, count, flags in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xShmLock!($0, offset, count, flags) }
        }
        methods.xShmBarrier = { file in
            _ = CoalescingWALVFS.afterFlushing(file) { inner in
                inner.pointee.pMethods.pointee.xShmBarrier!(inner)
                return SQLITE_OK
            }
        }
        methods.xShmUnmap = { file, delete in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xShmUnmap!($0, delete) }
        }
        methods.xFetch = { file, offset, amount, pointer in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xFetch!($0, offset, amount, pointer) }
        }
        methods.xUnfetch = { file, offset, pointer in
            CoalescingWALVFS.afterFlushing(file) { $0.pointee.pMethods.pointee.xUnfetch!($0, offset, pointer) }
        }
        return methods
    }
}

/// A log file's writes gathered while they continue one another (`CoalescingWALVFS`).
/// Used by one connection at a time, as its file is.
final class GatheredWrites {
    /// At most this many bytes are gathered: the most SQLite's unix VFS writes in one call
    /// (128 KB less a byte; 31 frames of 4 KB pages).
    static let capacity = 0x1ffff
    /// A write-ahead-log frame header: page number, database size after a commit (0 if the
    /// frame does not end one), salts and checksums.
    static let frameHeaderSize = 24

    private var bytes: UnsafeMutableRawPointer?
    /// Where in the file the gathered bytes go.
    private var start: Int64 = 0
    private var count = 0
    /// The last write was a commit's last frame header: its page ends the commit.
    private var commitPageFollows = false
    /// Where the last read began: a frame header written there next is a rewrite.
    fileprivate var lastReadOffset: Int64?

    deinit { bytes?.deallocate() }

    /// Gathers a write, or hands it on (with what was gathered before it) when it must not wait.
    func write(_ data: UnsafeRawPointer, count amount: Int, at offset: Int64, to file: UnsafeMutablePointer<sqlite3_file>) -> Int32 {
        let rewritesHeader = amount == Self.frameHeaderSize && lastReadOffset == offset
        lastReadOffset = nil
        let endsCommit = commitPageFollows
        commitPageFollows = false
        if count > 0, rewritesHeader || offset != start + Int64(count) || count + amount > Self.capacity {
            let flushed = flush(to: file)
            guard flushed == SQLITE_OK else { return flushed }
        }
        if rewritesHeader || amount > Self.capacity {
            return file.pointee.pMethods.pointee.xWrite!(file, data, Int32(amount), offset)
        }
        let storage = bytes ?? {
            let allocated = UnsafeMutableRawPointer.allocate(byteCount: Self.capacity, alignment: 16)
            bytes = allocated
            return allocated
        }()
        if count == 0 { start = offset }
        (storage + count).copyMemory(from: data, byteCount: amount)
        count += amount
        if endsCommit { return flush(to: file) }
        if amount == Self.frameHeaderSize {
            // Bytes 4 to 7: the database's size in pages after the commit this frame ends, or 0.
            let size = data.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            commitPageFollows = size != 0
        }
        return SQLITE_OK
    }

    /// Hands the gathered bytes to `file` in one write; they are dropped either way, as SQLite
    /// rolls back a transaction whose write failed.
    func flush(to file: UnsafeMutablePointer<sqlite3_file>) -> Int32 {
        guard count > 0, let bytes else { return SQLITE_OK }
        let amount = count
        count = 0
        return file.pointee.pMethods.pointee.xWrite!(file, bytes, Int32(amount), start)
    }
}
