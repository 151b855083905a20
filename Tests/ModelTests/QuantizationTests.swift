import Foundation
import Kernels
import Model
import Testing

/// q8_0 / q4_0 through the Model layer: in-memory quantization at load, the quantized checkpoint
/// writer and reader, multiplication by quantized matrices, and the refusals.
@Suite(.serialized)
struct QuantizationTests {
    static let formats: [WeightType] = [.q8_0, .q4_0]

    /// Every element of a row as f32.
    static func dequantized(_ m: Linear, row r: Int) -> [Float] {
        var out = [Float](repeating: 0, count: m.cols)
        out.withUnsafeMutableBufferPointer { ck_to_f32(m.type.ckType, m.base + r * m.rowBytes, $0.baseAddress, m.cols) }
        return out
    }

    /// GGML's worst case per block of 32: q8_0 rounds to d/2 with d = amax/127; q4_0's d = -max/8
    /// leaves the opposite extreme one step (d) off. Both carry the f16 rounding of d.
    static func errorBound(_ type: WeightType, blockAbsMax amax: Float) -> Float {
        switch type {
        case .q8_0: return amax * (0.5 / 127 + 1.0 / 1024) + 1e-7
        default: return amax * (1.0 / 8 + 1.0 / 1024) + 1e-7
        }
    }

    static func loader(_ model: String, _ q: Quantization?, slice: ShardSlice? = nil) throws -> WeightLoader {
        let checkpoint = try Checkpoint(directory: Fixtures.model(model))
        let l = try WeightLoader(checkpoint: checkpoint, slice: slice ?? .full(checkpoint.config))
        l.quantization = q
        return l
    }

    @Test(arguments: formats)
    func inMemoryQuantizationIsWithinTheFormatsBound(type: WeightType) throws {
        let original = try Self.loader("tiny-llama", nil)
        let quantized = try Self.loader("tiny-llama", try Quantization(type))
        for l in [0, 3] {
            let a = try original.attention(layer: l), b = try quantized.attention(layer: l)
            guard case .dense(let fa) = try original.ffn(layer: l), case .dense(let fb) = try quantized.ffn(layer: l) else {
                Issue.record("tiny-llama has dense FFNs")
                return
            }
            for (x, y) in zip(a.matrices + fa.matrices, b.matrices + fb.matrices) {
                #expect(x.type == .f32 && y.type == type && y.rows == x.rows && y.cols == x.cols)
                #expect(y.byteCount == x.rows * x.cols / 32 * (type == .q8_0 ? 34 : 18))
                var worst: Float = 0
                for r in stride(from: 0, to: x.rows, by: 7) {
                    let w = Self.dequantized(x, row: r), q = Self.dequantized(y, row: r)
                    for b0 in stride(from: 0, to: x.cols, by: 32) {
                        let amax = w[b0 ..< b0 + 32].map(abs).max()!
                        let bound = Self.errorBound(type, blockAbsMax: amax)
                        for c in b0 ..< b0 + 32 {
                            worst = max(worst, abs(w[c] - q[c]) / max(bound, 1e-12))
                        }
                    }
                }
                #expect(worst <= 1, "layer \(l): error reaches \(worst) of the \(type) bound")
            }
        }
        // Embeddings and norms stay, unless asked; lm_head follows the layers.
        #expect(try quantized.embedding().type == .f32)
        #expect(try quantized.lmHead()?.type == type)
        let withEmbeddings = try Self.loader("tiny-llama", try Quantization(type, embeddings: true, keepLMHead: true))
        #expect(try withEmbeddings.embedding().type == type)
        #expect(try withEmbeddings.lmHead()?.type == .f32)
    }

    @Test func theMoERouterStaysInItsPrecision() throws {
        let l = try Self.loader("tiny-mixtral", try Quantization(.q8_0))
        guard case .sparse(let m) = try l.ffn(layer: 1) else {
            Issue.record("tiny-mixtral layer 1 is sparse")
            return
        }
        #expect(m.router.type == .bf16)
        #expect(m.experts.compactMap { $0 }.allSatisfy { $0.gate.type == .q8_0 && $0.up.type == .q8_0 && $0.down.type == .q8_0 })
    }

