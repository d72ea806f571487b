#if canImport(Glibc)
import Glibc
#endif

/// Asks the C allocator to give freed memory back to the system (after a large load).
enum SystemMemory {
    static func returnFreedMemory() {
        #if canImport(Glibc)
        // glibc's malloc_trim, looked up at run time (its header is not part of the Glibc module).
        typealias MallocTrim = @convention(c) (Int) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
            _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        }
        #endif
    }
}
