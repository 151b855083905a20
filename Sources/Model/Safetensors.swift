import Foundation
import Kernels

/// Element types a safetensors header may name.
public enum TensorDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    /// The kernel weight type this dtype is read as, if the kernels can read it in place.
    public var weightType: WeightType? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        default: return nil
        }
    }
}

/// One tensor inside a safetensors file.
public struct TensorInfo: Sendable {
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]
    /// Byte range relative to the start of the file.
    public let range: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped safetensors file whose header has been checked against the file: every
/// tensor's byte range lies inside the data section and matches its dtype and shape, so a
/// truncated download or a lying header fails here, with the tensor named, not later in a kernel.
public final class SafetensorsFile: @unchecked Sendable {
    // Sendable: immutable after init; the mapping is read-only.
    public let url: URL
    public let mapping: MappedFile
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]

    public init(url: URL) throws {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw ModelError.missingFile(path, hint: "expected a safetensors weight file")
        }
        self.url = url
        mapping = try MappedFile(url: url)
        let bytes = mapping.bytes
        guard bytes.count >= 8 else {
            throw ModelError.badSafetensors(file: path, reason: "file is \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = Int(bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian)
        guard headerLength > 0, headerLength <= bytes.count - 8 else {
            throw ModelError.badSafetensors(file: path, reason: "header length \(headerLength) exceeds the file size \(bytes.count) (truncated file?)")
        }
        let headerData = Data(bytes[8 ..< 8 + headerLength])
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw ModelError.badSafetensors(file: path, reason: "header is not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw ModelError.badSafetensors(file: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                if let meta = value as? [String: Any] {
                    for (k, v) in meta { metadata[k] = v as? String ?? "\(v)" }
                }
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any],
                  let offsetsAny = entry["data_offsets"] as? [Any], offsetsAny.count == 2
            else {
                throw ModelError.badSafetensors(file: path, reason: "tensor '\(name)': entry needs dtype, shape and data_offsets")
            }
            guard let dtype = TensorDType(rawValue: dtypeName) else {
                throw ModelError.badSafetensors(file: path, reason: "tensor '\(name)': unknown dtype '\(dtypeName)'")
            }
            let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
            let offsets = offsetsAny.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeAny.count, offsets.count == 2, shape.allSatisfy({ $0 >= 0 }) else {
                throw ModelError.badSafetensors(file: path, reason: "tensor '\(name)': shape and data_offsets must be non-negative integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin else {
                throw ModelError.badSafetensors(file: path, reason: "tensor '\(name)': data_offsets [\(begin), \(end)] are not an increasing range")
            }
            guard end <= dataLength else {
                throw ModelError.badSafetensors(
                    file: path,
                    reason: "tensor '\(name)': data_offsets end at \(end) but the data section has only \(dataLength) bytes (truncated file?)")
            }
            let expectedBytes = shape.reduce(1, *) * dtype.size
            guard end - begin == expectedBytes else {
                throw ModelError.badSafetensors(
                    file: path,
                    reason: "tensor '\(name)': \(dtypeName) \(shape) needs \(expectedBytes) bytes but data_offsets span \(end - begin)")
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, range: dataStart + begin ..< dataStart + end)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor's bytes inside the mapping.
    public func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: mapping.bytes[info.range])
    }

    /// Reads a tensor of any float dtype as f32 values (copies).
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw ModelError.missingTensor(name: name, directory: url.path) }
        return try Self.floats(info: info, bytes: bytes(of: info))
    }

    /// Reads an integer tensor (I32 or I64) as Ints.
    public func ints(_ name: String) throws -> [Int] {
        guard let info = tensors[name] else { throw ModelError.missingTensor(name: name, directory: url.path) }
        let raw = bytes(of: info)
        switch info.dtype {
        case .i32: return (0 ..< info.elementCount).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
        case .i64: return (0 ..< info.elementCount).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
        default: throw ModelError.tensorDType(name: name, found: info.dtype.rawValue, supported: ["I32", "I64"])
        }
    }

    static func floats(info: TensorInfo, bytes raw: UnsafeRawBufferPointer) throws -> [Float] {
        let n = info.elementCount
        switch info.dtype {
        case .f64:
            return (0 ..< n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
        case .f32, .f16, .bf16:
            var out = [Float](repeating: 0, count: n)
            let type = info.dtype.weightType!
            // Copy to an aligned scratch first: data offsets need not be element-aligned.
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(raw.count, 1), alignment: 64)
            defer { scratch.deallocate() }
            if raw.count > 0 { scratch.copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
            out.withUnsafeMutableBufferPointer { dst in
                ck_to_f32(type.ckType, scratch, dst.baseAddress, n)
            }
            return out
        default:
            throw ModelError.tensorDType(name: info.name, found: info.dtype.rawValue, supported: ["F32", "F16", "BF16", "F64"])
        }
    }
}