    /// y = W x through ck_linear_run on the loader's quantized matrix, against the dequantized
    /// matrix times x in double: matvec, also batched (x quantized to q8_0 on the fly, within
    /// that rounding) and GEMM (blocks dequantized to f32, within f32 rounding).
    @Test(arguments: formats, [1, 5, 24])
    func quantizedMatmulMatchesTheDequantizedMatrix(type: WeightType, tokens: Int) throws {
        let l = try Self.loader("tiny-llama", try Quantization(type))
        let cases = [try l.attention(layer: 1).o, try l.attention(layer: 2).q.rows(64 ..< 160)]
        let down: Linear
        guard case .dense(let f) = try l.ffn(layer: 0) else { return }
        down = f.down
        var rng = SeededGenerator(seed: 11)
        let pool = ThreadPool(threads: 2)
        for w in cases + [down] {
            let x = (0 ..< tokens * w.cols).map { _ in Float(Int(rng.next() % 2001) - 1000) / 500 }
            var y = [Float](repeating: .nan, count: tokens * w.rows)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    var op = ck_linear(wtype: w.type.ckType, w: w.base, row_bytes: w.rowBytes, rows: Int32(w.rows), cols: Int32(w.cols),
                                       x: xp.baseAddress, ldx: Int32(w.cols), y: yp.baseAddress, ldy: Int32(w.rows), accumulate: 0)
                    ck_linear_run(pool.pointer, &op, 1, Int32(tokens))
                }
            }
            // Per element of x, how far the kernel may move it: matvec rounds x to its block's
            // q8_0 step; GEMM only rounds f32 products and sums.
            let matvec = tokens <= Int(ck_linear_matvec_max_tokens(w.type.ckType))
            let slack: [Double] = (0 ..< x.count).map { i in
                guard matvec else { return Double(abs(x[i])) * 1e-6 }
                let b0 = i / 32 * 32
                return Double(x[b0 ..< b0 + 32].map(abs).max()!) * (0.5 / 127 + 1.0 / 1024)
            }
            for r in stride(from: 0, to: w.rows, by: 3) {
                let row = Self.dequantized(w, row: r)
                for t in 0 ..< tokens {
                    var exact = 0.0, bound = 0.0
                    for c in 0 ..< w.cols {
                        exact += Double(row[c]) * Double(x[t * w.cols + c])
                        bound += abs(Double(row[c])) * slack[t * w.cols + c]
                    }
                    let got = Double(y[t * w.rows + r])
                    #expect(abs(got - exact) <= bound + 1e-5, "\(type) T=\(tokens) row \(r): \(got) vs \(exact) (bound \(bound))")
                }
            }
        }
    }

    @Test(arguments: formats)
    func aWrittenCheckpointLoadsBackToTheSameBlocks(type: WeightType) throws {
        let out = try Fixtures.temporaryDirectory("quantized")
        defer { try? FileManager.default.removeItem(at: out) }
        let source = try Checkpoint(directory: Fixtures.model("tiny-mixtral"))
        let q = try Quantization(type)
        let summary = try QuantizedCheckpoint.write(from: source, quantization: q, to: out, maxShardBytes: 3 << 20)
        #expect(summary.files.count > 1, "small shards exercise the index")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.json").path))

        let written = try Checkpoint(directory: out)
        #expect(written.storedQuantization == type.name.lowercased())
        let name = "model.layers.2.block_sparse_moe.experts.5.w2.weight"
        let info = try written.info(name)
        #expect(info.dtype == .u8 && info.shape == [256, 384 / 32, type == .q8_0 ? 34 : 18])
        #expect(try written.file(of: name).metadata["shoal.dtype." + name] == type.name)
        #expect(try written.info("model.layers.2.block_sparse_moe.gate.weight").dtype == .bf16)
        #expect(try written.info("model.embed_tokens.weight").dtype == .bf16)

        // The same bytes as quantizing at load, tensor by tensor (sliced for a TP rank too).
        let slice = ShardSlice(layers: 1 ..< 3, queryHeads: 4 ..< 8, ffnColumns: 0 ..< 0, expertColumns: 192 ..< 384, sharedExpertColumns: 0 ..< 0,
                               embeds: false, logitRows: 1024 ..< 2048, addsReducedBiases: false)
        let fromFile = try WeightLoader(checkpoint: written, slice: slice)
        let atLoad = try WeightLoader(checkpoint: source, slice: slice)
        atLoad.quantization = q
        #expect(fromFile.convertedMatrices == 0)
        for l in 1 ..< 3 {
            let a = try fromFile.attention(layer: l).matrices, b = try atLoad.attention(layer: l).matrices
            let fa = try fromFile.ffn(layer: l), fb = try atLoad.ffn(layer: l)
            guard case .sparse(let ma) = fa, case .sparse(let mb) = fb else { return }
            let ea = ma.experts.compactMap { $0 }.flatMap { [$0.gate, $0.up, $0.down] }
            let eb = mb.experts.compactMap { $0 }.flatMap { [$0.gate, $0.up, $0.down] }
            for (x, y) in zip(a + ea, b + eb) {
                #expect(x.type == type && y.type == type && x.rows == y.rows && x.cols == y.cols)
                for r in 0 ..< x.rows {
                    #expect(memcmp(x.base + r * x.rowBytes, y.base + r * y.rowBytes, type.rowBytes(x.cols)) == 0, "layer \(l) row \(r)")
                }
            }
        }
        #expect(fromFile.convertedMatrices == 0 && atLoad.convertedMatrices > 0)
        let headA = try #require(try fromFile.lmHead()), headB = try #require(try atLoad.lmHead())
        #expect(memcmp(headA.base, headB.base, headA.byteCount) == 0)
    }

    /// quantize -> load -> generate: the written checkpoint runs, and gives exactly what
    /// quantizing the original at load gives.
    @Test func aQuantizedCheckpointGeneratesLikeQuantizingAtLoad() throws {
        let out = try Fixtures.temporaryDirectory("quantized-gen")
        defer { try? FileManager.default.removeItem(at: out) }
        let q = try Quantization(.q8_0)
        try QuantizedCheckpoint.write(from: try Checkpoint(directory: Fixtures.model("tiny-llama")), quantization: q, to: out)
        let refs = try ReferencePrompt.load(Fixtures.model("tiny-llama"))
        let requests = refs.map { GenerationRequest(promptTokens: $0.inputIDs, maxTokens: 16, recordLogits: true) }
        let fromFile = try Generator(backend: LoadedModel(directory: out, threads: 2).makeBackend(), eos: []).run(requests)
        let atLoad = try Generator(backend: LoadedModel(directory: Fixtures.model("tiny-llama"), threads: 2, weights: WeightPolicy(quantization: q))
            .makeBackend(), eos: []).run(requests)
        for (i, (a, b)) in zip(fromFile, atLoad).enumerated() {
            #expect(a.tokens == b.tokens, "prompt \(i)")
            #expect(a.prefillLogits == b.prefillLogits && a.stepLogits == b.stepLogits, "prompt \(i): logits differ")
            #expect(a.tokens == Array(refs[i].greedyIDs.prefix(16)), "prompt \(i): q8_0 greedy ids left the reference")
        }
        // Re-quantizing a quantized checkpoint to the other format is refused by name.
        #expect(throws: ModelError.self) {
            _ = try LoadedModel(directory: out, threads: 1, weights: WeightPolicy(quantization: try Quantization(.q4_0)))
        }
        do {
            _ = try LoadedModel(directory: out, threads: 1, weights: WeightPolicy(quantization: try Quantization(.q4_0)))
        } catch {
            #expect("\(error)".contains("already stored as Q8_0"), "\(error)")
        }
    }

    @Test func columnSlicesOffBlockBoundariesAreRefused() throws {
        let c = try Checkpoint(directory: Fixtures.model("tiny-llama")).config
        var slice = ShardSlice.full(c)
        slice.ffnColumns = 0 ..< 48
        let l = try Self.loader("tiny-llama", try Quantization(.q4_0), slice: slice)
        do {
            _ = try l.ffn(layer: 0)
            Issue.record("an FFN slice of 48 columns was quantized")
        } catch {
            let text = "\(error)"
            #expect(text.contains("model.layers.0.mlp.down_proj.weight") && text.contains("0..<48") && text.contains("block boundaries"), "\(text)")
        }
        // Unquantized, the same slice loads.
        _ = try Self.loader("tiny-llama", nil, slice: slice).ffn(layer: 0)
    }
}
