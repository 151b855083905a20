import Foundation

/// A Hugging Face `tokenizer.json` tokenizer (BPE models), producing the same ids and text as the
/// `tokenizers` library.
///
/// Pipeline, as in tokenizers: added tokens are cut out of the raw text (non-normalized ones), each
/// remaining span is normalized and searched for normalized added tokens, the rest is
/// pre-tokenized into pieces that the BPE model encodes independently, and the post-processor adds
/// BOS/EOS-style tokens. Immutable after loading, so one instance can serve many threads.
public final class Tokenizer: Sendable {
    let model: BPEModel
    let addedVocabulary: AddedVocabulary
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: Decoder?
    /// Added token strings by id, as tokenizers' `id_to_token` returns them: the normalized content
    /// for `normalized` tokens (0.23 decodes those through a normalized cache).
    private let addedStringByID: [Int: String]
    private let addedByContent: TokenTable
    /// Contents of special added tokens: decode's skip test is by token string, as in tokenizers.
    private let specialContents: TokenTable

    /// One past the largest id of the vocabulary and the added tokens.
    public let vocabularySize: Int
    /// From `tokenizer_config.json`'s `bos_token`, else the first special token of the template.
    public let bosTokenID: Int?
    /// From `tokenizer_config.json`'s `eos_token`.
    public let eosTokenID: Int?

    /// Loads `tokenizer.json` from a model directory, plus `tokenizer_config.json` when present.
    public convenience init(directory: URL) throws {
        let file = directory.appendingPathComponent("tokenizer.json")
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            let exists = FileManager.default.fileExists(atPath: file.path)
            throw TokenizerError(file: file.path, path: "", message: exists ? "cannot read file: \(error.localizedDescription)" : "file not found")
        }
        let configFile = directory.appendingPathComponent("tokenizer_config.json")
        var config: Data?
        if FileManager.default.fileExists(atPath: configFile.path) {
            do {
                config = try Data(contentsOf: configFile)
            } catch {
                throw TokenizerError(file: configFile.path, path: "", message: "cannot read file: \(error.localizedDescription)")
            }
        }
        try self.init(tokenizerJSON: data, configJSON: config, source: file.path)
    }

    /// - Parameter source: names the file in error messages (the config is reported as the
    ///   `tokenizer_config.json` next to it).
    public init(tokenizerJSON data: Data, configJSON: Data? = nil, source: String) throws {
        let root = try JSONDocument(data: data, source: source).root
        guard root.kind == .object else { throw root.error("expected a JSON object at the top level, found \(root.kindName)") }

        let model = try TokenizerLoader.bpe(try root.required("model"))
        let normalizer = try root.optional("normalizer").map(TokenizerLoader.normalizer)
        let added = try root.optional("added_tokens").map(TokenizerLoader.addedTokens) ?? []

        var addedStringByID: [Int: String] = [:]
        var addedByContent = TokenTable(capacity: added.count)
        var specialContents = TokenTable(capacity: added.count)
        var maxID = model.vocab.idLimit - 1
        for token in added {
            var string = token.content
            if token.normalized, let normalizer {
                string = scalarsToString(normalizer.apply(token.content.unicodeScalars.map(\.value)))
            }
            addedStringByID[token.id] = string
            addedByContent.insert(token.content, id: token.id)
            if token.special { specialContents.insert(token.content, id: token.id) }
            maxID = max(maxID, token.id)
        }
        let lookup: (String) -> Int? = { addedByContent.id($0) ?? model.vocab.id($0) }

        self.model = model
        self.normalizer = normalizer
        self.addedVocabulary = AddedVocabulary(tokens: added, normalizer: normalizer)
        self.preTokenizer = try root.optional("pre_tokenizer").map(TokenizerLoader.preTokenizer)
        self.postProcessor = try root.optional("post_processor").map(TokenizerLoader.postProcessor)
        self.decoder = try root.optional("decoder").map(TokenizerLoader.decoder)
        self.addedStringByID = addedStringByID
        self.addedByContent = addedByContent
        self.specialContents = specialContents
        self.vocabularySize = maxID + 1

        var bos: Int?
        var eos: Int?
        if let configJSON {
            let configSource: String
            if source.contains("/") {
                configSource = URL(fileURLWithPath: source).deletingLastPathComponent().appendingPathComponent("tokenizer_config.json").path
            } else {
                configSource = "tokenizer_config.json"
            }
            let config = try JSONDocument(data: configJSON, source: configSource).root
            guard config.kind == .object else { throw config.error("expected a JSON object at the top level, found \(config.kindName)") }
            bos = try TokenizerLoader.configToken(config, "bos_token").flatMap(lookup)
            eos = try TokenizerLoader.configToken(config, "eos_token").flatMap(lookup)
        }
        self.bosTokenID = bos ?? postProcessor?.leadingSpecialID
        self.eosTokenID = eos
    }

    // MARK: - Encoding

    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        let scalars = text.unicodeScalars.map(\.value)
        var ids: [Int] = []
        ids.reserveCapacity(scalars.count / 3 + 4)
        for segment in addedVocabulary.extract(scalars, normalizer: normalizer) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let piece):
                if let preTokenizer {
                    for p in preTokenizer.apply([piece]) { model.tokenize(p.scalars[...], into: &ids) }
                } else {
                    model.tokenize(piece.scalars[...], into: &ids)
                }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    // MARK: - Decoding

    /// Text of `ids`, as tokenizers' `decode`: unknown ids are skipped, and with
    /// `skipSpecialTokens` so are tokens whose string is a special added token.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = tokenString(id) else { continue }
            if skipSpecialTokens && specialContents.id(t) != nil { continue }
            tokens.append(t)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens)
    }

    public func tokenID(_ token: String) -> Int? {
        addedByContent.id(token) ?? model.vocab.id(token)
    }

    public func tokenString(_ id: Int) -> String? {
        if let added = addedStringByID[id] { return added }
        return model.vocab.string(ofID: id)
    }

    /// Whether `id` is a special added token (what `skipSpecialTokens` drops).
    public func isSpecialToken(_ id: Int) -> Bool {
        guard let t = tokenString(id) else { return false }
        return specialContents.id(t) != nil
    }
}
