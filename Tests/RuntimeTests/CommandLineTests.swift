import Foundation
import Model
import Testing

/// The CLI as a user runs it: JSON report, streamed text, logit dumps, errors.
struct CommandLineTests {
    @Test func generateJSONReportsIdsTextAndTimings() throws {
        let r = try runCommand(Paths.coordinator, ["generate", "--model", Paths.model("tiny-llama").path, "--prompt",
                                                    "The future of distributed inference", "--max-tokens", "32", "--json", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let last = try #require(r.stdout.split(separator: "\n").last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(json["prompt_tokens"] as? [Int] == [0, 331, 1911, 430, 290, 1616, 320, 289, 743])
        #expect((json["tokens"] as? [Int])?.prefix(8) == [16, 674, 1329, 260, 1706, 1529, 1709, 1605])
        #expect((json["text"] as? String)?.hasPrefix(". We propose a novel") == true)
        #expect((json["ttft_ms"] as? Double ?? 0) > 0 && (json["tpot_ms"] as? Double ?? 0) > 0)
    }

    @Test func streamedTextEqualsTheJSONText() throws {
        let args = ["generate", "--model", Paths.model("tiny-mixtral").path, "--prompt", "Q: What is a mixture of experts?\nA:", "--max-tokens", "32"]
        let streamed = try runCommand(Paths.coordinator, args)
        let json = try runCommand(Paths.coordinator, args + ["--json"])
        let text = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.split(separator: "\n").last!.utf8)) as? [String: Any])["text"] as? String
        #expect(streamed.stdout == (text ?? "") + "\n")
    }

    @Test func dumpedLogitsMatchTheReference() throws {
        let dir = Paths.temporaryDirectory("dump")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("logits.safetensors")
        let r = try runCommand(Paths.coordinator, ["generate", "--model", Paths.model("tiny-llama").path, "--prompt", "You will be",
                                                    "--max-tokens", "32", "--dump-logits", out.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let dump = try SafetensorsFile(url: out)
        let ref = try SafetensorsFile(url: Paths.model("tiny-llama").appendingPathComponent("reference.safetensors"))
        #expect(dump.tensors["prefill_logits"]?.shape == [4, 2048] && dump.tensors["step_logits"]?.shape == [32, 2048])
        #expect(maxAbsDifference(try dump.floats("prefill_logits"), try ref.floats("p3.prefill_logits")) < 1e-3)
        #expect(maxAbsDifference(try dump.floats("step_logits"), try ref.floats("p3.greedy_step_logits")) < 1e-3)
    }

    @Test func badInputIsAClearErrorAndANonZeroExit() throws {
        let missing = try runCommand(Paths.coordinator, ["generate", "--model", "/nonexistent/model", "--prompt", "x"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/model"))
        let long = try runCommand(Paths.coordinator, ["generate", "--model", Paths.model("tiny-llama").path, "--prompt", "x", "--max-tokens", "600"])
        #expect(long.status != 0 && long.stderr.contains("context of 512"))
        let preset = try runCommand(Paths.coordinator, ["synth-model", "--preset", "gpt-9", "--out", "/tmp/never"])
        #expect(preset.status != 0 && preset.stderr.contains("tinyllama-1.1b"))
    }

    @Test func synthModelIsDeterministicAndLoadable() throws {
        let a = Paths.temporaryDirectory("synth-a"), b = Paths.temporaryDirectory("synth-b")
        defer {
            try? FileManager.default.removeItem(at: a)
            try? FileManager.default.removeItem(at: b)
        }
        for dir in [a, b] {
            let r = try runCommand(Paths.coordinator, ["synth-model", "--preset", "tiny-qwen2-moe", "--dtype", "bf16", "--out", dir.path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let fa = try Data(contentsOf: a.appendingPathComponent("model.safetensors"))
        let fb = try Data(contentsOf: b.appendingPathComponent("model.safetensors"))
        #expect(fa == fb)
        let gen = try runCommand(Paths.coordinator, ["generate", "--model", a.path, "--prompt", "hello", "--max-tokens", "4", "--json"])
        #expect(gen.status == 0, "\(gen.stderr)")
    }
}
