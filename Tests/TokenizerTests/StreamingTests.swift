import Foundation
import Testing

@testable import Tokenizer

@Suite struct StreamingTests {
    /// Byte-level tokens that split a character must not surface as U+FFFD mid-stream.
    @Test func holdsBackIncompleteUTF8() throws {
        let tokenizer = try Tokenizer(directory: Fixtures.url("tokenizer"))
        let text = "emoji 🚀🔥 and 東京"
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(stream.append(id)) }
        pieces.append(stream.flush())
        #expect(pieces.joined() == text)
        #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") })
        #expect(pieces.filter(\.isEmpty).count > 0)  // some ids only carried part of a character
    }

    /// SentencePiece-style decoders strip the first "▁"; later words keep their space.
    @Test func keepsSpacesAfterTheFirstToken() throws {
        let tokenizer = try Tokenizer(directory: Fixtures.url("tokenizers/llama2"))
        let text = "Hello world, again 🚀!"
        let ids = tokenizer.encode(text)
        var stream = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        var out = ""
        for id in ids { out += stream.append(id) }
        out += stream.flush()
        #expect(out == text)
        #expect(out == tokenizer.decode(ids, skipSpecialTokens: true))
    }

    @Test func flushEmitsIncompleteBytesAndStreamContinues() throws {
        let tokenizer = try Tokenizer(directory: Fixtures.url("tokenizer"))
        let ids = tokenizer.encode("🚀", addSpecialTokens: false)
        #expect(ids.count > 1)
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        #expect(stream.append(ids[0]) == "")
        #expect(stream.flush() == tokenizer.decode([ids[0]]))
        let more = tokenizer.encode(" ok", addSpecialTokens: false)
        var rest = ""
        for id in more { rest += stream.append(id) }
        rest += stream.flush()
        #expect(rest == " ok")
    }
}
