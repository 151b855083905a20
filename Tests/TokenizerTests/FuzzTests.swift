import Foundation
import Testing

@testable import Tokenizer

/// Deterministic fuzzing: hostile or corrupt input must end in a thrown error, never a crash or hang.
@Suite struct FuzzTests {
    @Test func mutatedTokenizerFilesLoadOrThrow() throws {
        let base = Array(SyntheticTokenizer.byteLevelBPE(vocabularySize: 300, seed: 5))
        let significant = Array("{}[]\":,0123456789-etnul\\ aĠ".utf8)
        var random = SplitMix64(seed: 99)
        var loaded = 0
        var failed = 0
        for _ in 0..<400 {
            var bytes = base
            for _ in 0..<(1 + Int(random.next() % 3)) {
                let at = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[at] = significant[Int(random.next() % UInt64(significant.count))]
                case 1: bytes.remove(at: at)
                default: bytes.insert(significant[Int(random.next() % UInt64(significant.count))], at: at)
                }
            }
            do {
                let t = try Tokenizer(tokenizerJSON: Data(bytes), source: "fuzz.json")
                loaded += 1
                let ids = t.encode("Hello, fuzz! 123 🚀")
                _ = t.decode(ids + [-1, 1 << 30], skipSpecialTokens: true)
            } catch is TokenizerError {
                failed += 1
            }
        }
        #expect(loaded + failed == 400)
        #expect(failed > 0)
    }

    @Test func randomPatternsCompileOrThrow() {
        let atoms = ["a", "b", "(", ")", "|", "*", "+", "?", "*?", "++", "{2}", "{1,3}", "[", "]", "[^", "^", "$", #"\s"#, #"\S"#,
                     #"\w"#, "(?i:", "(?=", "(?!", "(?<=", "(?>", ".", #"\p{L}"#, #"\P{N}"#, "-", #"\"#, "ß", "é", #"\b"#, #"\d"#]
        let texts = ["", "a", "ab ba", "aab-b  x", "É ß\n12", "bbbbbbbbbbbb aaaa"].map { $0.unicodeScalars.map(\.value) }
        var random = SplitMix64(seed: 7)
        var compiled = 0
        for _ in 0..<3000 {
            var pattern = ""
            for _ in 0..<(1 + Int(random.next() % 10)) { pattern += atoms[Int(random.next() % UInt64(atoms.count))] }
            guard let regex = try? Regex(pattern) else { continue }
            compiled += 1
            for t in texts {
                let matches = regex.matches(in: t)
                for m in matches { #expect(m.lowerBound >= 0 && m.upperBound <= t.count, "\(pattern)") }
            }
        }
        #expect(compiled > 300)
    }
}
