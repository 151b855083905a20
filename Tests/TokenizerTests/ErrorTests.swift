import Foundation
import Testing

@testable import Tokenizer

/// Bad input must produce a thrown error naming the file and the JSON field, never a crash.
@Suite struct ErrorTests {
    static let base = String(decoding: SyntheticTokenizer.byteLevelBPE(vocabularySize: 300, seed: 1), as: UTF8.self)

    /// The synthetic file with one JSON fragment replaced.
    static func variant(_ old: String, _ new: String) throws -> Data {
        #expect(base.contains(old), "fixture text \(old) not found")
        return Data(base.replacingOccurrences(of: old, with: new).utf8)
    }

    static func error(_ data: Data, config: Data? = nil) -> TokenizerError? {
        do {
            _ = try Tokenizer(tokenizerJSON: data, configJSON: config, source: "/models/x/tokenizer.json")
            return nil
        } catch let e as TokenizerError {
            return e
        } catch {
            Issue.record("unexpected error type \(error)")
            return nil
        }
    }

    @Test func missingFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-missing-\(UUID().uuidString)")
        #expect(throws: TokenizerError.self) { try Tokenizer(directory: dir) }
        do {
            _ = try Tokenizer(directory: dir)
        } catch let e as TokenizerError {
            #expect(e.file.hasSuffix("tokenizer.json"))
            #expect(e.description.contains("file not found"))
        }
    }

    @Test func malformedJSON() throws {
        let e = try #require(Self.error(Data("{\"model\": {\"type\": \"BPE\",\n  \"vocab\": {\"a\": 0,, }}}".utf8)))
        #expect(e.file == "/models/x/tokenizer.json")
        #expect(e.message.contains("malformed JSON at line 2"))
        #expect(Self.error(Data("".utf8))?.message.contains("unexpected end of input") == true)
        #expect(Self.error(Data("[1, 2]".utf8))?.message.contains("expected a JSON object") == true)
        #expect(Self.error(Data("{\"a\": \"\\x\"}".utf8))?.message.contains("invalid escape") == true)
        #expect(Self.error(Data([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]))?.message.contains("invalid UTF-8") == true)
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(Self.error(Data(deep.utf8))?.message.contains("nesting deeper") == true)
    }

    @Test func malformedConfigNamesTheConfigFile() throws {
        let e = try #require(Self.error(Data(Self.base.utf8), config: Data("{\"bos_token\": 3".utf8)))
        #expect(e.file == "/models/x/tokenizer_config.json")
        let e2 = try #require(Self.error(Data(Self.base.utf8), config: Data("{\"bos_token\": 3}".utf8)))
        #expect(e2.path == "bos_token")
    }

    @Test func unsupportedComponentTypesNameTypeAndPath() throws {
        let pre = try #require(Self.error(try Self.variant(
            "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}",
            "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},{\"type\":\"BertPreTokenizer\"}]}")))
        #expect(pre.path == "pre_tokenizer.pretokenizers[1].type")
        #expect(pre.message.contains("\"BertPreTokenizer\""))
        #expect(pre.description == "/models/x/tokenizer.json: pre_tokenizer.pretokenizers[1].type: unsupported pre-tokenizer type \"BertPreTokenizer\"")

        let model = try #require(Self.error(try Self.variant("\"model\":{\"type\":\"BPE\"", "\"model\":{\"type\":\"Unigram\"")))
        #expect(model.path == "model.type")
        #expect(model.message.contains("\"Unigram\""))

        let norm = try #require(Self.error(try Self.variant("\"normalizer\":null", "\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"\"}")))
        #expect(norm.path == "normalizer.type")
        #expect(norm.message.contains("Precompiled"))

        let dec = try #require(Self.error(try Self.variant(
            "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true}",
            "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"WordPiece\",\"prefix\":\"##\"}]}")))
        #expect(dec.path == "decoder.decoders[1].type")

        let post = try #require(Self.error(try Self.variant("\"post_processor\":{\"type\":\"TemplateProcessing\"", "\"post_processor\":{\"type\":\"Mystery\"")))
        #expect(post.path == "post_processor.type")
    }

    @Test func unsupportedRegexNamesPatternAndPath() throws {
        let e = try #require(Self.error(try Self.variant(
            "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}",
            "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{Han}+|.\"},\"behavior\":\"Isolated\",\"invert\":false}")))
        #expect(e.path == "pre_tokenizer.pattern.Regex")
        #expect(e.message.contains("\\p{Han}"))
        let deep = String(repeating: "(", count: 5000) + String(repeating: ")", count: 5000)
        for bad in ["(a", "a)", "[a-", "a{3,1}", "*a", "(?<=a+)b", "\\1", "[[:alpha:]]", "[a&&b]", "[\\", "\\", "a{100001}", "a{20000}{20}",
                    "((a{1000}){1000}){1000}", deep, "\\p{Nope}", "\\x{110000}", "(?x)a"] {
            #expect(throws: RegexSyntaxError.self, "pattern \(bad)") { try Regex(bad) }
        }
    }

    @Test func badFieldsNameTheirPath() throws {
        let mergeOOV = try #require(Self.error(try Self.variant("\"merges\":[[", "\"merges\":[[\"nope\",\"x\"],[")))
        #expect(mergeOOV.path == "model.merges[0]")
        #expect(mergeOOV.message.contains("\"nope\" is not in the vocabulary"))

        let badID = try #require(Self.error(try Self.variant("\"vocab\":{\"Ā\":0", "\"vocab\":{\"Ā\":-4")))
        #expect(badID.path == "model.vocab.Ā")
        #expect(badID.message.contains("found -4"))
        let hugeID = try #require(Self.error(try Self.variant("\"vocab\":{\"Ā\":0", "\"vocab\":{\"Ā\":2000000000")))
        #expect(hugeID.path == "model.vocab.Ā")

        let missingVocab = try #require(Self.error(try Self.variant("\"vocab\":{", "\"vocabulary\":{")))
        #expect(missingVocab.path == "model.vocab")
        #expect(missingVocab.message == "missing required field")

        let behavior = try #require(Self.error(try Self.variant(
            "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}",
            "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Sideways\",\"invert\":false}")))
        #expect(behavior.path == "pre_tokenizer.behavior")

        let wrongType = try #require(Self.error(try Self.variant("\"byte_fallback\":false", "\"byte_fallback\":\"no\"")))
        #expect(wrongType.path == "model.byte_fallback")
        #expect(wrongType.message == "expected a boolean, found a string")

        let template = try #require(Self.error(try Self.variant("\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"", "\"single\":[{\"SpecialToken\":{\"id\":\"<bos>\"")))
        #expect(template.path == "post_processor.single[0].SpecialToken.id")

        let dropout = try #require(Self.error(try Self.variant("\"dropout\":null", "\"dropout\":0.1")))
        #expect(dropout.path == "model.dropout")
    }
}
