/// Ids beyond this are rejected: the id -> token table is a dense array, and real vocabularies stay
/// far below (Gemma's 256k is among the largest).
let maximumTokenID = 1 << 24

/// Builds the tokenizer components from a parsed `tokenizer.json`. Every unsupported or malformed
/// component throws a `TokenizerError` naming its JSON path (e.g. `pre_tokenizer.pretokenizers[1].type`).
enum TokenizerLoader {
    static func unsupported(_ value: JSONValue, kind: String, type: String) -> TokenizerError {
        TokenizerError(file: value.document.source, path: JSONValue.childPath(value.path, key: "type"),
                       message: "unsupported \(kind) type \"\(type)\"")
    }

    static func type(of value: JSONValue, kind: String) throws -> String {
        guard value.kind == .object else { throw value.error("expected a \(kind) object, found \(value.kindName)") }
        return try value.required("type").string()
    }

    static func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

    /// A JSON string that must hold exactly one Unicode scalar (a Rust `char`).
    static func character(_ value: JSONValue) throws -> UInt32 {
        let s = try value.string()
        let u = scalars(s)
        guard u.count == 1 else { throw value.error("expected a single character, found \"\(s)\"") }
        return u[0]
    }

    static func regex(_ pattern: String, at value: JSONValue) throws -> Regex {
        do {
            return try Regex(pattern)
        } catch {
            throw value.error("unsupported regex \(pattern.debugDescription): \(error.message)")
        }
    }

    /// `{"String": "..."}` or `{"Regex": "..."}`.
    static func pattern(_ value: JSONValue) throws -> TextPattern {
        if let s = value.member("String") {
            return TextPattern(regex: Regex(literal: try s.string()))
        }
        if let r = value.member("Regex") {
            return TextPattern(regex: try regex(try r.string(), at: r))
        }
        throw value.error("expected {\"String\": ...} or {\"Regex\": ...}")
    }

    // MARK: Normalizers

    static func normalizer(_ value: JSONValue) throws -> Normalizer {
        let type = try type(of: value, kind: "normalizer")
        switch type {
        case "NFC": return .unicode(.nfc)
        case "NFD": return .unicode(.nfd)
        case "NFKC": return .unicode(.nfkc)
        case "NFKD": return .unicode(.nfkd)
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "Prepend": return .prepend(scalars(try value.required("prepend").string()))
        case "Replace":
            return .replace(try pattern(try value.required("pattern")), content: scalars(try value.required("content").string()))
        case "Strip":
            return .strip(left: try value.bool("strip_left", default: true), right: try value.bool("strip_right", default: true))
        case "Sequence":
            return .sequence(try value.required("normalizers").array().map(normalizer))
        default:
            throw unsupported(value, kind: "normalizer", type: type)
        }
    }

    // MARK: Pre-tokenizers

    static func prependScheme(_ value: JSONValue) throws -> PrependScheme {
        var scheme = PrependScheme.always
        if let s = try value.optional("prepend_scheme") {
            guard let parsed = PrependScheme(rawValue: try s.string()) else {
                throw s.error("unknown prepend_scheme \"\(try s.string())\" (expected first, never or always)")
            }
            scheme = parsed
        }
        // Files from before prepend_scheme existed say add_prefix_space: false for "never".
        if let legacy = try value.optionalBool("add_prefix_space"), !legacy {
            scheme = .never
        }
        return scheme
    }

