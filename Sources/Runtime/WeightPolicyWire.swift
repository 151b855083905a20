import Foundation
import Kernels
import Model
import WireProtocol

extension WeightPolicy {
    /// The policy as a LoadShard carries it; `context` is the KV capacity a budget must allow for.
    func wire(context: Int?) -> Shoal_V1_WeightPolicy {
        var w = Shoal_V1_WeightPolicy()
        if let q = quantization {
            w.quantize = q.type.blockWire ?? .unspecified
            w.quantizeEmbeddings = q.embeddings
            w.keepLmHead = q.keepLMHead
        }
        w.memoryWindow = UInt32(window ?? 0)
        w.memoryBudget = UInt64(budget ?? 0)
        w.contextTokens = UInt32(context ?? 0)
        w.prefetchRead = prefetch == .read
        w.dropPageCache = dropPageCache
        return w
    }

    /// A worker's policy from its LoadShard; unknown formats are refused by name.
    init(wire w: Shoal_V1_WeightPolicy) throws {
        var quantization: Quantization?
        if w.quantize == .unspecified {
            quantization = nil
        } else if let type = WeightType(blockFormat: w.quantize) {
            quantization = try Quantization(type, embeddings: w.quantizeEmbeddings, keepLMHead: w.keepLmHead)
        } else {
            throw RuntimeError.protocolViolation("LoadShard asks to quantize weights to \(w.quantize), which is not a block format")
        }
        self.init(quantization: quantization, window: w.memoryWindow > 0 ? Int(w.memoryWindow) : nil,
                  budget: w.memoryBudget > 0 ? Int(w.memoryBudget) : nil, prefetch: w.prefetchRead ? .read : .mmap,
                  dropPageCache: w.dropPageCache)
    }
}
