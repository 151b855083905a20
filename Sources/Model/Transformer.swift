import Foundation
import Kernels

/// Which of a layer's two sums is being reduced.
public enum ReducePhase: Int, Sendable {
    case attention = 0
    case ffn = 1
}

/// How a tensor-parallel rank combines its partial o_proj / down_proj outputs with its peers'.
/// A single node has nothing to combine (`LocalReducer`).
public protocol PartialSumReducer: AnyObject {
    /// Sums `values` ([rows, hidden] partials) across the TP group, in place, identically on every rank.
    /// `upcoming` names the weights read right after (a network reducer pulls them toward the
    /// cache while it waits for its peers).
    func allReduce(_ values: UnsafeMutableBufferPointer<Float>, layer: Int, phase: ReducePhase,
                   upcoming: () -> [UnsafeRawBufferPointer]) throws
}

public final class LocalReducer: PartialSumReducer {
    public init() {}
    public func allReduce(_ values: UnsafeMutableBufferPointer<Float>, layer: Int, phase: ReducePhase,
                          upcoming: () -> [UnsafeRawBufferPointer]) throws {}
}

/// The sequences of one forward pass: each contributes `tokens` new rows (a prompt chunk in
/// prefill, one token in decode) that attend to its own cache. Rows are laid out sequence after
/// sequence, so prefills and decodes of different lengths share every matrix multiplication.
public struct SequenceBatch {
    public struct Entry {
        public let cache: any KVCache
        public let tokens: Int
        public init(cache: any KVCache, tokens: Int) {
            self.cache = cache
            self.tokens = tokens
        }
    }

    public var entries: [Entry]
    public init(_ entries: [Entry]) { self.entries = entries }
    public var rows: Int { entries.reduce(0) { $0 + $1.tokens } }
}

/// Router decisions, kept when asked for (parity tests, expert-affinity statistics).
public final class RoutingTrace {
    /// [layer] -> per row of each forward pass, the chosen experts in descending router weight.
    public private(set) var experts: [Int: [[Int]]] = [:]
    public init() {}
    func record(layer: Int, rows: [[Int]]) { experts[layer, default: []].append(contentsOf: rows) }
    public func reset() { experts = [:] }
}

/// Running a decoder slice over a batch: the same code serves a single node (the whole model,
/// `LocalReducer`), a tensor-parallel rank (a slice of heads and columns, a network reducer) and
/// a pipeline stage (a layer range, hidden states in and out).
public final class Transformer {
    public let config: ModelConfig
    public let slice: ShardSlice
    public let weights: any WeightProvider
    public let pool: ThreadPool
    public let rope: Rope
    public var routingTrace: RoutingTrace?

    let kvHeads: Range<Int>
    let localHeads: Int
    let localKVHeads: Int

    public init(weights: any WeightProvider, pool: ThreadPool) {
        config = weights.config
        slice = weights.slice
        self.weights = weights
        self.pool = pool
        rope = Rope(config: config)
        kvHeads = slice.kvHeads(config)
        localHeads = slice.queryHeads.count
        localKVHeads = kvHeads.count
    }

    /// A cache shaped for this node's layers and KV heads.
    public func makeCache(capacity: Int) -> ContiguousKVCache {
        ContiguousKVCache(layers: slice.layers, kvHeads: localKVHeads, headDim: config.headDim, capacity: capacity)
    }

    // MARK: - Embedding and logits

    /// x[t] = embed_tokens[tokens[t]]  -> [tokens.count, hidden]
    public func embed(_ tokens: [Int]) throws -> FloatBuffer {
        guard let table = try weights.embedding() else {
            throw ModelError.invalidRequest("this node's slice does not hold the embedding table")
        }
        let h = config.hiddenSize
        let x = FloatBuffer(count: tokens.count * h, zeroed: false)
        for (t, id) in tokens.enumerated() {
            guard id >= 0, id < config.vocabSize else {
                throw ModelError.invalidRequest("token id \(id) is outside the vocabulary of \(config.vocabSize)")
            }
            table.readRow(id, into: x.pointer + t * h)
        }
        return x
    }

