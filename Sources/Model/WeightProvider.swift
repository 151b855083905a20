import Foundation
import Kernels

/// The first half of a decoder layer: x += o_proj(attention(rmsnorm(x))).
public struct AttentionBlock: @unchecked Sendable {
    public var norm: FloatBuffer
    public var weights: AttentionWeights
}

/// The second half: x += ffn(rmsnorm(x)).
public struct FFNBlock: @unchecked Sendable {
    public var norm: FloatBuffer
    public var weights: FFNWeights
}

/// Where the engine gets a node's weights, one block (half a layer) at a time, so that a
/// provider may keep everything resident or stream a window of blocks from disk.
public protocol WeightProvider: AnyObject {
    var config: ModelConfig { get }
    var slice: ShardSlice { get }
    func attentionBlock(_ layer: Int) throws -> AttentionBlock
    func ffnBlock(_ layer: Int) throws -> FFNBlock
    /// [vocab, hidden]; nil unless the slice embeds.
    func embedding() throws -> Linear?
    func finalNorm() throws -> FloatBuffer?
    /// The slice's lm_head rows; nil unless the slice computes logits.
    func lmHead() throws -> Linear?
    /// Weight bytes held at most at once: all of them when resident, the window's fullest when streamed.
    var residentBytes: Int { get }
    /// The contiguous weight ranges read next after `phase` of `layer` (the FFN's gate/up after
    /// attention; the next layer's q/k/v, or lm_head, after the FFN), if they are in memory
    /// already — never a reason to load anything.
    func upcomingRegions(after layer: Int, phase: ReducePhase) -> [UnsafeRawBufferPointer]
}

extension WeightProvider {
    public func upcomingRegions(after layer: Int, phase: ReducePhase) -> [UnsafeRawBufferPointer] { [] }
}

/// Every block of the slice loaded up front (views into the mapping where the dtype allows).
public final class ResidentWeights: WeightProvider, @unchecked Sendable {
    // Sendable: immutable after init.
    public let config: ModelConfig
    public let slice: ShardSlice
    private let attention: [Int: AttentionBlock]
    private let ffn: [Int: FFNBlock]
    private let embed: Linear?
    private let norm: FloatBuffer?
    private let head: Linear?
    public let residentBytes: Int

    /// - progress: called with (blocks done, blocks total) while loading.
    public init(loader: WeightLoader, progress: ((Int, Int) -> Void)? = nil) throws {
        config = loader.checkpoint.config
        slice = loader.slice
        var attention: [Int: AttentionBlock] = [:]
        var ffn: [Int: FFNBlock] = [:]
        let total = slice.layers.count * 2
        var done = 0
        let held = loader.heldBytes
        for l in slice.layers {
            attention[l] = try loader.attentionBlock(l)
            done += 1
            progress?(done, total)
            ffn[l] = try loader.ffnBlock(l)
            done += 1
            progress?(done, total)
        }
        self.attention = attention
        self.ffn = ffn
        embed = slice.embeds ? try loader.embedding() : nil
        let last = slice.logitRows != nil
        norm = last ? try loader.finalNorm() : nil
        head = try loader.lmHead()
        residentBytes = loader.heldBytes - held
    }

    public func attentionBlock(_ layer: Int) throws -> AttentionBlock {
        guard let b = attention[layer] else { throw ModelError.invalidRequest("layer \(layer) is not in this node's slice \(slice.layers)") }
        return b
    }

    public func ffnBlock(_ layer: Int) throws -> FFNBlock {
        guard let b = ffn[layer] else { throw ModelError.invalidRequest("layer \(layer) is not in this node's slice \(slice.layers)") }
        return b
    }

    public func upcomingRegions(after layer: Int, phase: ReducePhase) -> [UnsafeRawBufferPointer] {
        let next: [Linear]
        switch phase {
        case .attention:
            switch ffn[layer]?.weights {
            case .dense(let f)?: next = [f.gate, f.up]
            case .sparse(let m)?: next = [m.router]
            case nil: next = []
            }
        case .ffn:
            if let a = attention[layer + 1]?.weights {
                next = [a.q, a.k, a.v]
            } else {
                next = head.map { [$0] } ?? []
            }
        }
        return next.compactMap(\.contiguousBytes)
    }

    public func embedding() throws -> Linear? { embed }
    public func finalNorm() throws -> FloatBuffer? { norm }
    public func lmHead() throws -> Linear? { head }
}
