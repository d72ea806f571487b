extension Sequence {
    /// The distinct non-nil values `value` gives for the elements. A batch's events come in runs
    /// of one subscription or customer, so a value is hashed only where it differs from the
    /// one before it.
    @inlinable
    public func distinctValues<Value: Hashable>(_ value: (Element) throws -> Value?) rethrows -> Set<Value> {
        var distinct = Set<Value>()
        var previous: Value?
        for element in self {
            guard let current = try value(element), current != previous else { continue }
            distinct.insert(current)
            previous = current
        }
        return distinct
    }
}
