import Foundation

/// Synthesizes `tokenizer.json` files for benchmark checkpoints, where no real vocabulary exists.
public enum SyntheticTokenizer {
    /// A GPT-2-style byte-level BPE: ids 0..<256 are the byte alphabet, then deterministic merges
    /// (mostly word-like letter runs, so ordinary text encodes to multi-byte tokens) up to
    /// `vocabularySize - 2`, then `bos` and `eos` as special added tokens, with a template that puts
    /// BOS first. The same arguments always give the same bytes; Python `tokenizers` loads the
    /// result. Sizes below 258 (the alphabet plus the two specials) are raised to 258.
    public static func byteLevelBPE(vocabularySize: Int, bos: String = "<s>", eos: String = "</s>", seed: UInt64) -> Data {
        let size = max(vocabularySize, 258)
        var random = SplitMix64(seed: seed)
        let alphabet = ByteLevelAlphabet.scalarForByte
        var tokens: [[UInt32]] = (0..<256).map { [alphabet[$0]] }
        var known = Set(tokens)
        // Never synthesize a merge that spells a special token.
        known.insert(bos.unicodeScalars.map(\.value))
        known.insert(eos.unicodeScalars.map(\.value))

        func isLetter(_ s: UInt32) -> Bool { (0x61...0x7A).contains(s) }
        let space = alphabet[0x20]
        // Letters in English frequency order: picks skewed to the front make merges like "Ġt" + "h".
        let lower = "etaoinsrhldcumfpgwybvkxjqz".unicodeScalars.map { Int($0.value) }
        // Tokens that can start a word (lower-case letters, optionally after "Ġ") and letter-only
        // continuations; one merge in ten joins arbitrary tokens instead.
        var wordStarts: [Int] = [0x20] + lower  // ids equal byte values in the alphabet
        var continuations: [Int] = lower
        var merges: [(Int, Int)] = []
        let mergeCount = size - 258
        merges.reserveCapacity(mergeCount)

        /// Skewed towards the front of `list`, like real merge frequencies.
        func pickFrequent(_ list: [Int]) -> Int {
            let u = random.unit()
            return list[min(list.count - 1, Int(Double(list.count) * u * u * u))]
        }

        var attempts = 0
        while merges.count < mergeCount {
            attempts += 1
            let wordLike = random.unit() < 0.9 || attempts > 50 * (mergeCount + 1)
            // Words grow one piece at a time: any word start, extended by a frequent continuation.
            let left = wordLike ? wordStarts[Int(random.next() % UInt64(wordStarts.count))] : Int(random.next() % UInt64(tokens.count))
            let right = wordLike ? pickFrequent(continuations) : Int(random.next() % UInt64(tokens.count))
            let merged = tokens[left] + tokens[right]
            if merged.count > 24 || known.contains(merged) { continue }
            known.insert(merged)
            let id = tokens.count
            tokens.append(merged)
            merges.append((left, right))
            if merged.allSatisfy(isLetter) { continuations.append(id) }
            if merged.allSatisfy({ isLetter($0) || $0 == space }) && merged.dropFirst().allSatisfy(isLetter) {
                wordStarts.append(id)
            }
        }

        let bosID = size - 2
        let eosID = size - 1
        var json = JSONWriter()
        json.raw("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[")
        for (k, (content, id)) in [(bos, bosID), (eos, eosID)].enumerated() {
            if k > 0 { json.raw(",") }
            json.raw("{\"id\":\(id),\"content\":")
            json.string(content)
            json.raw(",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}")
        }
        json.raw("],\"normalizer\":null,")
        json.raw("\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},")
        json.raw("\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":")
        json.string(bos)
        json.raw(",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[{\"SpecialToken\":{\"id\":")
        json.string(bos)
        json.raw(",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{")
        json.string(bos)
        json.raw(":{\"id\":")
        json.string(bos)
        json.raw(",\"ids\":[\(bosID)],\"tokens\":[")
        json.string(bos)
        json.raw("]}}},")
        json.raw("\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},")
        json.raw("\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":null,")
        json.raw("\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,\"vocab\":{")
        for (id, token) in tokens.enumerated() {
            if id > 0 { json.raw(",") }
            json.scalars(token)
            json.raw(":\(id)")
        }
        json.raw(",")
        json.string(bos)
        json.raw(":\(bosID),")
        json.string(eos)
        json.raw(":\(eosID)},\"merges\":[")
        for (k, (a, b)) in merges.enumerated() {
            if k > 0 { json.raw(",") }
            json.raw("[")
            json.scalars(tokens[a])
            json.raw(",")
            json.scalars(tokens[b])
            json.raw("]")
        }
        json.raw("]}}")
        return Data(json.bytes)
    }
}

/// Minimal JSON text builder with string escaping.
struct JSONWriter {
    var bytes: [UInt8] = []

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    mutating func string(_ s: String) { scalars(s.unicodeScalars.map(\.value)) }

    mutating func scalars(_ s: [UInt32]) {
        bytes.append(UInt8(ascii: "\""))
        for c in s {
            switch c {
            case 0x22: raw("\\\"")
            case 0x5C: raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef")
                raw("\\u00\(hex[Int(c >> 4)])\(hex[Int(c & 15)])")
            default:
                appendUTF8(c, to: &bytes)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
