extension Array {
    /// The element a key falls to, for maps split into independently locked stripes (so that work on different
    /// keys rarely meets on one lock). Stable for the process's life: `Hasher` is seeded once per process.
    public func stripe(for key: some Hashable) -> Element {
        var hasher = Hasher()
        hasher.combine(key)
        return self[Int(UInt(bitPattern: hasher.finalize()) % UInt(count))]
    }
}