    /// Logits of the selected rows of x: lm_head(rmsnorm(x[rows]))  -> [rows.count, logitRows.count]
    public func logits(_ x: FloatBuffer, rows: [Int]) throws -> FloatBuffer {
        guard let head = try weights.lmHead(), let norm = try weights.finalNorm() else {
            throw ModelError.invalidRequest("this node's slice does not compute logits")
        }
        let h = config.hiddenSize
        let normed = FloatBuffer(count: rows.count * h, zeroed: false)
        for (i, r) in rows.enumerated() {
            ck_rmsnorm(x.pointer + r * h, norm.pointer, config.rmsNormEps, normed.pointer + i * h, Int32(h))
        }
        let out = FloatBuffer(count: rows.count * head.rows, zeroed: false)
        var op = head.op(x: normed.pointer, ldx: h, y: out.pointer, ldy: head.rows)
        ck_linear_run(pool.pointer, &op, 1, Int32(rows.count))
        return out
    }

    // MARK: - Layers

    /// Runs this slice's layers over x ([batch.rows, hidden], updated in place), appending every
    /// sequence's new keys and values to its cache.
    public func forwardLayers(_ x: FloatBuffer, batch: SequenceBatch, reducer: any PartialSumReducer) throws {
        let rows = batch.rows
        precondition(x.count >= rows * config.hiddenSize)
        guard rows > 0 else { return }
        for e in batch.entries {
            guard e.cache.length + e.tokens <= config.maxPositions else {
                throw ModelError.promptTooLong(prompt: e.cache.length + e.tokens, generate: 0, limit: config.maxPositions)
            }
            e.cache.reserve(e.tokens)
        }
        let scratch = Scratch(config: config, rows: rows, localHeads: localHeads, localKVHeads: localKVHeads, batch: batch)
        fillRotaryAngles(scratch, batch: batch)
        for l in slice.layers {
            try attention(layer: l, x: x, batch: batch, s: scratch, reducer: reducer)
            try feedForward(layer: l, x: x, rows: rows, s: scratch, reducer: reducer)
        }
        for e in batch.entries { e.cache.advance(by: e.tokens) }
    }

    /// Convenience for a single node: embed, run all layers, return logits of `logitRows`.
    public func forward(tokens: [Int], batch: SequenceBatch, logitRows: [Int]) throws -> FloatBuffer {
        precondition(tokens.count == batch.rows)
        let x = try embed(tokens)
        try forwardLayers(x, batch: batch, reducer: LocalReducer())
        return try logits(x, rows: logitRows)
    }

    /// Buffers of one forward pass, sized for its rows.
    final class Scratch {
        let normed, q, k, v, attn, partial: FloatBuffer
        let cos, sin: FloatBuffer
        let scores: FloatBuffer
        let scoreStride: Int
        let positions: [Int]
        init(config c: ModelConfig, rows: Int, localHeads: Int, localKVHeads: Int, batch: SequenceBatch) {
            let h = c.hiddenSize, hd = c.headDim
            normed = FloatBuffer(count: rows * h, zeroed: false)
            q = FloatBuffer(count: rows * localHeads * hd, zeroed: false)
            k = FloatBuffer(count: rows * localKVHeads * hd, zeroed: false)
            v = FloatBuffer(count: rows * localKVHeads * hd, zeroed: false)
            attn = FloatBuffer(count: rows * localHeads * hd, zeroed: false)
            partial = FloatBuffer(count: rows * h, zeroed: false)
            cos = FloatBuffer(count: rows * hd / 2, zeroed: false)
            sin = FloatBuffer(count: rows * hd / 2, zeroed: false)
            var positions: [Int] = []
            var longest = 1
            for e in batch.entries {
                for i in 0 ..< e.tokens { positions.append(e.cache.length + i) }
                longest = max(longest, e.cache.length + e.tokens)
            }
            self.positions = positions
            scoreStride = longest
            scores = FloatBuffer(count: batch.entries.count * localHeads * longest, zeroed: false)
        }
    }

