import Foundation
import Testing

@testable import Tokenizer

@Suite struct SyntheticTokenizerTests {
    /// The committed fixture is this exact output; Python tokenizers recorded its cases
    /// (FixtureTokenizerTests, layout "synthetic"), which shows tokenizers accepts the file.
    /// Regenerate with SHOAL_WRITE_TOKENIZER_FIXTURES=1, then rerun Scripts/gen-tokenizer-fixtures.py.
    @Test func matchesCommittedFixture() throws {
        let data = SyntheticTokenizer.byteLevelBPE(vocabularySize: 1000, seed: 42)
        let url = Fixtures.url("tokenizers/synthetic/tokenizer.json")
        if ProcessInfo.processInfo.environment["SHOAL_WRITE_TOKENIZER_FIXTURES"] == "1" {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        #expect(try Data(contentsOf: url) == data)
    }

    @Test func deterministicAndSized() throws {
        let a = SyntheticTokenizer.byteLevelBPE(vocabularySize: 5000, bos: "<|begin|>", eos: "<|end|>", seed: 7)
        #expect(a == SyntheticTokenizer.byteLevelBPE(vocabularySize: 5000, bos: "<|begin|>", eos: "<|end|>", seed: 7))
        #expect(a != SyntheticTokenizer.byteLevelBPE(vocabularySize: 5000, bos: "<|begin|>", eos: "<|end|>", seed: 8))
        let tokenizer = try Tokenizer(tokenizerJSON: a, source: "synthetic")
        #expect(tokenizer.vocabularySize == 5000)
        #expect(tokenizer.bosTokenID == 4998)
        #expect(tokenizer.tokenID("<|end|>") == 4999)
        let text = "The quick brown fox jumps over the lazy dog. Ünïcödé 🚀 \"quotes\" \\ back\nslash"
        let ids = tokenizer.encode(text)
        #expect(ids.first == 4998)
        #expect(ids.count < text.utf8.count)  // merges actually fire on ordinary text
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == text)
        #expect(tokenizer.decode([4998] + ids.dropFirst() + [4999]) == "<|begin|>" + text + "<|end|>")
    }

    @Test func tinySizesAreRaisedToTheAlphabet() throws {
        let tokenizer = try Tokenizer(tokenizerJSON: SyntheticTokenizer.byteLevelBPE(vocabularySize: 3, seed: 1), source: "tiny")
        #expect(tokenizer.vocabularySize == 258)
        #expect(tokenizer.decode(tokenizer.encode("héllo"), skipSpecialTokens: true) == "héllo")
    }

    /// Qwen2/Llama-3-sized vocabularies must load in well under a second. Prints the measured time
    /// (no assertion on it: machines differ).
    @Test func loadTimeOf150kVocabulary() throws {
        let start = ContinuousClock.now
        let data = SyntheticTokenizer.byteLevelBPE(vocabularySize: 151_936, seed: 3)
        let synthesized = ContinuousClock.now - start
        var best = Duration.seconds(1000)
        var tokenizer: Tokenizer?
        for _ in 0..<3 {
            let t0 = ContinuousClock.now
            tokenizer = try Tokenizer(tokenizerJSON: data, source: "synthetic-152k")
            best = min(best, ContinuousClock.now - t0)
        }
        let loaded = try #require(tokenizer)
        #expect(loaded.vocabularySize == 151_936)
        let text = String(repeating: "Distributed inference splits layers across nodes; experts route tokens. ", count: 200)
        let t1 = ContinuousClock.now
        let ids = loaded.encode(text)
        let encodeTime = ContinuousClock.now - t1
        #expect(loaded.decode(ids, skipSpecialTokens: true) == text)
        print("tokenizer.json with 151936 tokens (\(data.count / 1024) KiB, synthesized in \(synthesized)): load \(best) (best of 3); encode \(text.utf8.count) bytes -> \(ids.count) ids in \(encodeTime)")
    }
}
