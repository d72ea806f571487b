extension StringProtocol {
    /// Calls `body` with the string's UTF-8 bytes where they lie (a native string's are
    /// contiguous), or in a contiguous copy for any other. Calling `withUTF8` on a `var` copy
    /// instead would retain and release the string once more per call, which hot paths pay on
    /// every header field, bound value and token.
    @inlinable
    public func withUTF8Bytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable(body) { return result }
        var contiguous = String(self)
        return try contiguous.withUTF8(body)
    }
}
