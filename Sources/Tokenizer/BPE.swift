/// The BPE model of `tokenizer.json`, reproducing `tokenizers`' `BPE::merge_word` + `Word::merge_all`
/// exactly: per-character symbols (with `continuing_subword_prefix` / `end_of_word_suffix`,
/// `byte_fallback` to `<0xNN>` tokens, `unk_token` with optional fusing), then merges applied lowest
/// rank first (leftmost on ties) through a binary heap, so long words cost O(n log n).
struct BPEModel: Sendable {
    let vocab: TokenTable
    /// (left id, right id) -> (rank, merged id).
    let merges: PairTable
    let unknownTokenID: Int?
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let fuseUnknown: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// Vocab id of each `<0xNN>` token, -1 where absent.
    private let byteFallbackIDs: [Int32]
    /// Direct lookup of single-scalar tokens for scalars below `directLimit`, -1 where absent; the
    /// common case (byte-level alphabets, Latin/Cyrillic/Greek text) skips hashing entirely.
    private let singleScalarIDs: [Int32]
    private static let directLimit: UInt32 = 0x3000

    init(vocab: TokenTable, merges: PairTable, unknownToken: String?, continuingSubwordPrefix: String?,
         endOfWordSuffix: String?, fuseUnknown: Bool, byteFallback: Bool, ignoreMerges: Bool)
    {
        self.vocab = vocab
        self.merges = merges
        self.unknownTokenID = unknownToken.flatMap { vocab.id($0) }
        self.continuingSubwordPrefix = continuingSubwordPrefix.flatMap { $0.isEmpty ? nil : $0 }
        self.endOfWordSuffix = endOfWordSuffix.flatMap { $0.isEmpty ? nil : $0 }
        self.fuseUnknown = fuseUnknown
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
        byteFallbackIDs = (0..<256).map { b in
            Int32(vocab.id(BPEModel.byteTokenName(UInt8(b))) ?? -1)
        }
        var direct = [Int32](repeating: -1, count: Int(BPEModel.directLimit))
        var buffer: [UInt8] = []
        for s in 0..<BPEModel.directLimit where !(0xD800..<0xE000).contains(s) {
            buffer.removeAll(keepingCapacity: true)
            appendUTF8(s, to: &buffer)
            if let id = vocab.id(buffer) { direct[Int(s)] = Int32(id) }
        }
        singleScalarIDs = direct
    }

    /// `<0xNN>` with upper-case hex, the spelling SentencePiece byte tokens use.
    static func byteTokenName(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "<0x\(digits[Int(b >> 4)])\(digits[Int(b & 15)])>"
    }

    private struct Symbol {
        var id: Int32
        var prev: Int32
        var next: Int32
        /// Length in bytes; 0 marks a symbol merged into its left neighbour.
        var length: Int32
    }

    /// Appends the ids of `word` (a pre-tokenized piece, as scalars) to `out`.
    func tokenize(_ word: ArraySlice<UInt32>, into out: inout [Int]) {
        if word.isEmpty { return }
        if ignoreMerges {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(word.count * 2)
            for s in word { appendUTF8(s, to: &bytes) }
            if let id = vocab.id(bytes) {
                out.append(id)
                return
            }
        }
        var symbols = initialSymbols(word)
        mergeAll(&symbols)
        for s in symbols where s.length != 0 { out.append(Int(s.id)) }
    }

    private func lookupScalarToken(_ s: UInt32, isFirst: Bool, isLast: Bool, buffer: inout [UInt8]) -> Int? {
        let plain = (isFirst || continuingSubwordPrefix == nil) && (!isLast || endOfWordSuffix == nil)
        if plain && s < BPEModel.directLimit {
            let id = singleScalarIDs[Int(s)]
            return id < 0 ? nil : Int(id)
        }
        buffer.removeAll(keepingCapacity: true)
        if !isFirst, let prefix = continuingSubwordPrefix { buffer.append(contentsOf: prefix.utf8) }
        appendUTF8(s, to: &buffer)
        if isLast, let suffix = endOfWordSuffix { buffer.append(contentsOf: suffix.utf8) }
        return vocab.id(buffer)
    }