/// Writes safetensors files (logit dumps, synthetic checkpoints, weight caches).
public struct SafetensorsWriter {
    public struct Entry {
        public let name: String
        public let dtype: TensorDType
        public let shape: [Int]
        public let byteCount: Int
        let write: (FileHandle) throws -> Void
    }

    private var entries: [Entry] = []
    public var metadata: [String: String] = [:]

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    public mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        precondition(shape.reduce(1, *) == floats.count, "shape \(shape) does not match \(floats.count) values for \(name)")
        let data = floats.withUnsafeBytes { Data($0) }
        add(name, dtype: .f32, shape: shape, data: data)
    }

    public mutating func add(_ name: String, ints: [Int32], shape: [Int]) {
        precondition(shape.reduce(1, *) == ints.count)
        add(name, dtype: .i32, shape: shape, data: ints.withUnsafeBytes { Data($0) })
    }

    public mutating func add(_ name: String, dtype: TensorDType, shape: [Int], data: Data) {
        entries.append(Entry(name: name, dtype: dtype, shape: shape, byteCount: data.count) { $0.write(data) })
    }

    /// Adds a tensor whose bytes are produced while writing (large synthetic weights never sit in memory whole).
    public mutating func add(_ name: String, dtype: TensorDType, shape: [Int], byteCount: Int, producer: @escaping (FileHandle) throws -> Void) {
        entries.append(Entry(name: name, dtype: dtype, shape: shape, byteCount: byteCount, write: producer))
    }

    public var totalBytes: Int { entries.reduce(0) { $0 + $1.byteCount } }

    public func write(to url: URL) throws {
        let handle = try Self.create(url, tensors: entries.map { ($0.name, $0.dtype, $0.shape, $0.byteCount) }, metadata: metadata)
        defer { try? handle.close() }
        for e in entries { try e.write(handle) }
    }

    /// The 8-byte length and the JSON header (padded so the data section is 64-byte aligned) for
    /// tensors laid out back to back in the given order.
    public static func header(tensors: [(name: String, dtype: TensorDType, shape: [Int], byteCount: Int)],
                              metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.byteCount]] as [String: Any]
            offset += t.byteCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (json.count + 8) % 64 != 0 { json.append(0x20) }
        var length = UInt64(json.count).littleEndian
        return Data(bytes: &length, count: 8) + json
    }

    /// Creates `url` with the header written; the caller appends the tensors' bytes in order.
    public static func create(_ url: URL, tensors: [(name: String, dtype: TensorDType, shape: [Int], byteCount: Int)],
                              metadata: [String: String] = [:]) throws -> FileHandle {
        let header = try header(tensors: tensors, metadata: metadata)
        guard FileManager.default.createFile(atPath: url.path, contents: header), let handle = try? FileHandle(forWritingTo: url) else {
            throw ModelError.io(file: url.path, reason: "cannot create the file")
        }
        try handle.seekToEnd()
        return handle
    }
}
