/// Parks tasks until opened.
public actor Gate {
    private var continuations: [CheckedContinuation<Void, Never>] = []
    private var isOpen = false
    public var waiting: Int { continuations.count }

    public init() {}

    public func wait() async {
        if isOpen { return }
        await withCheckedContinuation { continuations.append($0) }
    }

    public func open() {
        isOpen = true
        continuations.forEach { $0.resume() }
        continuations = []
    }
}
