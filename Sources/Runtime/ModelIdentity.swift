import Foundation
import Model

/// A fingerprint of a checkpoint: config.json and every safetensors header (names, dtypes,
/// shapes, offsets) — not the weights themselves, which would mean reading gigabytes. Two
/// directories with the same identity hold the same tensors in the same places.
public enum ModelIdentity {
    public static func of(directory: URL) throws -> String {
        var hash = FNV1a()
        let config = directory.appendingPathComponent("config.json")
        guard let configData = FileManager.default.contents(atPath: config.path) else {
            throw ModelError.missingFile(config.path, hint: "a model directory needs config.json")
        }
        hash.add(configData)
        let checkpointFiles = try Checkpoint(directory: directory).files
        for file in checkpointFiles {
            hash.add(Data(file.url.lastPathComponent.utf8))
            let bytes = file.mapping.bytes
            let headerLength = Int(bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian)
            hash.add(Data(bytes[0 ..< 8 + headerLength]))
        }
        return hash.hex
    }
}

/// 64-bit FNV-1a, twice with different offsets for 128 bits: a fingerprint, not a defence
/// against forgery (the cluster token is what keeps strangers out).
struct FNV1a {
    private var a: UInt64 = 0xCBF2_9CE4_8422_2325
    private var b: UInt64 = 0x6C62_272E_07BB_0142

    mutating func add(_ data: Data) {
        for byte in data {
            a = (a ^ UInt64(byte)) &* 0x100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x100_0000_01B3
        }
    }

    mutating func add(_ string: String) { add(Data(string.utf8)) }

    var hex: String { String(format: "%016llx%016llx", a, b) }
}
