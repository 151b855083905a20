/// One entry of `added_tokens`.
struct AddedToken: Sendable {
    let id: Int
    let content: String
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    /// Matched in the normalized text (true) or in the raw input (false).
    let normalized: Bool
    let special: Bool
}

/// A piece of the input after added-token extraction: either an added token or text to normalize
/// and pre-tokenize.
enum Segment {
    case token(Int)
    case text(Piece)
}

/// Finds added tokens in text the way tokenizers' `AddedVocabulary::extract_and_normalize` does:
/// first the non-normalized tokens in the raw input, then, in each remaining span after
/// normalization, the normalized ones. Matching is leftmost-longest and non-overlapping (its
/// Aho-Corasick automaton), then `single_word`, `lstrip` and `rstrip` adjust or discard matches.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    private let rawMatcher: LiteralMatcher
    private let normalizedMatcher: LiteralMatcher

    init(tokens: [AddedToken], normalizer: Normalizer?) {
        self.tokens = tokens
        var raw: [([UInt32], Int)] = []
        var normalized: [([UInt32], Int)] = []
        // tokenizers orders special tokens before the others; only relevant for equal contents.
        let order = tokens.indices.filter { tokens[$0].special } + tokens.indices.filter { !tokens[$0].special }
        for index in order where !tokens[index].content.isEmpty {
            let t = tokens[index]
            let scalars = t.content.unicodeScalars.map(\.value)
            if t.normalized {
                let n = normalizer?.apply(scalars) ?? scalars
                if !n.isEmpty { normalized.append((n, index)) }
            } else {
                raw.append((scalars, index))
            }
        }
        rawMatcher = LiteralMatcher(raw)
        normalizedMatcher = LiteralMatcher(normalized)
    }

    var isEmpty: Bool { tokens.isEmpty }

    func extract(_ text: [UInt32], normalizer: Normalizer?) -> [Segment] {
        var out: [Segment] = []
        for (range, token) in split(text, rawMatcher) {
            if let token {
                out.append(.token(token))
                continue
            }
            let span = Array(text[range])
            let normalized = normalizer?.apply(span) ?? span
            let atStart = range.lowerBound == 0
            for (r, t) in split(normalized, normalizedMatcher) {
                if let t {
                    out.append(.token(t))
                } else if !r.isEmpty {
                    out.append(.text(Piece(scalars: Array(normalized[r]), atTextStart: atStart && r.lowerBound == 0)))
                }
            }
        }
        return out
    }

    /// `find_matches`: a covering list of spans, each either plain text (nil) or an added token id.
    private func split(_ text: [UInt32], _ matcher: LiteralMatcher) -> [(Range<Int>, Int?)] {
        if text.isEmpty { return [] }
        var out: [(Range<Int>, Int?)] = []
        var startOffset = 0
        var searchFrom = 0
        while let (matchRange, index) = matcher.next(in: text, from: searchFrom) {
            searchFrom = matchRange.upperBound
            var start = matchRange.lowerBound
            var stop = matchRange.upperBound
            let token = tokens[index]
            if token.singleWord {
                let startSpace = start == 0 || !isRustWordCharacter(text[start - 1])
                let stopSpace = stop == text.count || !isRustWordCharacter(text[stop])
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                var newStart = start
                while newStart > 0, isWhiteSpace(text[newStart - 1]) { newStart -= 1 }
                start = max(newStart, startOffset)
            }
            if token.rstrip {
                while stop < text.count, isWhiteSpace(text[stop]) { stop += 1 }
            }
            if startOffset < start { out.append((startOffset..<start, nil)) }
            out.append((start..<stop, token.id))
            startOffset = stop
        }
        if startOffset != text.count { out.append((startOffset..<text.count, nil)) }
        return out
    }
}

/// The Rust regex crate's Unicode `\w` (used by tokenizers for `single_word`): Alphabetic, marks,
/// decimal numbers, connector punctuation and the joiners.
func isRustWordCharacter(_ c: UInt32) -> Bool {
    if c < 0x80 {
        return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
    }
    if c == 0x200C || c == 0x200D { return true }
    guard let s = Unicode.Scalar(c) else { return false }
    if s.properties.isAlphabetic { return true }
    let bits = CategoryBits.bit(s.properties.generalCategory)
    return bits & (CategoryBits.mark | (1 << 8) | (1 << 11)) != 0
}

/// Leftmost-longest search for a set of literal scalar strings, via a trie.
struct LiteralMatcher: Sendable {
    private struct Node: Sendable {
        var children: [UInt32: Int32] = [:]
        var pattern: Int = -1
    }
    private var nodes: [Node] = [Node()]
    private let isEmpty: Bool

    init(_ patterns: [([UInt32], Int)]) {
        isEmpty = patterns.isEmpty
        for (scalars, index) in patterns {
            var n = 0
            for c in scalars {
                if let next = nodes[n].children[c] {
                    n = Int(next)
                } else {
                    nodes.append(Node())
                    nodes[n].children[c] = Int32(nodes.count - 1)
                    n = nodes.count - 1
                }
            }
            if nodes[n].pattern < 0 { nodes[n].pattern = index }  // first pattern wins on duplicates
        }
    }

    /// The leftmost match at or after `from`, the longest among those starting there.
    func next(in text: [UInt32], from: Int) -> (Range<Int>, Int)? {
        if isEmpty { return nil }
        var start = from
        while start < text.count {
            var n = 0
            var best: (Int, Int)?
            var i = start
            while i < text.count, let next = nodes[n].children[text[i]] {
                n = Int(next)
                i += 1
                if nodes[n].pattern >= 0 { best = (i, nodes[n].pattern) }
            }
            if let (end, pattern) = best { return (start..<end, pattern) }
            start += 1
        }
        return nil
    }
}
