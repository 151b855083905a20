import Foundation
import Kernels
import Model
import Transport
import WireProtocol

/// The bytes of a slice, tensor part by tensor part, as a coordinator reads them from its own
/// checkpoint to stream to a worker that lacks them. The parts are exactly what the worker's
/// `WeightLoader` will read back from its cache (`preSliced`).
public struct SliceExtract {
    public let requirements: [TensorRequirement]
    let checkpoint: Checkpoint

    /// Runs the loader over the slice (views only, nothing copied) to learn its parts.
    public init(checkpoint: Checkpoint, slice: ShardSlice) throws {
        let loader = try WeightLoader(checkpoint: checkpoint, slice: slice)
        _ = try ResidentWeights(loader: loader)
        // A part read twice (lm_head rows of a tied embedding read whole too) is stored once.
        var seen = Set<String>()
        requirements = loader.requirements.filter { seen.insert($0.storageName).inserted }
        self.checkpoint = checkpoint
    }

    /// The part's dtype on the wire: its stored dtype, or its block format for a matrix stored
    /// quantized (sent as whole blocks, with its logical shape).
    public func wireDType(of r: TensorRequirement) throws -> Shoal_V1_DType {
        if let q = try blockFormat(of: r), let wire = q.blockWire { return wire }
        return try checkpoint.info(r.name).dtype.wire
    }

    private func blockFormat(of r: TensorRequirement) throws -> WeightType? {
        r.fullShape.count == 2 ? try checkpoint.blockFormat(of: r.name) : nil
    }

    /// Bytes of `columns` elements of one row of the part's tensor.
    private func rowBytes(_ r: TensorRequirement, columns: Int) throws -> Int {
        if let q = try blockFormat(of: r) { return q.rowBytes(columns) }
        return columns * (try checkpoint.info(r.name).dtype.size)
    }

    public func byteCount(of r: TensorRequirement) throws -> Int {
        r.rows.count * (try rowBytes(r, columns: r.columns.count))
    }

    public var totalBytes: Int { (try? requirements.reduce(0) { $0 + (try byteCount(of: $1)) }) ?? 0 }

    /// Calls `body` with consecutive pieces of the part's bytes (rows of a column slice are
    /// gathered; contiguous parts are passed straight from the mapping).
    public func forEachPiece(of r: TensorRequirement, maxBytes: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let info = try checkpoint.info(r.name)
        let file = try checkpoint.file(of: r.name)
        let all = file.bytes(of: info)
        let rowLength = try rowBytes(r, columns: r.fullShape.count == 1 ? r.fullShape[0] : r.fullShape[1])
        let rowStart = try rowBytes(r, columns: r.columns.lowerBound)
        let rowBytes = try rowBytes(r, columns: r.columns.count)
        if rowBytes == rowLength {
            // Whole rows: one contiguous range.
            let start = r.rows.lowerBound * rowLength
            let end = r.rows.upperBound * rowLength
            var offset = start
            while offset < end {
                let n = min(maxBytes, end - offset)
                try body(UnsafeRawBufferPointer(rebasing: all[offset ..< offset + n]))
                offset += n
            }
            return
        }
        let rowsPerPiece = max(1, maxBytes / max(rowBytes, 1))
        var row = r.rows.lowerBound
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: rowsPerPiece * rowBytes, alignment: 64)
        defer { buffer.deallocate() }
        while row < r.rows.upperBound {
            let n = min(rowsPerPiece, r.rows.upperBound - row)
            for i in 0 ..< n {
                let src = (row + i) * rowLength + rowStart
                UnsafeMutableRawBufferPointer(rebasing: buffer[i * rowBytes ..< (i + 1) * rowBytes])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: all[src ..< src + rowBytes]))
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0 ..< n * rowBytes]))
            row += n
        }
    }
}

/// Where a worker keeps slices it was sent: `<cache>/<model identity>/<slice key>/` holding
/// config.json, model.safetensors (the slice's parts under their storage names) and slice.json.
/// A later start with the same identity and slice loads from here and nothing is re-sent.
public struct SliceCache {
    public let root: URL

    public init(root: URL) { self.root = root }

    public static func key(_ slice: ShardSlice) -> String {
        var h = FNV1a()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        h.add((try? encoder.encode(slice)) ?? Data())
        return "layers\(slice.layers.lowerBound)-\(slice.layers.upperBound)-" + String(h.hex.prefix(16))
    }

    public func directory(identity: String, slice: ShardSlice) -> URL {
        root.appendingPathComponent(identity).appendingPathComponent(Self.key(slice))
    }