    private func fillRotaryAngles(_ s: Scratch, batch: SequenceBatch) {
        let half = config.headDim / 2
        for (r, p) in s.positions.enumerated() {
            rope.angles(position: p, cos: s.cos.pointer + r * half, sin: s.sin.pointer + r * half)
        }
    }

    /// x += o_proj(attention(rmsnorm(x)))
    private func attention(layer l: Int, x: FloatBuffer, batch: SequenceBatch, s: Scratch, reducer: any PartialSumReducer) throws {
        let block = try weights.attentionBlock(l)
        let w = block.weights
        let c = config
        let h = c.hiddenSize, hd = c.headDim
        let rows = batch.rows
        let qw = localHeads * hd, kvw = localKVHeads * hd
        for r in 0 ..< rows {
            ck_rmsnorm(x.pointer + r * h, block.norm.pointer, c.rmsNormEps, s.normed.pointer + r * h, Int32(h))
        }
        // q = xn Wq^T [rows, qw];  k, v = xn Wk^T, xn Wv^T [rows, kvw]
        var ops = [w.q.op(x: s.normed.pointer, ldx: h, y: s.q.pointer, ldy: qw),
                   w.k.op(x: s.normed.pointer, ldx: h, y: s.k.pointer, ldy: kvw),
                   w.v.op(x: s.normed.pointer, ldx: h, y: s.v.pointer, ldy: kvw)]
        ck_linear_run(pool.pointer, &ops, 3, Int32(rows))
        addBias(w.qBias, to: s.q, rows: rows, width: qw)
        addBias(w.kBias, to: s.k, rows: rows, width: kvw)
        addBias(w.vBias, to: s.v, rows: rows, width: kvw)
        let half = hd / 2
        for r in 0 ..< rows {
            let qr = s.q.pointer + r * qw, kr = s.k.pointer + r * kvw
            if let qn = w.qNorm, let kn = w.kNorm {
                for head in 0 ..< localHeads { ck_rmsnorm(qr + head * hd, qn.pointer, c.rmsNormEps, qr + head * hd, Int32(hd)) }
                for head in 0 ..< localKVHeads { ck_rmsnorm(kr + head * hd, kn.pointer, c.rmsNormEps, kr + head * hd, Int32(hd)) }
            }
            ck_rope(qr, Int32(localHeads), Int32(hd), s.cos.pointer + r * half, s.sin.pointer + r * half)
            ck_rope(kr, Int32(localKVHeads), Int32(hd), s.cos.pointer + r * half, s.sin.pointer + r * half)
        }
        // Append the new keys and values: cache[layer][head][position] = k[row][head].
        var row = 0
        for e in batch.entries {
            for i in 0 ..< e.tokens {
                let p = e.cache.length + i
                for head in 0 ..< localKVHeads {
                    (e.cache.keys(layer: l, head: head) + p * hd).update(from: s.k.pointer + (row + i) * kvw + head * hd, count: hd)
                    (e.cache.values(layer: l, head: head) + p * hd).update(from: s.v.pointer + (row + i) * kvw + head * hd, count: hd)
                }
            }
            row += e.tokens
        }
        // attn[rows of e, head] = softmax(q k^T / sqrt(hd)) v over e's cache, one task per (sequence, head).
        let scale = 1 / Float(hd).squareRoot()
        let window = Int32(c.slidingWindow[l] ?? 0)
        let group = c.groupSize
        let firstHead = slice.queryHeads.lowerBound, firstKV = kvHeads.lowerBound
        var starts: [Int] = []
        var acc = 0
        for e in batch.entries { starts.append(acc); acc += e.tokens }
        let entries = batch.entries
        let heads = localHeads
        pool.parallelFor(entries.count * heads) { task in
            let ei = task / heads, head = task % heads
            let e = entries[ei]
            guard e.tokens > 0 else { return }
            let kv = (firstHead + head) / group - firstKV
            let r0 = starts[ei]
            ck_attend(s.q.pointer + r0 * qw + head * hd, Int32(qw),
                      e.cache.keys(layer: l, head: kv), e.cache.values(layer: l, head: kv),
                      Int32(hd), Int32(e.tokens), Int32(e.cache.length), window, scale,
                      s.attn.pointer + r0 * qw + head * hd, Int32(qw), s.scores.pointer + task * s.scoreStride)
        }
        // partial = attn Wo^T [rows, hidden]; summed across TP ranks; x += partial (+ bias)
        var o = w.o.op(x: s.attn.pointer, ldx: qw, y: s.partial.pointer, ldy: h)
        ck_linear_run(pool.pointer, &o, 1, Int32(rows))
        try reducer.allReduce(UnsafeMutableBufferPointer(start: s.partial.pointer, count: rows * h), layer: l, phase: .attention,
                              upcoming: { weights.upcomingRegions(after: l, phase: .attention) })
        addResidual(s.partial, bias: w.oBias, to: x, rows: rows)
    }

