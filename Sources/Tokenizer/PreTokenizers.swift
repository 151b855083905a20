/// A span of normalized text on its way to the model.
struct Piece {
    var scalars: [UInt32]
    /// Whether the span begins at offset 0 of the original input (Metaspace's `prepend_scheme:
    /// "first"` only prepends there).
    var atTextStart: Bool
}

/// How a split keeps the delimiters it finds, tokenizers' `SplitDelimiterBehavior`.
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Turns a covering list of (range, is-delimiter) segments into the kept pieces, exactly as
    /// `NormalizedString::split` does (including its treatment of consecutive delimiters).
    func apply(_ segments: [(range: Range<Int>, isMatch: Bool)]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        switch self {
        case .isolated:
            out = segments.map(\.range)
        case .removed:
            out = segments.filter { !$0.isMatch }.map(\.range)
        case .contiguous:
            var previousMatch = false
            for s in segments {
                if s.isMatch == previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<s.range.upperBound
                } else {
                    out.append(s.range)
                }
                previousMatch = s.isMatch
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for s in segments {
                if s.isMatch && !previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<s.range.upperBound
                } else {
                    out.append(s.range)
                }
                previousMatch = s.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for s in segments.reversed() {
                if s.isMatch && !previousMatch, let last = out.last {
                    out[out.count - 1] = s.range.lowerBound..<last.upperBound
                } else {
                    out.append(s.range)
                }
                previousMatch = s.isMatch
            }
            out.reverse()
        }
        return out.filter { !$0.isEmpty }
    }
}

/// Covering segmentation of `text` by regex matches (`Pattern::find_matches` for onig regexes).
func regexSegments(_ regex: Regex, _ text: [UInt32], invert: Bool) -> [(range: Range<Int>, isMatch: Bool)] {
    if text.isEmpty { return [(0..<0, invert)] }
    var out: [(Range<Int>, Bool)] = []
    var previous = 0
    for m in regex.matches(in: text) {
        if previous != m.lowerBound { out.append((previous..<m.lowerBound, invert)) }
        out.append((m, !invert))
        previous = m.upperBound
    }
    if previous != text.count { out.append((previous..<text.count, invert)) }
    return out
}

/// Covering segmentation by a per-scalar predicate (each matching scalar is its own segment).
func predicateSegments(_ text: [UInt32], _ isDelimiter: (UInt32) -> Bool) -> [(range: Range<Int>, isMatch: Bool)] {
    if text.isEmpty { return [(0..<0, false)] }
    var out: [(Range<Int>, Bool)] = []
    var last = 0
    for (i, c) in text.enumerated() where isDelimiter(c) {
        if last < i { out.append((last..<i, false)) }
        out.append((i..<(i + 1), true))
        last = i + 1
    }
    if last < text.count { out.append((last..<text.count, false)) }
    return out
}

enum PrependScheme: String, Sendable {
    case first, never, always
}

/// Splits normalized text into the pieces the model tokenizes independently.
indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(Regex, behavior: SplitBehavior, invert: Bool)
    case metaspace(replacement: UInt32, prependScheme: PrependScheme, split: Bool)
    case digits(individual: Bool)
    case whitespaceSplit
    case sequence([PreTokenizer])

    /// GPT-2's split pattern, used by `ByteLevel` when `use_regex` is true.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let gpt2Regex: Regex = try! Regex(gpt2Pattern)

    func apply(_ pieces: [Piece]) -> [Piece] {
        switch self {
        case .sequence(let steps):
            var p = pieces
            for step in steps { p = step.apply(p) }
            return p
        default:
            var out: [Piece] = []
            out.reserveCapacity(pieces.count)
            for piece in pieces { applyOne(piece, into: &out) }
            return out
        }
    }

    private func emit(_ piece: Piece, _ ranges: [Range<Int>], into out: inout [Piece]) {
        for r in ranges {
            out.append(Piece(scalars: Array(piece.scalars[r]), atTextStart: piece.atTextStart && r.lowerBound == 0))
        }
    }

    private func applyOne(_ piece: Piece, into out: inout [Piece]) {
        switch self {
        case .byteLevel(let addPrefixSpace, let useRegex):
            var text = piece.scalars
            // Prepending to an empty span is a no-op in tokenizers (there is no character to align to).
            if addPrefixSpace && !text.isEmpty && text.first != 0x20 { text.insert(0x20, at: 0) }
            let ranges = useRegex
                ? SplitBehavior.isolated.apply(regexSegments(PreTokenizer.gpt2Regex, text, invert: false))
                : (text.isEmpty ? [] : [0..<text.count])
            for r in ranges {
                out.append(Piece(scalars: ByteLevelAlphabet.encode(text[r]), atTextStart: piece.atTextStart && r.lowerBound == 0))
            }
        case .split(let regex, let behavior, let invert):
            emit(piece, behavior.apply(regexSegments(regex, piece.scalars, invert: invert)), into: &out)
        case .metaspace(let replacement, let scheme, let split):
            var text = piece.scalars.map { $0 == 0x20 ? replacement : $0 }
            let prepend: Bool
            switch scheme {
            case .always: prepend = true
            case .first: prepend = piece.atTextStart
            case .never: prepend = false
            }
            if prepend && !text.isEmpty && text.first != replacement { text.insert(replacement, at: 0) }
            let p = Piece(scalars: text, atTextStart: piece.atTextStart)
            if split {
                emit(p, SplitBehavior.mergedWithNext.apply(predicateSegments(text) { $0 == replacement }), into: &out)
            } else if !text.isEmpty {
                out.append(p)
            }
        case .digits(let individual):
            let behavior: SplitBehavior = individual ? .isolated : .contiguous
            emit(piece, behavior.apply(predicateSegments(piece.scalars, isNumeric)), into: &out)
        case .whitespaceSplit:
            emit(piece, SplitBehavior.removed.apply(predicateSegments(piece.scalars, isWhiteSpace)), into: &out)
        case .sequence:
            out.append(contentsOf: apply([piece]))
        }
    }
}

/// Rust's `char::is_numeric`: general categories Nd, Nl and No.
func isNumeric(_ c: UInt32) -> Bool {
    if c < 0x80 { return c >= 0x30 && c <= 0x39 }
    return CategoryBits.of(c) & CategoryBits.number != 0
}