    static func preTokenizer(_ value: JSONValue) throws -> PreTokenizer {
        let type = try type(of: value, kind: "pre-tokenizer")
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try value.bool("add_prefix_space", default: true),
                              useRegex: try value.bool("use_regex", default: true))
        case "Split":
            let patternValue = try value.required("pattern")
            let regex = try pattern(patternValue).regex
            let behaviorValue = try value.required("behavior")
            let name = try behaviorValue.string()
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw behaviorValue.error("unknown split behavior \"\(name)\"")
            }
            return .split(regex, behavior: behavior, invert: try value.bool("invert", default: false))
        case "Metaspace":
            return .metaspace(replacement: try character(try value.required("replacement")),
                              prependScheme: try prependScheme(value),
                              split: try value.bool("split", default: true))
        case "Digits":
            return .digits(individual: try value.bool("individual_digits", default: false))
        case "WhitespaceSplit":
            return .whitespaceSplit
        case "Sequence":
            return .sequence(try value.required("pretokenizers").array().map(preTokenizer))
        default:
            throw unsupported(value, kind: "pre-tokenizer", type: type)
        }
    }

    // MARK: Post-processors

    static func postProcessor(_ value: JSONValue) throws -> PostProcessor {
        let type = try type(of: value, kind: "post-processor")
        switch type {
        case "TemplateProcessing":
            var specials: [String: [Int]] = [:]
            if let table = try value.optional("special_tokens") {
                for (key, entry) in try table.members() {
                    specials[key] = try entry.required("ids").array().map { try $0.int() }
                }
            }
            var pieces: [PostProcessor.TemplatePiece] = []
            for item in try value.required("single").array() {
                if let special = item.member("SpecialToken") {
                    let idValue = try special.required("id")
                    let name = try idValue.string()
                    guard let ids = specials[name] else {
                        throw idValue.error("special token \"\(name)\" is missing from special_tokens")
                    }
                    pieces.append(.special(ids))
                } else if let sequence = item.member("Sequence") {
                    let idValue = try sequence.required("id")
                    let name = try idValue.string()
                    guard name == "A" else {
                        throw idValue.error("the single-sequence template can only hold sequence A, found \"\(name)\"")
                    }
                    pieces.append(.sequence)
                } else {
                    throw item.error("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}")
                }
            }
            return .template(pieces)
        case "ByteLevel":
            return .byteLevel
        case "BertProcessing", "RobertaProcessing":
            // cls + A + sep, each given as [token, id].
            func id(_ key: String) throws -> Int {
                let pair = try value.required(key).array()
                guard pair.count == 2 else { throw value.error("\(key) must be [token, id]") }
                return try pair[1].int()
            }
            return .template([.special([try id("cls")]), .sequence, .special([try id("sep")])])
        case "Sequence":
            return .sequence(try value.required("processors").array().map(postProcessor))
        default:
            throw unsupported(value, kind: "post-processor", type: type)
        }
    }

    // MARK: Decoders

    static func decoder(_ value: JSONValue) throws -> Decoder {
        let type = try type(of: value, kind: "decoder")
        switch type {
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Replace":
            return .replace(try pattern(try value.required("pattern")), content: scalars(try value.required("content").string()))
        case "Strip":
            return .strip(content: try character(try value.required("content")),
                          start: try value.optionalInt("start") ?? 0, stop: try value.optionalInt("stop") ?? 0)
        case "Metaspace":
            return .metaspace(replacement: try character(try value.required("replacement")),
                              prependScheme: try prependScheme(value))
        case "Sequence":
            return .sequence(try value.required("decoders").array().map(decoder))
        default:
            throw unsupported(value, kind: "decoder", type: type)
        }
    }

    // MARK: Model

    static func bpe(_ value: JSONValue) throws -> BPEModel {
        guard value.kind == .object else { throw value.error("expected a model object, found \(value.kindName)") }
        let type = try value.optionalString("type") ?? (value.member("merges") != nil ? "BPE" : "")
        guard type == "BPE" else {
            if type.isEmpty { throw value.error("model has no \"type\" field and no merges") }
            throw unsupported(value, kind: "model", type: type)
        }
        if let dropout = try value.optional("dropout"), try dropout.double() != 0 {
            throw dropout.error("BPE dropout makes encoding random and is not supported")
        }

        let vocabValue = try value.required("vocab")
        var vocab = TokenTable(capacity: vocabValue.count)
        try vocabValue.forEachMember { key, idValue in
            guard idValue.kind == .number, let id = try? idValue.int(), id >= 0, id < maximumTokenID else {
                let found = idValue.kind == .number ? "\(String(decoding: value.document.bytes[Int(idValue.node.start)..<Int(idValue.node.end)], as: UTF8.self))" : idValue.kindName
                throw TokenizerError(file: value.document.source,
                                     path: JSONValue.childPath(vocabValue.path, key: String(decoding: key, as: UTF8.self)),
                                     message: "expected an integer id in 0..<\(maximumTokenID), found \(found)")
            }
            vocab.insert(key, id: id)
        }

        let prefix = try value.optionalString("continuing_subword_prefix")
        let prefixLength = prefix?.utf8.count ?? 0
        let mergesValue = try value.optional("merges")
        var merges = PairTable(capacity: mergesValue?.count ?? 0)
        if let mergesValue {
            var joined: [UInt8] = []
            var left: [UInt8] = []
            var right: [UInt8] = []
            try mergesValue.forEachElement { rank, item in
                func fail(_ message: String) -> TokenizerError {
                    TokenizerError(file: value.document.source, path: JSONValue.childPath(mergesValue.path, index: rank), message: message)
                }
                left.removeAll(keepingCapacity: true)
                right.removeAll(keepingCapacity: true)
                switch item.kind {
                case .string:
                    // Legacy layout: "a b".
                    try item.withStringBytes { bytes in
                        guard let space = bytes.firstIndex(of: 0x20) else { throw fail("expected \"left right\"") }
                        left.append(contentsOf: bytes[..<space])
                        right.append(contentsOf: bytes[(space + 1)...])
                    }
                case .array:
                    guard item.count == 2 else { throw fail("expected a pair [left, right]") }
                    try item.forEachElement { k, side in
                        guard side.kind == .string else { throw fail("expected a pair of strings") }
                        try side.withStringBytes { k == 0 ? left.append(contentsOf: $0) : right.append(contentsOf: $0) }
                    }
                default:
                    throw fail("expected a string or a pair, found \(item.kindName)")
                }
                guard let a = vocab.id(left) else { throw fail("merge token \"\(String(decoding: left, as: UTF8.self))\" is not in the vocabulary") }
                guard let b = vocab.id(right) else { throw fail("merge token \"\(String(decoding: right, as: UTF8.self))\" is not in the vocabulary") }
                guard right.count >= prefixLength else { throw fail("merge token is shorter than continuing_subword_prefix") }
                joined.removeAll(keepingCapacity: true)
                joined.append(contentsOf: left)
                joined.append(contentsOf: right[prefixLength...])
                guard let merged = vocab.id(joined) else {
                    throw fail("merged token \"\(String(decoding: joined, as: UTF8.self))\" is not in the vocabulary")
                }
                merges.insert(Int32(a), Int32(b), rank: Int32(rank), newID: Int32(merged))
            }
        }

        let unknown = try value.optionalString("unk_token")
        return BPEModel(vocab: vocab, merges: merges, unknownToken: unknown, continuingSubwordPrefix: prefix,
                        endOfWordSuffix: try value.optionalString("end_of_word_suffix"),
                        fuseUnknown: try value.bool("fuse_unk", default: false),
                        byteFallback: try value.bool("byte_fallback", default: false),
                        ignoreMerges: try value.bool("ignore_merges", default: false))
    }

    static func addedTokens(_ value: JSONValue) throws -> [AddedToken] {
        try value.array().map { item in
            let id = try item.required("id").int()
            guard id >= 0, id < maximumTokenID else { throw item.error("added token id \(id) out of range 0..<\(maximumTokenID)") }
            let special = try item.bool("special", default: false)
            return AddedToken(id: id, content: try item.required("content").string(),
                              singleWord: try item.bool("single_word", default: false),
                              lstrip: try item.bool("lstrip", default: false),
                              rstrip: try item.bool("rstrip", default: false),
                              normalized: try item.bool("normalized", default: !special),
                              special: special)
        }
    }

    /// `bos_token`/`eos_token` in tokenizer_config.json: a string or an AddedToken-like object.
    static func configToken(_ config: JSONValue, _ key: String) throws -> String? {
        guard let v = try config.optional(key) else { return nil }
        if v.kind == .string { return try v.string() }
        if v.kind == .object { return try v.required("content").string() }
        throw v.error("expected a string or an object with \"content\", found \(v.kindName)")
    }
}
