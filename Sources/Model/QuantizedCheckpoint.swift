import Foundation
import Kernels

/// Writes a copy of a checkpoint with its matrices in q8_0 or q4_0 (docs/QUANTIZED_FORMAT.md):
/// the same Hugging Face directory (config, tokenizer and other files copied), safetensors whose
/// quantized tensors are U8 [rows, cols / 32, block bytes] holding GGML blocks, named in each
/// file's `__metadata__`. Tensors are written in the order the engine reads them, so a block's
/// tensors are contiguous on disk for streaming.
public enum QuantizedCheckpoint {
    public struct Summary: Sendable {
        public var tensors: Int
        public var quantized: Int
        /// Matrices left in their precision because their width is not whole blocks.
        public var keptPrecision: [String]
        public var inputBytes: Int
        public var outputBytes: Int
        public var files: [String]
    }

    /// - progress: (input bytes done, input bytes total).
    @discardableResult
    public static func write(from checkpoint: Checkpoint, quantization: Quantization, to directory: URL,
                             maxShardBytes: Int = 2 << 30, progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let source = checkpoint.directory.standardizedFileURL.resolvingSymlinksInPath()
        let destination = directory.standardizedFileURL.resolvingSymlinksInPath()
        guard source.path != destination.path else {
            throw ModelError.invalidRequest("--out must differ from the model directory \(source.path)")
        }
        // A reading pass that touches nothing learns every matrix's role and the engine's order.
        let plan = try WeightLoader(checkpoint: checkpoint, slice: .full(checkpoint.config))
        plan.sizingOnly = true
        plan.quantization = quantization
        _ = try plan.embedding()
        for l in 0 ..< checkpoint.config.layerCount {
            _ = try plan.attentionBlock(l)
            _ = try plan.ffnBlock(l)
        }
        _ = try plan.finalNorm()
        _ = try plan.lmHead()
        var order: [String] = []
        var seen = Set<String>()
        for r in plan.requirements where seen.insert(r.name).inserted { order.append(r.name) }
        order += checkpoint.tensorNames.filter { !seen.contains($0) }
        let kept = Set(plan.keptPrecision)

        struct Item {
            var name: String
            var info: TensorInfo
            var file: SafetensorsFile
            /// Set when the tensor is re-encoded: (stored type, rows, cols, target type).
            var encode: (from: WeightType, rows: Int, cols: Int, to: WeightType)?
            var declared: WeightType?
            var outputBytes: Int
        }
        var items: [Item] = []
        for name in order {
            let info = try checkpoint.info(name)
            let file = try checkpoint.file(of: name)
            var item = Item(name: name, info: info, file: file, encode: nil, declared: nil, outputBytes: info.range.count)
            if let declared = file.metadata[QuantizedFormat.dtypePrefix + name], let t = WeightType(rawValue: declared.uppercased()) {
                item.declared = t  // already quantized: copied as it is (the loader pass checked its format)
            } else if let role = plan.matrixRoles[name], let want = quantization.target(for: role), !kept.contains(name),
                      let from = info.dtype.weightType, info.shape.count == 2 {
                let (rows, cols) = (info.shape[0], info.shape[1])
                item.encode = (from, rows, cols, want)
                item.declared = want
                item.outputBytes = rows * want.rowBytes(cols)
            }
            items.append(item)
        }

        var shards: [[Item]] = [[]]
        var shardBytes = 0
        for item in items {
            if shardBytes + item.outputBytes > maxShardBytes, !shards[shards.count - 1].isEmpty {
                shards.append([])
                shardBytes = 0
            }
            shards[shards.count - 1].append(item)
            shardBytes += item.outputBytes
        }

        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let reader = try TensorReader(checkpoint: checkpoint)
        let total = items.reduce(0) { $0 + $1.info.range.count }
        var done = 0
        var weightMap: [String: String] = [:]
        var files: [String] = []
        for (i, shard) in shards.enumerated() {
            let fileName = shards.count == 1 ? "model.safetensors" : String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
            files.append(fileName)
            var writer = SafetensorsWriter(metadata: ["format": "pt", QuantizedFormat.versionKey: QuantizedFormat.version,
                                                     QuantizedFormat.summaryKey: quantization.description])
            for item in shard {
                weightMap[item.name] = fileName
                if let t = item.declared { writer.metadata[QuantizedFormat.dtypePrefix + item.name] = t.name }
                if let e = item.encode {
                    writer.add(item.name, dtype: .u8, shape: [e.rows, e.cols / e.to.blockSize, QuantizedFormat.blockBytes(e.to)],
                               byteCount: item.outputBytes) { handle in
                        try encode(item.file, offset: item.info.range.lowerBound, rows: e.rows, cols: e.cols, from: e.from, to: e.to,
                                   reader: reader, handle: handle) { bytes in
                            done += bytes
                            progress?(done, total)
                        }
                    }
                } else {
                    writer.add(item.name, dtype: item.info.dtype, shape: item.info.shape, byteCount: item.info.range.count) { handle in
                        try copy(item.file, range: item.info.range, reader: reader, handle: handle) { bytes in
                            done += bytes
                            progress?(done, total)
                        }
                    }
                }
            }
            try writer.write(to: directory.appendingPathComponent(fileName))
        }
        let stale = directory.appendingPathComponent("model.safetensors.index.json")
        if shards.count > 1 {
            let outputTotal = items.reduce(0) { $0 + $1.outputBytes }
            let index: [String: Any] = ["metadata": ["total_size": outputTotal], "weight_map": weightMap]
            try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys]).write(to: stale)
        } else if FileManager.default.fileExists(atPath: stale.path) {
            try FileManager.default.removeItem(at: stale)
        }
        // Everything else (config, tokenizer, generation config) as it is.
        for url in try FileManager.default.contentsOfDirectory(at: checkpoint.directory, includingPropertiesForKeys: [.isRegularFileKey]) {
            let name = url.lastPathComponent
            guard !name.hasSuffix(".safetensors"), name != "model.safetensors.index.json",
                  (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let target = directory.appendingPathComponent(name)
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(at: url, to: target)
        }
        return Summary(tensors: items.count, quantized: items.filter { $0.encode != nil }.count, keptPrecision: plan.keptPrecision.sorted(),
                       inputBytes: total, outputBytes: items.reduce(0) { $0 + $1.outputBytes }, files: files)
    }

    /// Re-encodes a [rows, cols] matrix a few MB of rows at a time.
    private static func encode(_ file: SafetensorsFile, offset: Int, rows: Int, cols: Int, from: WeightType, to: WeightType,
                               reader: TensorReader, handle: FileHandle, done: (Int) -> Void) throws {
        let inRow = from.rowBytes(cols), outRow = to.rowBytes(cols)
        let chunk = max(1, (8 << 20) / inRow)
        let input = AlignedBytes(count: min(chunk, rows) * inRow)
        let output = AlignedBytes(count: min(chunk, rows) * outRow)
        var r = 0
        while r < rows {
            let n = min(chunk, rows - r)
            try reader.read(file, offset: offset + r * inRow, count: n * inRow, into: input.pointer)
            convertRows(from: input.pointer, type: from, sourceStride: inRow, rows: n, cols: cols, to: to, destination: output.pointer)
            handle.write(Data(bytesNoCopy: output.pointer, count: n * outRow, deallocator: .none))
            done(n * inRow)
            r += n
        }
    }

    private static func copy(_ file: SafetensorsFile, range: Range<Int>, reader: TensorReader, handle: FileHandle, done: (Int) -> Void) throws {
        let chunk = 8 << 20
        let buffer = AlignedBytes(count: min(chunk, max(range.count, 1)))
        var offset = range.lowerBound
        while offset < range.upperBound {
            let n = min(chunk, range.upperBound - offset)
            try reader.read(file, offset: offset, count: n, into: buffer.pointer)
            handle.write(Data(bytesNoCopy: buffer.pointer, count: n, deallocator: .none))
            done(n)
            offset += n
        }
    }
}
