import Foundation

/// A replacement target as `tokenizer.json` spells it: `{"String": "..."}` or `{"Regex": "..."}`.
/// Both compile to a `Regex` (a string pattern is matched literally), as in tokenizers.
struct TextPattern: Sendable {
    let regex: Regex

    /// Replaces every match with `content` (no `$1` expansion: tokenizers 0.23 inserts it literally).
    func replaceAll(in text: [UInt32], with content: [UInt32]) -> [UInt32] {
        if text.isEmpty { return text }  // tokenizers never matches inside an empty string
        let found = regex.matches(in: text)
        if found.isEmpty { return text }
        var out: [UInt32] = []
        out.reserveCapacity(text.count)
        var last = 0
        for m in found {
            out.append(contentsOf: text[last..<m.lowerBound])
            out.append(contentsOf: content)
            last = m.upperBound
        }
        out.append(contentsOf: text[last...])
        return out
    }
}

/// Text normalization applied to each span between added tokens before pre-tokenization.
indirect enum Normalizer: Sendable {
    case unicode(UnicodeForm)
    case lowercase
    case prepend([UInt32])
    case replace(TextPattern, content: [UInt32])
    case strip(left: Bool, right: Bool)
    case stripAccents
    case sequence([Normalizer])

    enum UnicodeForm: Sendable { case nfc, nfd, nfkc, nfkd }

    func apply(_ text: [UInt32]) -> [UInt32] {
        switch self {
        case .unicode(let form):
            // Pure ASCII is invariant under every normalization form.
            if text.allSatisfy({ $0 < 0x80 }) { return text }
            let s = scalarsToString(text)
            let normalized: String
            switch form {
            case .nfc: normalized = s.precomposedStringWithCanonicalMapping
            case .nfd: normalized = s.decomposedStringWithCanonicalMapping
            case .nfkc: normalized = s.precomposedStringWithCompatibilityMapping
            case .nfkd: normalized = s.decomposedStringWithCompatibilityMapping
            }
            return normalized.unicodeScalars.map(\.value)
        case .lowercase:
            // Per scalar, without context (no final-sigma rule), like Rust's char::to_lowercase.
            var out: [UInt32] = []
            out.reserveCapacity(text.count)
            for c in text {
                if c < 0x80 {
                    out.append(c >= 0x41 && c <= 0x5A ? c + 32 : c)
                } else if let s = Unicode.Scalar(c) {
                    out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars.map(\.value))
                }
            }
            return out
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content):
            return pattern.replaceAll(in: text, with: content)
        case .strip(let left, let right):
            var lo = 0
            var hi = text.count
            if left { while lo < hi, isWhiteSpace(text[lo]) { lo += 1 } }
            if right { while hi > lo, isWhiteSpace(text[hi - 1]) { hi -= 1 } }
            return Array(text[lo..<hi])
        case .stripAccents:
            // Drops every combining mark (Mn, Mc, Me), like unicode-normalization's is_combining_mark.
            return text.filter { CategoryBits.of($0) & CategoryBits.mark == 0 }
        case .sequence(let steps):
            var t = text
            for step in steps { t = step.apply(t) }
            return t
        }
    }
}

func scalarsToString<C: Collection>(_ scalars: C) -> String where C.Element == UInt32 {
    var view = String.UnicodeScalarView()
    for c in scalars { view.append(Unicode.Scalar(c) ?? "\u{FFFD}") }
    return String(view)
}

/// Rust's `char::is_whitespace` / the regex crate's `\s`: the Unicode White_Space property.
@inline(__always)
func isWhiteSpace(_ c: UInt32) -> Bool {
    if c < 0x80 { return c == 0x20 || (c >= 0x09 && c <= 0x0D) }
    return Unicode.Scalar(c)?.properties.isWhitespace ?? false
}
