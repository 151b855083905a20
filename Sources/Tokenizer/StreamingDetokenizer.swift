/// Emits text as generated ids arrive, so that concatenating every `append` result and `flush()`
/// equals `tokenizer.decode(allIDs)`.
///
/// Decoding one token at a time is wrong in general: a byte-level token may hold half of a UTF-8
/// character, and decoders treat the first token specially (Metaspace drops its "▁", Strip removes
/// a leading space). So the detokenizer keeps a small window: already-emitted context ids plus the
/// pending ones, decodes the window, and emits only what the pending ids add beyond the context's
/// own decoding — holding everything back while the text ends in U+FFFD (an incomplete character)
/// or no longer extends the context's text.
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var window: [Int] = []
    /// How many leading ids of `window` are context (their text was already emitted).
    private var contextCount = 0
    /// UTF-8 of `decode(window[..<contextCount])`.
    private var contextBytes: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    public mutating func append(_ id: Int) -> String {
        window.append(id)
        let text = tokenizer.decode(window, skipSpecialTokens: skipSpecialTokens)
        if text.unicodeScalars.last == "\u{FFFD}" { return "" }
        let bytes = Array(text.utf8)
        guard bytes.count > contextBytes.count, bytes.starts(with: contextBytes) else { return "" }
        let emitted = String(decoding: bytes[contextBytes.count...], as: UTF8.self)
        // The ids just emitted become the context for what comes next.
        window.removeFirst(contextCount)
        contextCount = window.count
        contextBytes = Array(tokenizer.decode(window, skipSpecialTokens: skipSpecialTokens).utf8)
        return emitted
    }

    /// Emits whatever is still held back (an incomplete character comes out as U+FFFD, as decode
    /// would write it). Appending may continue afterwards.
    public mutating func flush() -> String {
        let bytes = Array(tokenizer.decode(window, skipSpecialTokens: skipSpecialTokens).utf8)
        var common = 0
        while common < min(bytes.count, contextBytes.count), bytes[common] == contextBytes[common] { common += 1 }
        // If the decoder rewrote text already emitted, only the part after the shared prefix can go out.
        let emitted = String(decoding: bytes[common...], as: UTF8.self)
        contextCount = window.count
        contextBytes = bytes
        return emitted
    }
}