    /// x += ffn(rmsnorm(x))
    private func feedForward(layer l: Int, x: FloatBuffer, rows: Int, s: Scratch, reducer: any PartialSumReducer) throws {
        let block = try weights.ffnBlock(l)
        let h = config.hiddenSize
        for r in 0 ..< rows {
            ck_rmsnorm(x.pointer + r * h, block.norm.pointer, config.rmsNormEps, s.normed.pointer + r * h, Int32(h))
        }
        switch block.weights {
        case .dense(let ffn):
            swiglu(ffn, input: s.normed.pointer, rows: rows, output: s.partial.pointer, accumulate: false)
            try reducer.allReduce(UnsafeMutableBufferPointer(start: s.partial.pointer, count: rows * h), layer: l, phase: .ffn,
                                  upcoming: { weights.upcomingRegions(after: l, phase: .ffn) })
            addResidual(s.partial, bias: ffn.downBias, to: x, rows: rows)
        case .sparse(let moe):
            try mixtureOfExperts(moe, layer: l, input: s.normed, rows: rows, output: s.partial)
            try reducer.allReduce(UnsafeMutableBufferPointer(start: s.partial.pointer, count: rows * h), layer: l, phase: .ffn,
                                  upcoming: { weights.upcomingRegions(after: l, phase: .ffn) })
            addResidual(s.partial, bias: nil, to: x, rows: rows)
        }
    }

    /// output [rows, hidden] (+)= down(silu(gate(input)) * up(input)) for input [rows, hidden].
    private func swiglu(_ f: DenseFFN, input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let h = config.hiddenSize, width = f.width
        guard width > 0 else {
            if !accumulate { output.update(repeating: 0, count: rows * h) }
            return
        }
        let gate = FloatBuffer(count: rows * width, zeroed: false)
        let up = FloatBuffer(count: rows * width, zeroed: false)
        var ops = [f.gate.op(x: input, ldx: h, y: gate.pointer, ldy: width),
                   f.up.op(x: input, ldx: h, y: up.pointer, ldy: width)]
        ck_linear_run(pool.pointer, &ops, 2, Int32(rows))
        addBias(f.gateBias, to: gate, rows: rows, width: width)
        addBias(f.upBias, to: up, rows: rows, width: width)
        ck_swiglu(gate.pointer, up.pointer, Int32(rows * width))
        var down = f.down.op(x: gate.pointer, ldx: width, y: output, ldy: h, accumulate: accumulate)
        ck_linear_run(pool.pointer, &down, 1, Int32(rows))
    }

