/// Adds the special tokens of `post_processor` around an encoded sequence (single-sequence form).
indirect enum PostProcessor: Sendable {
    enum TemplatePiece: Sendable {
        case special([Int])
        case sequence
    }

    case template([TemplatePiece])
    /// ByteLevel as a post-processor only trims offsets, which ids do not carry.
    case byteLevel
    case sequence([PostProcessor])

    func process(_ ids: [Int]) -> [Int] {
        switch self {
        case .template(let pieces):
            var out: [Int] = []
            out.reserveCapacity(ids.count + 4)
            for p in pieces {
                switch p {
                case .special(let s): out.append(contentsOf: s)
                case .sequence: out.append(contentsOf: ids)
                }
            }
            return out
        case .byteLevel:
            return ids
        case .sequence(let steps):
            var out = ids
            for s in steps { out = s.process(out) }
            return out
        }
    }

    /// The first special token the processor puts before the text (the usual BOS).
    var leadingSpecialID: Int? {
        switch self {
        case .template(let pieces):
            if case .special(let ids)? = pieces.first { return ids.first }
            return nil
        case .byteLevel:
            return nil
        case .sequence(let steps):
            for s in steps { if let id = s.leadingSpecialID { return id } }
            return nil
        }
    }
}
