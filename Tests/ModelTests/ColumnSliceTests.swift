import Foundation
import Kernels
@testable import Model
import Testing

/// A TP rank's column slices (o_proj by query heads, down_proj by FFN columns) are packed into
/// rows of their own at load, with exactly the bytes of the strided view they replace.
struct ColumnSliceTests {
    @Test(arguments: ["tiny-llama", "tiny-mixtral"])
    func columnSlicesArePackedWithTheSameBytes(model: String) throws {
        let checkpoint = try Checkpoint(directory: Fixtures.model(model))
        let c = checkpoint.config
        var slice = ShardSlice.full(c)
        slice.queryHeads = c.headCount / 2 ..< c.headCount
        slice.ffnColumns = 32 ..< c.intermediateSize / 2
        if let moe = c.moe { slice.expertColumns = 32 ..< moe.expertIntermediateSize / 2 }
        let packed = try WeightLoader(checkpoint: checkpoint, slice: slice)
        let viewed = try WeightLoader(checkpoint: checkpoint, slice: slice)
        viewed.packsColumnSlices = false
        for layer in 0 ..< c.layerCount {
            var pairs = [(try packed.attention(layer: layer).o, try viewed.attention(layer: layer).o)]
            switch (try packed.ffn(layer: layer), try viewed.ffn(layer: layer)) {
            case (.dense(let a), .dense(let b)): pairs.append((a.down, b.down))
            case (.sparse(let a), .sparse(let b)):
                for (x, y) in zip(a.experts, b.experts) { if let x, let y { pairs.append((x.down, y.down)) } }
            default: Issue.record("layer \(layer): the two loads disagree on the FFN kind")
            }
            for (p, v) in pairs {
                #expect(p.rows == v.rows && p.cols == v.cols && p.type == v.type)
                #expect(p.rowBytes == p.type.rowBytes(p.cols), "packed rows are back to back")
                #expect(v.rowBytes > v.type.rowBytes(v.cols), "the view is strided")
                for r in 0 ..< v.rows {
                    #expect(memcmp(p.base + r * p.rowBytes, v.base + r * v.rowBytes, v.type.rowBytes(v.cols)) == 0, "layer \(layer) row \(r)")
                }
            }
        }
    }
}