    /// output [rows, hidden] = sum over each row's top-k experts of weight * expert(input row)
    /// (+ sigmoid-gated shared expert), with experts taken in ascending id order as transformers does.
    private func mixtureOfExperts(_ m: SparseFFN, layer l: Int, input: FloatBuffer, rows: Int, output: FloatBuffer) throws {
        let h = config.hiddenSize
        let expertCount = m.experts.count
        // router logits [rows, experts] -> softmax -> top-k
        let logits = FloatBuffer(count: rows * expertCount, zeroed: false)
        var r = m.router.op(x: input.pointer, ldx: h, y: logits.pointer, ldy: expertCount)
        ck_linear_run(pool.pointer, &r, 1, Int32(rows))
        var assigned = [[(row: Int, weight: Float)]](repeating: [], count: expertCount)
        var chosenPerRow: [[Int]] = []
        chosenPerRow.reserveCapacity(rows)
        for row in 0 ..< rows {
            let p = logits.pointer + row * expertCount
            ck_softmax(p, Int32(expertCount))
            let order = (0 ..< expertCount).sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
            let top = Array(order.prefix(m.topK))
            var weights = top.map { p[$0] }
            if m.routing == .softmaxTopKRenormalized {
                let sum = weights.reduce(0, +)
                weights = weights.map { $0 / sum }
            }
            for (e, w) in zip(top, weights) { assigned[e].append((row, w)) }
            chosenPerRow.append(top)
        }
        routingTrace?.record(layer: l, rows: chosenPerRow)

        output.pointer.update(repeating: 0, count: rows * h)
        let active = (0 ..< expertCount).filter { !assigned[$0].isEmpty }
        for e in active {
            guard let expert = m.experts[e] else {
                throw ModelError.invalidRequest("layer \(l): token routed to expert \(e), which this node does not hold")
            }
            let routed = assigned[e]
            // gather the rows routed to e: xe [n, hidden]; ye = expert(xe) [n, hidden]
            let xe = FloatBuffer(count: routed.count * h, zeroed: false)
            for (i, a) in routed.enumerated() { (xe.pointer + i * h).update(from: input.pointer + a.row * h, count: h) }
            let ye = FloatBuffer(count: routed.count * h, zeroed: false)
            swiglu(expert, input: xe.pointer, rows: routed.count, output: ye.pointer, accumulate: false)
            for (i, a) in routed.enumerated() { ck_axpy(a.weight, ye.pointer + i * h, output.pointer + a.row * h, Int32(h)) }
        }
        if let shared = m.shared, let gate = m.sharedGate {
            // output += sigmoid(x . w_gate) * shared(x)
            let g = FloatBuffer(count: rows, zeroed: false)
            var gop = gate.op(x: input.pointer, ldx: h, y: g.pointer, ldy: 1)
            ck_linear_run(pool.pointer, &gop, 1, Int32(rows))
            let ys = FloatBuffer(count: rows * h, zeroed: false)
            swiglu(shared, input: input.pointer, rows: rows, output: ys.pointer, accumulate: false)
            for row in 0 ..< rows {
                let sg = 1 / (1 + expf(-g[row]))
                ck_axpy(sg, ys.pointer + row * h, output.pointer + row * h, Int32(h))
            }
        }
    }

    private func addBias(_ bias: FloatBuffer?, to y: FloatBuffer, rows: Int, width: Int) {
        guard let bias else { return }
        for r in 0 ..< rows { ck_axpy(1, bias.pointer, y.pointer + r * width, Int32(width)) }
    }

    /// x += partial (+ bias), row by row.
    private func addResidual(_ partial: FloatBuffer, bias: FloatBuffer?, to x: FloatBuffer, rows: Int) {
        let h = config.hiddenSize
        for r in 0 ..< rows {
            if let bias { ck_axpy(1, bias.pointer, partial.pointer + r * h, Int32(h)) }
            ck_axpy(1, partial.pointer + r * h, x.pointer + r * h, Int32(h))
        }
    }
}
