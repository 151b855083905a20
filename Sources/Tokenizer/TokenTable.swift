/// Token strings keyed by their exact UTF-8 bytes.
///
/// Why not `[String: Int]`: Swift `String` equality is canonical equivalence, so a vocabulary holding
/// both "é" (U+00E9) and "e\u{301}" would silently merge two distinct tokens; hashing Strings is also
/// slower than hashing bytes. All token bytes live in one arena, so loading 150k tokens costs no
/// per-token allocation.
struct TokenTable: Sendable {
    private var arena: [UInt8] = []
    /// Entry i occupies `arena[starts[i]..<starts[i+1]]`.
    private var starts: [Int32] = [0]
    private var entryIDs: [Int32] = []
    /// Open-addressing slots holding entry indices, -1 when empty.
    private var slots: [Int32]
    private var mask: Int
    /// id -> entry index (-1 when the id has no token).
    private var entryForID: [Int32] = []

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        arena.reserveCapacity(capacity * 8)
        starts.reserveCapacity(capacity + 1)
        entryIDs.reserveCapacity(capacity)
    }

    var count: Int { entryIDs.count }
    /// One past the largest id present.
    var idLimit: Int { entryForID.count }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        // FNV-1a, folded: tokens are short, so a simple byte loop is fast enough.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3
        }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    @inline(__always)
    private func entryEquals(_ entry: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let s = Int(starts[entry])
        let e = Int(starts[entry + 1])
        guard e - s == bytes.count else { return false }
        return arena.withUnsafeBufferPointer { a in
            for k in 0..<bytes.count where a[s + k] != bytes[k] { return false }
            return true
        }
    }

    /// Inserts or overwrites (a later duplicate key wins, as when tokenizers builds its HashMap).
    mutating func insert(_ bytes: UnsafeBufferPointer<UInt8>, id: Int) {
        if (count + 1) * 2 > slots.count { grow() }
        var slot = TokenTable.hash(bytes) & mask
        while true {
            let entry = Int(slots[slot])
            if entry < 0 { break }
            if entryEquals(entry, bytes) {
                let old = Int(entryIDs[entry])
                entryIDs[entry] = Int32(id)
                if old < entryForID.count, entryForID[old] == Int32(entry) { entryForID[old] = -1 }
                setEntry(entry, forID: id)
                return
            }
            slot = (slot + 1) & mask
        }
        let entry = entryIDs.count
        arena.append(contentsOf: bytes)
        starts.append(Int32(arena.count))
        entryIDs.append(Int32(id))
        slots[slot] = Int32(entry)
        setEntry(entry, forID: id)
    }

    mutating func insert(_ string: String, id: Int) {
        var s = string
        s.withUTF8 { insert($0, id: id) }
    }

    private mutating func setEntry(_ entry: Int, forID id: Int) {
        if id >= entryForID.count {
            entryForID.append(contentsOf: repeatElement(-1, count: id + 1 - entryForID.count))
        }
        entryForID[id] = Int32(entry)
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        arena.withUnsafeBufferPointer { a in
            for entry in 0..<entryIDs.count {
                let bytes = UnsafeBufferPointer(rebasing: a[Int(starts[entry])..<Int(starts[entry + 1])])
                var slot = TokenTable.hash(bytes) & mask
                while slots[slot] >= 0 { slot = (slot + 1) & mask }
                slots[slot] = Int32(entry)
            }
        }
    }

    func id(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var slot = TokenTable.hash(bytes) & mask
        while true {
            let entry = Int(slots[slot])
            if entry < 0 { return nil }
            if entryEquals(entry, bytes) { return Int(entryIDs[entry]) }
            slot = (slot + 1) & mask
        }
    }

    func id(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { id($0) }
    }

    func id(_ string: String) -> Int? {
        var s = string
        return s.withUTF8 { id($0) }
    }

    func contains(id: Int) -> Bool {
        id >= 0 && id < entryForID.count && entryForID[id] >= 0
    }

    /// Calls `body` with the token bytes of `id`, or returns nil when the id is unknown.
    func withBytes<R>(ofID id: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard contains(id: id) else { return nil }
        let entry = Int(entryForID[id])
        return arena.withUnsafeBufferPointer { a in
            body(UnsafeBufferPointer(rebasing: a[Int(starts[entry])..<Int(starts[entry + 1])]))
        }
    }

    func string(ofID id: Int) -> String? {
        withBytes(ofID: id) { String(decoding: $0, as: UTF8.self) }
    }
}
