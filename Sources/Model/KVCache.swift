/// Keys and values of one sequence for the layers and KV heads a node holds.
///
/// Contiguous per sequence — one allocation, laid out [layer][K|V][kvHead][position][headDim] — so
/// shipping a sequence's cache to another node (prefill/decode disaggregation) is one large send.
public protocol KVCache: AnyObject {
    /// Positions already filled (the next token's position).
    var length: Int { get }
    var capacity: Int { get }
    /// Makes room for `count` more positions (may move the storage).
    func reserve(_ count: Int)
    /// [capacity, headDim] keys of `head` (local index) in `layer` (global index).
    func keys(layer: Int, head: Int) -> UnsafeMutablePointer<Float>
    func values(layer: Int, head: Int) -> UnsafeMutablePointer<Float>
    /// Marks `count` positions written by the last forward pass as filled.
    func advance(by count: Int)
    /// Drops positions from `position` on (rolls back a speculative or aborted step).
    func truncate(to position: Int)
}

public final class ContiguousKVCache: KVCache, @unchecked Sendable {
    // Sendable: a cache belongs to one sequence, which one forward pass at a time touches.
    public let layers: Range<Int>
    public let kvHeads: Int
    public let headDim: Int
    public private(set) var length = 0
    public private(set) var capacity: Int
    private var storage: UnsafeMutablePointer<Float>

    public init(layers: Range<Int>, kvHeads: Int, headDim: Int, capacity: Int) {
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = max(capacity, 1)
        storage = Self.allocate(layers.count * 2 * kvHeads * self.capacity * headDim)
    }

    deinit { storage.deallocate() }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1) * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: max(n, 1))
    }

    /// Bytes held for the filled positions (what a KV transfer would send).
    public var filledBytes: Int { layers.count * 2 * kvHeads * length * headDim * 4 }

    public func reserve(_ count: Int) {
        let needed = length + count
        guard needed > capacity else { return }
        let newCapacity = max(needed, capacity * 2)
        let fresh = Self.allocate(layers.count * 2 * kvHeads * newCapacity * headDim)
        let planes = layers.count * 2 * kvHeads
        for p in 0 ..< planes {
            (fresh + p * newCapacity * headDim).update(from: storage + p * capacity * headDim, count: length * headDim)
        }
        storage.deallocate()
        storage = fresh
        capacity = newCapacity
    }

    private func plane(_ layer: Int, _ kind: Int, _ head: Int) -> UnsafeMutablePointer<Float> {
        precondition(layers.contains(layer) && head < kvHeads)
        return storage + (((layer - layers.lowerBound) * 2 + kind) * kvHeads + head) * capacity * headDim
    }

    public func keys(layer: Int, head: Int) -> UnsafeMutablePointer<Float> { plane(layer, 0, head) }
    public func values(layer: Int, head: Int) -> UnsafeMutablePointer<Float> { plane(layer, 1, head) }

    public func advance(by count: Int) {
        precondition(length + count <= capacity)
        length += count
    }

    public func truncate(to position: Int) { length = min(length, max(0, position)) }
}
