import ClusterPlan
import Kernels
import Model
import WireProtocol

extension Shoal_V1_Range {
    init(_ r: Range<Int>) {
        self.init()
        start = UInt32(r.lowerBound)
        end = UInt32(r.upperBound)
    }

    var range: Range<Int> { Int(start) ..< max(Int(start), Int(end)) }
}

extension ShardSlice {
    /// The wire form of a node's slice (ranges index the full model).
    func spec(rank: Int, tpSize: Int, stage: Int, ppSize: Int, config: ModelConfig) -> Shoal_V1_ShardSpec {
        var s = Shoal_V1_ShardSpec()
        s.rank = UInt32(rank)
        s.tpSize = UInt32(tpSize)
        s.ppStage = UInt32(stage)
        s.ppSize = UInt32(ppSize)
        s.layers = .init(layers)
        s.queryHeads = .init(queryHeads)
        s.kvHeads = .init(kvHeads(config))
        s.ffnColumns = [.init(ffnColumns)]
        s.expertColumns = .init(expertColumns)
        s.sharedExpertColumns = .init(sharedExpertColumns)
        s.embeds = embeds
        s.addsReducedBiases = addsReducedBiases
        if let logitRows { s.lmHeadVocab = .init(logitRows) }
        return s
    }

    init(spec s: Shoal_V1_ShardSpec) throws {
        guard s.ffnColumns.count == 1 else {
            throw RuntimeError.protocolViolation("shard spec with \(s.ffnColumns.count) FFN column ranges; this worker supports one")
        }
        self.init(layers: s.layers.range, queryHeads: s.queryHeads.range, ffnColumns: s.ffnColumns[0].range,
                  expertColumns: s.expertColumns.range, sharedExpertColumns: s.sharedExpertColumns.range,
                  embeds: s.embeds, logitRows: s.hasLmHeadVocab ? s.lmHeadVocab.range : nil,
                  addsReducedBiases: s.addsReducedBiases)
    }
}

extension AllReduceAlgorithm {
    var wire: Shoal_V1_AllReduceAlgorithm {
        switch self {
        case .star: return .star
        case .ring: return .ring
        case .mesh: return .mesh
        }
    }

    init(wire: Shoal_V1_AllReduceAlgorithm) throws {
        switch wire {
        case .star: self = .star
        case .ring: self = .ring
        case .mesh: self = .mesh
        default: throw RuntimeError.protocolViolation("unknown all-reduce algorithm \(wire)")
        }
    }
}

extension SyncDType {
    init(wire: Shoal_V1_DType) throws {
        switch wire {
        case .f32, .unspecified: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .q80: self = .q8_0
        default: throw RuntimeError.protocolViolation("unsupported sync dtype \(wire)")
        }
    }
}

extension WeightType {
    /// The wire dtype of a block format (q8_0, q4_0); nil for the float types.
    var blockWire: Shoal_V1_DType? {
        switch self {
        case .q8_0: return .q80
        case .q4_0: return .q40
        default: return nil
        }
    }

    /// The block format a wire dtype names; nil for the others.
    init?(blockFormat wire: Shoal_V1_DType) {
        switch wire {
        case .q80: self = .q8_0
        case .q40: self = .q4_0
        default: return nil
        }
    }
}

extension Shoal_V1_Header.OneOf_Body {
    /// The message kind, for logs and errors.
    var kind: String { String(describing: self).split(separator: "(").first.map(String.init) ?? "?" }
}