    /// A complete cached slice, or nil.
    public func lookup(identity: String, slice: ShardSlice) -> URL? {
        let dir = directory(identity: identity, slice: slice)
        let complete = dir.appendingPathComponent("slice.json")
        return FileManager.default.fileExists(atPath: complete.path) ? dir : nil
    }
}

/// Receives a streamed slice into the cache: the manifest fixes the file layout up front, chunks
/// are appended in order, and `slice.json` is written last so a half-received slice is never
/// mistaken for a complete one.
final class SliceReceiver {
    let directory: URL
    let manifest: [Shoal_V1_TensorDesc]
    private let handle: FileHandle
    private var expected: [(name: String, bytes: Int)]
    private var index = 0
    private var offset = 0
    private(set) var received = 0
    let total: Int

    init(directory: URL, manifest: [Shoal_V1_TensorDesc], configJSON: Data, generationJSON: Data?) throws {
        self.directory = directory
        self.manifest = manifest
        let fm = FileManager.default
        try? fm.removeItem(at: directory)
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        try configJSON.write(to: directory.appendingPathComponent("config.json"))
        if let generationJSON { try generationJSON.write(to: directory.appendingPathComponent("generation_config.json")) }
        // Header first (data offsets follow from the manifest), then the parts' bytes as they come.
        var layout: [(name: String, dtype: TensorDType, shape: [Int], byteCount: Int)] = []
        var metadata: [String: String] = [:]
        for t in manifest {
            let bytes = Int(t.byteLength)
            let shape = t.shape.map { Int($0) }
            if let q = WeightType(blockFormat: t.dtype) {
                // Stored as a quantized checkpoint stores it (docs/QUANTIZED_FORMAT.md).
                guard shape.count == 2, shape[1] % q.blockSize == 0, shape[0] * q.rowBytes(shape[1]) == bytes else {
                    throw RuntimeError.protocolViolation("slice manifest: \(q.rawValue) tensor '\(t.name)' shape \(shape) does not fit \(bytes) bytes in blocks of \(q.blockSize)")
                }
                layout.append((t.name, .u8, [shape[0], shape[1] / q.blockSize, QuantizedFormat.blockBytes(q)], bytes))
                metadata[QuantizedFormat.dtypePrefix + t.name] = q.rawValue
                metadata[QuantizedFormat.versionKey] = QuantizedFormat.version
                continue
            }
            guard let dtype = TensorDType(wire: t.dtype) else {
                throw RuntimeError.protocolViolation("slice manifest: tensor '\(t.name)' has unsupported dtype \(t.dtype)")
            }
            guard shape.reduce(1, *) * dtype.size == bytes else {
                throw RuntimeError.protocolViolation("slice manifest: tensor '\(t.name)' shape \(shape) does not fit \(bytes) bytes")
            }
            layout.append((t.name, dtype, shape, bytes))
        }
        expected = layout.map { ($0.name, $0.byteCount) }
        total = layout.reduce(0) { $0 + $1.byteCount }
        handle = try SafetensorsWriter.create(directory.appendingPathComponent("model.safetensors"), tensors: layout, metadata: metadata)
    }

    /// Appends a chunk, which must continue the current part at its current offset.
    func append(name: String, offset chunkOffset: Int, payload: Payload) throws {
        guard index < expected.count else { throw RuntimeError.protocolViolation("slice chunk '\(name)' after the last part") }
        let part = expected[index]
        guard name == part.name, chunkOffset == offset else {
            throw RuntimeError.protocolViolation("slice chunk '\(name)' at offset \(chunkOffset); expected '\(part.name)' at \(offset)")
        }
        guard offset + payload.count <= part.bytes else {
            throw RuntimeError.protocolViolation("slice chunk overruns '\(name)' (\(offset + payload.count) > \(part.bytes) bytes)")
        }
        payload.withUnsafeBytes { handle.write(Data($0)) }
        offset += payload.count
        received += payload.count
        if offset == part.bytes {
            index += 1
            offset = 0
        }
    }

    /// Marks the slice complete; throws if parts are missing.
    func finish(slice: ShardSlice) throws {
        guard index == expected.count else {
            throw RuntimeError.protocolViolation("slice transfer ended after \(index) of \(expected.count) parts")
        }
        try handle.close()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(slice).write(to: directory.appendingPathComponent("slice.json"))
    }

    func cancel() {
        try? handle.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

extension TensorDType {
    init?(wire: Shoal_V1_DType) {
        switch wire {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .i32: self = .i32
        default: return nil
        }
    }

    var wire: Shoal_V1_DType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .i32: return .i32
        default: return .unspecified
        }
    }
}