    private func initialSymbols(_ word: ArraySlice<UInt32>) -> [Symbol] {
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        func add(_ id: Int, _ length: Int) {
            let index = Int32(symbols.count)
            if !symbols.isEmpty { symbols[symbols.count - 1].next = index }
            symbols.append(Symbol(id: Int32(id), prev: index - 1, next: -1, length: Int32(length)))
        }
        var pendingUnknown: (id: Int, length: Int)?
        var buffer: [UInt8] = []
        var utf8: [UInt8] = []
        let last = word.endIndex - 1
        for i in word.indices {
            let s = word[i]
            let byteLength = s < 0x80 ? 1 : s < 0x800 ? 2 : s < 0x10000 ? 3 : 4
            if let id = lookupScalarToken(s, isFirst: i == word.startIndex, isLast: i == last, buffer: &buffer) {
                if let u = pendingUnknown {
                    add(u.id, u.length)
                    pendingUnknown = nil
                }
                add(id, byteLength)
                continue
            }
            if byteFallback {
                // The bytes of the looked-up string, prefix/suffix included, as tokenizers does.
                utf8.removeAll(keepingCapacity: true)
                if i != word.startIndex, let prefix = continuingSubwordPrefix { utf8.append(contentsOf: prefix.utf8) }
                appendUTF8(s, to: &utf8)
                if i == last, let suffix = endOfWordSuffix { utf8.append(contentsOf: suffix.utf8) }
                if utf8.allSatisfy({ byteFallbackIDs[Int($0)] >= 0 }) {
                    // A pending unknown is not flushed here: tokenizers emits it after these bytes.
                    for b in utf8 { add(Int(byteFallbackIDs[Int(b)]), 1) }
                    continue
                }
            }
            guard let unknownID = unknownTokenID else { continue }  // no unk token: the char is dropped
            if let u = pendingUnknown {
                if fuseUnknown {
                    pendingUnknown = (u.id, u.length + byteLength)
                    continue
                }
                add(u.id, u.length)
            }
            pendingUnknown = (unknownID, byteLength)
        }
        if let u = pendingUnknown { add(u.id, u.length) }
        return symbols
    }

    private struct Candidate {
        var rank: Int32
        var position: Int32
        var newID: Int32

        @inline(__always)
        static func < (a: Candidate, b: Candidate) -> Bool {
            a.rank != b.rank ? a.rank < b.rank : a.position < b.position
        }
    }

    private func mergeAll(_ symbols: inout [Symbol]) {
        if symbols.count < 2 { return }
        var heap = MinHeap<Candidate>(less: <)
        for i in 0..<(symbols.count - 1) {
            if let m = merges.lookup(symbols[i].id, symbols[i + 1].id) {
                heap.push(Candidate(rank: m.rank, position: Int32(i), newID: m.newID))
            }
        }
        while let top = heap.pop() {
            let p = Int(top.position)
            let current = symbols[p]
            if current.length == 0 || current.next == -1 { continue }
            let nextIndex = Int(current.next)
            let right = symbols[nextIndex]
            // Skip stale entries: the pair at this position changed since it was queued.
            guard let m = merges.lookup(current.id, right.id), m.newID == top.newID else { continue }
            symbols[p].id = top.newID
            symbols[p].length += right.length
            symbols[p].next = right.next
            symbols[nextIndex].length = 0
            if right.next >= 0 { symbols[Int(right.next)].prev = Int32(p) }
            let merged = symbols[p]
            if merged.prev >= 0, let m = merges.lookup(symbols[Int(merged.prev)].id, merged.id) {
                heap.push(Candidate(rank: m.rank, position: merged.prev, newID: m.newID))
            }
            if merged.next >= 0, let m = merges.lookup(merged.id, symbols[Int(merged.next)].id) {
                heap.push(Candidate(rank: m.rank, position: Int32(p), newID: m.newID))
            }
        }
    }
}

/// Open-addressing map from an id pair to (rank, merged id), sized for 150k+ merges.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private(set) var count = 0
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: PairTable.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// Later inserts of the same pair overwrite earlier ones, like the HashMap tokenizers collects into.
    mutating func insert(_ a: Int32, _ b: Int32, rank: Int32, newID: Int32) {
        if (count + 1) * 2 > keys.count { grow() }
        let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        var s = PairTable.slot(key, mask)
        while keys[s] != PairTable.empty && keys[s] != key { s = (s + 1) & mask }
        if keys[s] == PairTable.empty { count += 1 }
        keys[s] = key
        values[s] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: newID))
    }

    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> (rank: Int32, newID: Int32)? {
        let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        var s = PairTable.slot(key, mask)
        while true {
            let k = keys[s]
            if k == key {
                let v = values[s]
                return (Int32(bitPattern: UInt32(v >> 32)), Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
            }
            if k == PairTable.empty { return nil }
            s = (s + 1) & mask
        }
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let size = keys.count * 2
        keys = [UInt64](repeating: PairTable.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
        for (k, v) in zip(oldKeys, oldValues) where k != PairTable.empty {
            var s = PairTable.slot(k, mask)
            while keys[s] != PairTable.empty { s = (s + 1) & mask }
            keys[s] = k
            values[s] = v
        }
    }
}

/// A binary min-heap (the standard library has none).
struct MinHeap<Element> {
    private var items: [Element] = []
    private let less: (Element, Element) -> Bool

    init(less: @escaping (Element, Element) -> Bool) { self.less = less }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !less(items[i], items[parent]) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count && less(items[l], items[m]) { m = l }
                if r < items.count && less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
