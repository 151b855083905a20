/// Turns token strings back into text: the `decoder` of `tokenizer.json`, applied as tokenizers'
/// `decode_chain` (each step maps the whole token list, and the result is concatenated).
indirect enum Decoder: Sendable {
    case byteLevel
    case replace(TextPattern, content: [UInt32])
    case byteFallback
    case fuse
    case strip(content: UInt32, start: Int, stop: Int)
    case metaspace(replacement: UInt32, prependScheme: PrependScheme)
    case sequence([Decoder])

    func decode(_ tokens: [String]) -> String {
        decodeChain(tokens).joined()
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            // Every scalar maps back to its byte; a token with any other scalar (an added token,
            // say) contributes its own UTF-8 instead. Invalid UTF-8 becomes U+FFFD.
            var bytes: [UInt8] = []
            for t in tokens {
                let start = bytes.count
                var ok = true
                for s in t.unicodeScalars {
                    guard let b = ByteLevelAlphabet.byte(for: s.value) else {
                        ok = false
                        break
                    }
                    bytes.append(b)
                }
                if !ok {
                    bytes.removeSubrange(start...)
                    bytes.append(contentsOf: t.utf8)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .replace(let pattern, let content):
            return tokens.map { t in
                scalarsToString(pattern.replaceAll(in: t.unicodeScalars.map(\.value), with: content))
            }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for t in tokens {
                if let b = Decoder.byteFallbackValue(t) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(t)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { t in
                let scalars = Array(t.unicodeScalars)
                var startCut = 0
                for (i, c) in scalars.prefix(start).enumerated() {
                    if c.value == content { startCut = i + 1 } else { break }
                }
                var stopCut = scalars.count
                if stop > 0 {
                    for i in 0..<min(stop, scalars.count - startCut) {
                        let index = scalars.count - i - 1
                        if scalars[index].value == content { stopCut = index } else { break }
                    }
                }
                return scalarsToString(scalars[startCut..<stopCut].map(\.value))
            }
        case .metaspace(let replacement, let scheme):
            return tokens.enumerated().map { i, t in
                var view = String.UnicodeScalarView()
                for s in t.unicodeScalars {
                    if s.value == replacement {
                        if !(i == 0 && scheme != .never) { view.append(" ") }
                    } else {
                        view.append(s)
                    }
                }
                return String(view)
            }
        case .sequence(let steps):
            var t = tokens
            for s in steps { t = s.decodeChain(t) }
            return t
        }
    }

    /// `<0xNN>` -> NN, parsed like Rust's `u8::from_str_radix(&token[3..5], 16)` on a 6-byte token.
    static func byteFallbackValue(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
            u[5] == UInt8(ascii: ">")
        else { return nil }
        if u[3] == UInt8(ascii: "+") { return hexValue(u[4]) }  // from_str_radix accepts a plus sign
        guard let hi = hexValue(u[3]), let lo = hexValue(u[4]) else { return nil }
        return hi << 4 | lo
    }
}
