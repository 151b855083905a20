import Foundation
import Testing

@testable import Tokenizer

/// The reference fixture from the model checkpoints: ids and text must equal Hugging Face's.
@Suite struct ParityTests {
    struct Case {
        let text: String
        let idsWithBOS: [Int]
        let idsNoSpecial: [Int]
        let decoded: String
    }

    static func cases() throws -> [Case] {
        let list = try #require(try Fixtures.json("tokenizer/parity.json") as? [[String: Any]])
        return try list.map { c in
            Case(text: try #require(c["text"] as? String),
                 idsWithBOS: try #require(c["ids_with_bos"] as? [Int]),
                 idsNoSpecial: try #require(c["ids_no_special"] as? [Int]),
                 decoded: try #require(c["decoded"] as? String))
        }
    }

    static func tokenizer() throws -> Tokenizer {
        try Tokenizer(directory: Fixtures.url("tokenizer"))
    }

    @Test func idsMatchHuggingFace() throws {
        let tokenizer = try Self.tokenizer()
        let cases = try Self.cases()
        #expect(cases.count == 12)
        for c in cases {
            #expect(tokenizer.encode(c.text) == c.idsWithBOS, "text: \(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text, addSpecialTokens: false) == c.idsNoSpecial, "text: \(c.text.debugDescription)")
        }
    }

    /// `decoded` is `decode(ids_no_special, skip_special_tokens=False)` (the case with "<|bos|>" in
    /// its text rules out decoding the BOS-prefixed ids either way).
    @Test func decodeMatchesHuggingFace() throws {
        let tokenizer = try Self.tokenizer()
        for c in try Self.cases() {
            #expect(tokenizer.decode(c.idsNoSpecial) == c.decoded, "text: \(c.text.debugDescription)")
            #expect(tokenizer.decode(c.idsWithBOS, skipSpecialTokens: true) == c.decoded.replacingOccurrences(of: "<|bos|>", with: "").replacingOccurrences(of: "<|eos|>", with: ""))
        }
    }

    @Test func specialTokensFromConfigAndTemplate() throws {
        let tokenizer = try Self.tokenizer()
        #expect(tokenizer.bosTokenID == 0)
        #expect(tokenizer.eosTokenID == 1)
        #expect(tokenizer.tokenID("<|pad|>") == 2)
        #expect(tokenizer.tokenString(0) == "<|bos|>")
        #expect(tokenizer.vocabularySize == 2048)
        // Without tokenizer_config.json, BOS comes from the template.
        let data = try Data(contentsOf: Fixtures.url("tokenizer/tokenizer.json"))
        let bare = try Tokenizer(tokenizerJSON: data, source: "tokenizer.json")
        #expect(bare.bosTokenID == 0)
        #expect(bare.eosTokenID == nil)
    }

    /// The model fixtures' prompts were encoded by transformers; they must round-trip here too.
    @Test(arguments: ["tiny-llama", "tiny-mixtral"])
    func referencePromptIDs(model: String) throws {
        let tokenizer = try Tokenizer(directory: Fixtures.url(model))
        let reference = try #require(try Fixtures.json("\(model)/reference.json") as? [String: Any])
        let prompts = try #require(reference["prompts"] as? [[String: Any]])
        #expect(!prompts.isEmpty)
        for p in prompts {
            let text = try #require(p["text"] as? String)
            let ids = try #require(p["input_ids"] as? [Int])
            #expect(tokenizer.encode(text) == ids)
            let greedy = try #require(p["greedy_ids"] as? [Int])
            let greedyText = try #require(p["greedy_text"] as? String)
            #expect(tokenizer.decode(greedy, skipSpecialTokens: true) == greedyText)
        }
    }
}
