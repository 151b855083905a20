import Foundation
import Testing

@testable import Tokenizer

/// Engine behaviour beyond the Oniguruma-recorded fixtures (pretokenize.json), and the measurement
/// behind choosing this engine over Foundation's.
@Suite struct RegexTests {
    static func split(_ pattern: String, _ text: String) throws -> [String] {
        let regex = try Regex(pattern)
        let scalars = text.unicodeScalars.map(\.value)
        return regex.matches(in: scalars).map { scalarsToString(scalars[$0]) }
    }

    @Test func semantics() throws {
        #expect(try Self.split(#"\s+(?!\S)|\s+"#, "a   b  ") == ["  ", " ", "  "])
        #expect(try Self.split(#"(?i:'s|'t)"#, "IT'S it's It'T") == ["'S", "'s", "'T"])
        #expect(try Self.split(#"\p{N}{1,3}"#, "1234567") == ["123", "456", "7"])
        #expect(try Self.split("a*", "baac") == ["", "aa", ""])
        // (?-i:) turns folding off again; "ß" folds to "ss" in either direction of the pattern.
        #expect(try Self.split("(?i)stra(?-i:SSE)|(?i:straße)", "STRASSE strasse STRAße StraSSe") == ["STRASSE", "strasse", "STRAße", "StraSSe"])
        #expect(try Self.split(#"\bis\b"#, "this is island is") == ["is", "is"])
        #expect(try Self.split(#"(?<=\d)[a-z]+"#, "1abc def 2gh") == ["abc", "gh"])
        #expect(try Self.split(#"x{2}+"#, "xxxxxx") == ["xxxxxx"])
        #expect(try Self.split(#"[\]\-\\a-c]+"#, #"zab-]\c"#) == [#"ab-]\c"#])
        // Oniguruma's \s includes U+000B and U+0085; ICU's does not.
        #expect(try Self.split(#"\s"#, "a\u{0B}b\u{85}c\u{A0}d") == ["\u{0B}", "\u{85}", "\u{A0}"])
        // Emoji and combining marks are scalars, never split inside a UTF-8 sequence.
        #expect(try Self.split(#"\p{L}+|\p{M}+|."#, "e\u{301}🚀") == ["e", "\u{301}", "🚀"])
    }

    @Test func pathologicalInputStaysLinearEnough() throws {
        let regex = try Regex(PreTokenizer.gpt2Pattern)
        let text = Array(repeating: UInt32(0x20), count: 20_000) + [0x78]
        let start = ContinuousClock.now
        let m = regex.matches(in: text)
        #expect(m.count == 2)
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    /// Compares this engine with NSRegularExpression on the Llama 3 split pattern (prints timings;
    /// the assertion is only that both find the same pieces on text where their \s agree).
    @Test func throughputAgainstNSRegularExpression() throws {
        let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let paragraph = "The model's KV cache holds 4096 tokens; we'll split layers across 8 nodes.\n  Café naïve 東京 🚀 x**2 == y\n"
        let text = String(repeating: paragraph, count: 400)
        let scalars = text.unicodeScalars.map(\.value)
        let ours = try Regex(pattern)
        var t0 = ContinuousClock.now
        let mine = ours.matches(in: scalars).map { scalarsToString(scalars[$0]) }
        let oursTime = ContinuousClock.now - t0

        let ns = try NSRegularExpression(pattern: pattern)
        t0 = ContinuousClock.now
        let nsString = text as NSString
        let theirs = ns.matches(in: text, range: NSRange(location: 0, length: nsString.length)).map { nsString.substring(with: $0.range) }
        let nsTime = ContinuousClock.now - t0
        #expect(mine == theirs)
        print("Llama-3 split of \(text.utf8.count) bytes: this engine \(oursTime), NSRegularExpression \(nsTime)")
    }
}
