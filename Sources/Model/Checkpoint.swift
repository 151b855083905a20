import Foundation
import Kernels

/// A Hugging Face model directory: `config.json`, one `model.safetensors` or shards listed in
/// `model.safetensors.index.json`, and the tokenizer files.
public final class Checkpoint: @unchecked Sendable {
    // Sendable: immutable after init.
    public let directory: URL
    public let config: ModelConfig
    public let files: [SafetensorsFile]
    private let index: [String: (file: SafetensorsFile, info: TensorInfo)]

    public init(directory: URL) throws {
        self.directory = directory
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.missingFile(directory.path, hint: "expected a model directory with config.json and safetensors files")
        }
        config = try ModelConfig.load(directory: directory)
        files = try Self.openWeights(directory: directory)
        var index: [String: (SafetensorsFile, TensorInfo)] = [:]
        for file in files {
            for (name, info) in file.tensors {
                if let other = index[name] {
                    throw ModelError.badSafetensors(file: file.url.path, reason: "tensor '\(name)' also appears in \(other.0.url.lastPathComponent)")
                }
                index[name] = (file, info)
            }
        }
        self.index = index
    }

    private static func openWeights(directory: URL) throws -> [SafetensorsFile] {
        let single = directory.appendingPathComponent("model.safetensors")
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: indexURL.path) {
            let data = try Data(contentsOf: indexURL)
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = object["weight_map"] as? [String: String]
            else {
                throw ModelError.badJSON(file: indexURL.path, reason: "expected an object with a 'weight_map' of tensor name -> file")
            }
            let shardNames = Set(map.values).sorted()
            let shards = try shardNames.map { name -> SafetensorsFile in
                let url = directory.appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: url.path) else {
                    throw ModelError.missingFile(url.path, hint: "listed in model.safetensors.index.json")
                }
                return try SafetensorsFile(url: url)
            }
            // The index must agree with the shards: a tensor listed in one file must be there.
            let byName = Dictionary(uniqueKeysWithValues: zip(shardNames, shards))
            for (tensor, file) in map where byName[file]?.tensors[tensor] == nil {
                throw ModelError.badSafetensors(file: directory.appendingPathComponent(file).path,
                                                reason: "model.safetensors.index.json lists tensor '\(tensor)' here but the file lacks it")
            }
            return shards
        }
        if FileManager.default.fileExists(atPath: single.path) { return [try SafetensorsFile(url: single)] }
        throw ModelError.missingFile(single.path, hint: "no model.safetensors and no model.safetensors.index.json in \(directory.path)")
    }

    public var tensorNames: [String] { index.keys.sorted() }

    public func has(_ name: String) -> Bool { index[name] != nil }

    public func info(_ name: String) throws -> TensorInfo {
        guard let entry = index[name] else { throw ModelError.missingTensor(name: name, directory: directory.path) }
        return entry.info
    }

    /// The file holding a tensor (for streaming reads and identity hashes).
    public func file(of name: String) throws -> SafetensorsFile {
        guard let entry = index[name] else { throw ModelError.missingTensor(name: name, directory: directory.path) }
        return entry.file
    }

    /// Checks a tensor's shape and returns its mapped bytes.
    public func tensor(_ name: String, shape: [Int]) throws -> (info: TensorInfo, bytes: UnsafeRawBufferPointer, owner: SafetensorsFile) {
        guard let (file, info) = index[name] else { throw ModelError.missingTensor(name: name, directory: directory.path) }
        guard info.shape == shape else { throw ModelError.tensorShape(name: name, expected: shape, found: info.shape) }
        return (info, file.bytes(of: info), file)
    }

    /// A small tensor (norm weights, biases) as f32 values.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        let t = try tensor(name, shape: shape)
        return try SafetensorsFile.floats(info: t.info, bytes: t.bytes)
    }

    /// Total bytes of all weights (for progress and memory planning).
    public var weightBytes: Int { index.values.reduce(0) { $0 + $1.info.range.count } }
}
