import Foundation
import Testing

@testable import Tokenizer

@Suite struct JSONTests {
    static func root(_ text: String) throws -> JSONValue {
        try JSONDocument(data: Data(text.utf8), source: "test.json").root
    }

    @Test func escapesAndSurrogates() throws {
        let v = try Self.root(#"{"a": "q\"b\\s\/n\nt\tu\u00e9\ud83d\ude80\ud800x", "k\u0065y": 1}"#)
        #expect(try v.required("a").string() == "q\"b\\s/n\nt\tué🚀\u{FFFD}x")
        #expect(try v.required("key").int() == 1)  // keys are compared after unescaping
    }

    @Test func numbersAndLiterals() throws {
        let v = try Self.root(#"{"i": -42, "f": 1.5e3, "t": true, "n": null, "big": 3.0}"#)
        #expect(try v.required("i").int() == -42)
        #expect(try v.required("f").double() == 1500)
        #expect(try v.required("t").bool())
        #expect(try v.optional("n") == nil)
        #expect(throws: TokenizerError.self) { try v.required("big").int() }
        #expect(throws: TokenizerError.self) { try v.required("t").string() }
    }

    @Test func pathsInErrors() throws {
        let v = try Self.root(#"{"a": {"list": [1, {"x": "s"}]}}"#)
        let x = try v.required("a").required("list").array()[1].required("x")
        #expect(x.path == "a.list[1].x")
        do {
            _ = try x.int()
            Issue.record("expected an error")
        } catch let e as TokenizerError {
            #expect(e.description == "test.json: a.list[1].x: expected an integer, found a string")
        }
    }

    @Test func rejectsMalformedDocuments() {
        for bad in ["{", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "01x", "\"\u{01}\"", "nul", "{} {}", "[1 2]"] {
            #expect(throws: TokenizerError.self, "\(bad.debugDescription)") { try Self.root(bad) }
        }
    }
}

@Suite struct ConcurrencyAndScaleTests {
    /// One loaded tokenizer is shared by concurrent tasks (it is immutable and Sendable).
    @Test func concurrentEncodingAgrees() async throws {
        let tokenizer = try Tokenizer(directory: Fixtures.url("tokenizers/llama3"))
        let texts = (0..<16).map { "Request \($0): DON'T split 12345 東京 🚀 across nodes." }
        let expected = texts.map { tokenizer.encode($0) }
        let results = await withTaskGroup(of: (Int, [Int]).self) { group in
            for (i, t) in texts.enumerated() { group.addTask { (i, tokenizer.encode(t)) } }
            var out = [[Int]](repeating: [], count: texts.count)
            for await (i, ids) in group { out[i] = ids }
            return out
        }
        #expect(results == expected)
    }

    /// A single 60k-character word goes through the heap-based merge in one piece.
    @Test func longWordEncodes() throws {
        let tokenizer = try Tokenizer(directory: Fixtures.url("tokenizers/synthetic"))
        let word = String(repeating: "anwtfyebxdeaurvq", count: 4000)
        let start = ContinuousClock.now
        let ids = tokenizer.encode(word, addSpecialTokens: false)
        let elapsed = ContinuousClock.now - start
        #expect(tokenizer.decode(ids) == word)
        #expect(ids.count < word.utf8.count)
        print("BPE on one \(word.utf8.count)-byte word: \(ids.count) ids in \(elapsed)")
    }
}
