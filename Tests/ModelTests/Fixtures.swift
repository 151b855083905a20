import Foundation
import Model

/// Locates Tests/Fixtures from this file, so tests run from any working directory.
enum Fixtures {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("Fixtures")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("tiny-llama").path) { return candidate }
        }
        fatalError("Tests/Fixtures not found above \(#filePath)")
    }()

    static func model(_ name: String) -> URL { root.appendingPathComponent(name) }

    /// A fresh temporary directory, removed by the caller with `cleanup`.
    static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// One prompt of a fixture's reference.json / reference.safetensors.
struct ReferencePrompt {
    let text: String
    let inputIDs: [Int]
    let greedyIDs: [Int]
    let prefillLogits: [Float]
    let stepLogits: [Float]
    let topKExperts: [Int]?

    static func load(_ model: URL) throws -> [ReferencePrompt] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: model.appendingPathComponent("reference.json"))) as! [String: Any]
        let prompts = json["prompts"] as! [[String: Any]]
        let tensors = try SafetensorsFile(url: model.appendingPathComponent("reference.safetensors"))
        return try prompts.enumerated().map { i, p in
            let key = "p\(i)."
            return ReferencePrompt(
                text: p["text"] as! String,
                inputIDs: try tensors.ints(key + "input_ids"),
                greedyIDs: try tensors.ints(key + "greedy_ids"),
                prefillLogits: try tensors.floats(key + "prefill_logits"),
                stepLogits: try tensors.floats(key + "greedy_step_logits"),
                topKExperts: tensors.tensors[key + "prefill_topk_experts"] != nil ? try tensors.ints(key + "prefill_topk_experts") : nil)
        }
    }
}

func maxAbsDifference(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    var m: Float = 0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y)) }
    return m
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float { maxAbsDifference(a[...], b[...]) }
