import Foundation
import Model
import Testing

struct SafetensorsTests {
    func file(header: String, data: [UInt8]) throws -> URL {
        let dir = try Fixtures.temporaryDirectory("st")
        let url = dir.appendingPathComponent("model.safetensors")
        var bytes = Data()
        var n = UInt64(header.utf8.count).littleEndian
        bytes.append(Data(bytes: &n, count: 8))
        bytes.append(Data(header.utf8))
        bytes.append(contentsOf: data)
        try bytes.write(to: url)
        return url
    }

    @Test func roundTripsThroughTheWriter() throws {
        let dir = try Fixtures.temporaryDirectory("st")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("t.safetensors")
        var w = SafetensorsWriter(metadata: ["k": "v"])
        w.add("a", floats: [1, 2, 3, 4, 5, 6], shape: [2, 3])
        w.add("b", ints: [7, -8], shape: [2])
        try w.write(to: url)
        let f = try SafetensorsFile(url: url)
        #expect(try f.floats("a") == [1, 2, 3, 4, 5, 6])
        #expect(try f.ints("b") == [7, -8])
        #expect(f.tensors["a"]?.shape == [2, 3] && f.metadata["k"] == "v")
    }

    @Test func headerThatLiesAboutSizesNamesTheTensor() throws {
        let url = try file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#, data: Array(repeating: 0, count: 12))
        #expect {
            try SafetensorsFile(url: url)
        } throws: { "\($0)".contains("'w'") && "\($0)".contains("16 bytes") }
    }

    @Test func truncatedDataIsDetected() throws {
        let url = try file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: Array(repeating: 0, count: 8))
        #expect { try SafetensorsFile(url: url) } throws: { "\($0)".contains("truncated") }
    }

    @Test func headerLongerThanFile() throws {
        let dir = try Fixtures.temporaryDirectory("st")
        let url = dir.appendingPathComponent("x.safetensors")
        var n = UInt64(1_000_000).littleEndian
        try Data(bytes: &n, count: 8).write(to: url)
        #expect { try SafetensorsFile(url: url) } throws: { "\($0)".contains("exceeds the file size") }
    }

    @Test func missingFileIsNamed() {
        #expect { try SafetensorsFile(url: URL(fileURLWithPath: "/nonexistent/model.safetensors")) } throws: {
            "\($0)".contains("/nonexistent/model.safetensors")
        }
    }

    @Test func wrongShapeNamesTensorExpectedAndFound() throws {
        let dir = try Fixtures.temporaryDirectory("shape")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Fixtures.model("tiny-llama")
        for f in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        // Rewrite the checkpoint with one tensor transposed.
        let original = try SafetensorsFile(url: src.appendingPathComponent("model.safetensors"))
        var w = SafetensorsWriter()
        for (name, info) in original.tensors.sorted(by: { $0.key < $1.key }) {
            let values = try original.floats(name)
            let shape = name == "model.layers.1.mlp.down_proj.weight" ? info.shape.reversed() : info.shape
            w.add(name, floats: values, shape: Array(shape))
        }
        try w.write(to: dir.appendingPathComponent("model.safetensors"))
        #expect {
            try LoadedModel(directory: dir, threads: 1)
        } throws: { error in
            error as? ModelError == .tensorShape(name: "model.layers.1.mlp.down_proj.weight", expected: [256, 768], found: [768, 256])
        }
    }

    @Test func shardedCheckpointLoadsThroughItsIndex() throws {
        let dir = try Fixtures.temporaryDirectory("sharded")
        defer { try? FileManager.default.removeItem(at: dir) }
        try SyntheticCheckpoint.write(try SyntheticPreset.named("tiny-qwen2"), dtype: .f32, to: dir, maxShardBytes: 100_000)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors.index.json").path))
        let checkpoint = try Checkpoint(directory: dir)
        #expect(checkpoint.files.count > 1)
        _ = try LoadedModel(directory: dir, threads: 1)
        // An index naming a missing shard is an error naming that file.
        try FileManager.default.removeItem(at: dir.appendingPathComponent(checkpoint.files[1].url.lastPathComponent))
        #expect { try Checkpoint(directory: dir) } throws: { "\($0)".contains(checkpoint.files[1].url.lastPathComponent) }
    }
}
