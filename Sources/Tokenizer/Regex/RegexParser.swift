/// Syntax tree of a pattern in the Oniguruma (Ruby syntax) dialect that `tokenizers` compiles its
/// `Split`/`Replace` patterns with.
indirect enum RegexNode {
    case empty
    case char(UInt32, ignoreCase: Bool)
    case any(dotAll: Bool)
    case set(CharacterClass, ignoreCase: Bool)
    case concat([RegexNode])
    case alternation([RegexNode])
    case capture(RegexNode, index: Int)
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool, possessive: Bool)
    case assertion(RegexAssertion)
    case lookahead(RegexNode, negate: Bool)
    case lookbehind(RegexNode, negate: Bool, width: Int)
    case atomic(RegexNode)

    /// Whether the node can succeed without consuming input (needs a progress check in loops).
    var canBeEmpty: Bool {
        switch self {
        case .empty, .assertion, .lookahead, .lookbehind: return true
        case .char, .any, .set: return false
        case .concat(let nodes): return nodes.allSatisfy { $0.canBeEmpty }
        case .alternation(let nodes): return nodes.contains { $0.canBeEmpty }
        case .capture(let n, _), .atomic(let n): return n.canBeEmpty
        case .repetition(let n, let min, _, _, _): return min == 0 || n.canBeEmpty
        }
    }

    /// Upper bound on the compiled program size; counted repetitions multiply it.
    var programSizeEstimate: Int {
        switch self {
        case .empty: return 0
        case .char, .any, .set, .assertion: return 2
        case .concat(let nodes): return nodes.reduce(0) { min($0 + $1.programSizeEstimate, Int.max / 4) }
        case .alternation(let nodes): return nodes.reduce(nodes.count * 2) { min($0 + $1.programSizeEstimate, Int.max / 4) }
        case .capture(let n, _), .atomic(let n), .lookahead(let n, _), .lookbehind(let n, _, _): return n.programSizeEstimate + 2
        case .repetition(let n, let min, let max, _, _):
            let copies = Swift.max(min, max ?? min + 1) + 1
            return Swift.min(n.programSizeEstimate.multipliedReportingOverflow(by: copies).partialValue + copies * 2, Int.max / 4)
        }
    }

    /// The number of scalars the node always consumes, or nil when it varies (lookbehind needs it).
    var fixedWidth: Int? {
        switch self {
        case .empty, .assertion, .lookahead, .lookbehind: return 0
        case .char, .any, .set: return 1
        case .concat(let nodes):
            var total = 0
            for n in nodes {
                guard let w = n.fixedWidth else { return nil }
                total += w
            }
            return total
        case .alternation(let nodes):
            let widths = nodes.map { $0.fixedWidth }
            guard let first = widths.first ?? 0, widths.allSatisfy({ $0 == first }) else { return nil }
            return first
        case .capture(let n, _), .atomic(let n): return n.fixedWidth
        case .repetition(let n, let min, let max, _, _):
            guard let w = n.fixedWidth, max == min else { return nil }
            return w * min
        }
    }
}

enum RegexAssertion: Sendable {
    case lineStart  // ^ (Ruby syntax: always multi-line)
    case lineEnd  // $
    case textStart  // \A
    case textEnd  // \z
    case textEndBeforeNewline  // \Z
    case wordBoundary  // \b
    case notWordBoundary  // \B
}

/// Why a pattern was rejected; `Regex.init` turns it into a `TokenizerError` with the JSON path.
struct RegexSyntaxError: Error {
    let message: String
}

struct RegexParser {
    private let scalars: [UInt32]
    private var pos = 0
    private var depth = 0
    private(set) var captureCount = 0
    private let maxRepeat = 100_000  // ONIG_MAX_REPEAT_NUM; program size is bounded separately
    /// Bounds recursion so a hostile pattern cannot overflow the stack.
    private let maxDepth = 200

    init(_ pattern: String) {
        scalars = pattern.unicodeScalars.map(\.value)
    }

    struct Flags {
        var ignoreCase = false
        var dotAll = false  // Ruby's (?m)
    }

    mutating func parse() throws(RegexSyntaxError) -> RegexNode {
        do {
            return try parseTop()
        } catch let e as RegexSyntaxError {
            throw e
        } catch {
            throw RegexSyntaxError(message: "\(error)")
        }
    }

    private mutating func parseTop() throws -> RegexNode {
        var flags = Flags()
        let node = try parseAlternation(&flags)
        if pos < scalars.count {
            throw RegexSyntaxError(message: "unmatched ')' at position \(pos)")
        }
        return node
    }

    private var atEnd: Bool { pos >= scalars.count }
    private func peek(_ offset: Int = 0) -> UInt32? {
        pos + offset < scalars.count ? scalars[pos + offset] : nil
    }
    private func isChar(_ c: Character, at offset: Int = 0) -> Bool {
        peek(offset) == c.unicodeScalars.first!.value
    }

    private mutating func parseAlternation(_ flags: inout Flags) throws -> RegexNode {
        var branches: [RegexNode] = []
        // An inline `(?i)` lasts to the end of the enclosing group, across later branches too.
        var current = flags
        branches.append(try parseConcat(&current))
        while isChar("|") {
            pos += 1
            branches.append(try parseConcat(&current))
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseConcat(_ flags: inout Flags) throws -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek(), c != 0x7C /* | */, c != 0x29 /* ) */ {
            var atom: RegexNode
            if c == 0x28 /* ( */ {
                guard let parsed = try parseGroup(&flags) else { continue }  // inline flag group
                atom = parsed
            } else {
                atom = try parseAtom(flags)
            }
            atom = try parseQuantifiers(atom)
            items.append(atom)
        }
        if items.isEmpty { return .empty }
        return items.count == 1 ? items[0] : .concat(items)
    }

    private mutating func parseQuantifiers(_ atom: RegexNode) throws -> RegexNode {
        var node = atom
        while let c = peek() {
            var min = 0
            var max: Int?
            var isInterval = false
            switch c {
            case 0x2A: min = 0; max = nil; pos += 1  // *
            case 0x2B: min = 1; max = nil; pos += 1  // +
            case 0x3F: min = 0; max = 1; pos += 1  // ?
            case 0x7B:  // {
                guard let (lo, hi, length) = intervalAt(pos) else { return node }
                min = lo
                max = hi
                pos += length
                isInterval = true
            default:
                return node
            }
            if min > maxRepeat || (max ?? 0) > maxRepeat {
                throw RegexSyntaxError(message: "repetition count above \(maxRepeat)")
            }
            if let max, max < min {
                throw RegexSyntaxError(message: "repetition {\(min),\(max)} has max below min")
            }
            var greedy = true
            var possessive = false
            if isChar("?") {
                greedy = false
                pos += 1
            } else if isChar("+"), !isInterval {
                // Ruby syntax: `?+ *+ ++` are possessive; `{n,m}+` is a nested quantifier instead.
                possessive = true
                pos += 1
            }
            node = .repetition(node, min: min, max: max, greedy: greedy, possessive: possessive)
        }
        return node
    }

    /// Parses `{n}`, `{n,}`, `{n,m}`, `{,m}` at `start`; nil when it is not an interval (then `{` is literal).
    private func intervalAt(_ start: Int) -> (Int, Int?, Int)? {
        var i = start + 1
        func number() -> Int? {
            var v: Int?
            while i < scalars.count, scalars[i] >= 0x30, scalars[i] <= 0x39 {
                v = Swift.min((v ?? 0) * 10 + Int(scalars[i] - 0x30), 10_000_000)  // saturate; rejected later
                i += 1
            }
            return v
        }
        let lo = number()
        if i < scalars.count, scalars[i] == 0x7D {
            guard let lo else { return nil }
            return (lo, lo, i - start + 1)
        }
        guard i < scalars.count, scalars[i] == 0x2C else { return nil }
        i += 1
        let hi = number()
        guard i < scalars.count, scalars[i] == 0x7D, lo != nil || hi != nil else { return nil }
        return (lo ?? 0, hi, i - start + 1)
    }

    /// Parses a parenthesized construct. Returns nil for a bare inline flag group like `(?i)`,
    /// whose effect is applied to `flags`.
    private mutating func parseGroup(_ flags: inout Flags) throws -> RegexNode? {
        pos += 1  // (
        depth += 1
        defer { depth -= 1 }
        guard depth <= maxDepth else { throw RegexSyntaxError(message: "groups nested deeper than \(maxDepth)") }
        if isChar("?") {
            pos += 1
            guard let c = peek() else { throw RegexSyntaxError(message: "unterminated group") }
            switch c {
            case 0x3A:  // (?:
                pos += 1
                var inner = flags
                return try closeGroup(try parseAlternation(&inner))
            case 0x3D, 0x21:  // (?= (?!
                pos += 1
                var inner = flags
                let body = try closeGroup(try parseAlternation(&inner))
                return .lookahead(body, negate: c == 0x21)
            case 0x3E:  // (?>
                pos += 1
                var inner = flags
                return .atomic(try closeGroup(try parseAlternation(&inner)))
            case 0x3C:  // (?<= (?<! or (?<name>
                if isChar("=", at: 1) || isChar("!", at: 1) {
                    let negate = isChar("!", at: 1)
                    pos += 2
                    var inner = flags
                    let body = try closeGroup(try parseAlternation(&inner))
                    guard let width = body.fixedWidth else {
                        throw RegexSyntaxError(message: "lookbehind of variable width is not supported")
                    }
                    return .lookbehind(body, negate: negate, width: width)
                }
                pos += 1
                while let n = peek(), n != 0x3E { pos += 1 }
                guard isChar(">") else { throw RegexSyntaxError(message: "unterminated group name") }
                pos += 1
                return try parseCapture(flags)
            case 0x27:  // (?'name'
                pos += 1
                while let n = peek(), n != 0x27 { pos += 1 }
                guard isChar("'") else { throw RegexSyntaxError(message: "unterminated group name") }
                pos += 1
                return try parseCapture(flags)
            case 0x23:  // (?# comment )
                while let n = peek(), n != 0x29 { pos += 1 }
                guard isChar(")") else { throw RegexSyntaxError(message: "unterminated comment") }
                pos += 1
                return .empty
            default:
                // Flag group: (?imx-imx) or (?imx-imx:...)
                var on = true
                var newFlags = flags
                while let f = peek(), f != 0x3A, f != 0x29 {
                    switch f {
                    case 0x2D: on = false
                    case 0x69: newFlags.ignoreCase = on  // i
                    case 0x6D: newFlags.dotAll = on  // m (Ruby: dot matches newline)
                    case 0x78: throw RegexSyntaxError(message: "extended mode (?x) is not supported")
                    default:
                        throw RegexSyntaxError(message: "unsupported group syntax '(?\(String(UnicodeScalar(f).map(Character.init) ?? "?"))'")
                    }
                    pos += 1
                }
                guard let end = peek() else { throw RegexSyntaxError(message: "unterminated group") }
                pos += 1
                if end == 0x29 {
                    flags = newFlags
                    return nil
                }
                var inner = newFlags
                return try closeGroup(try parseAlternation(&inner))
            }
        }
        return try parseCapture(flags)
    }

    private mutating func parseCapture(_ flags: Flags) throws -> RegexNode {
        captureCount += 1
        let index = captureCount
        var inner = flags
        return .capture(try closeGroup(try parseAlternation(&inner)), index: index)
    }

    private mutating func closeGroup(_ node: RegexNode) throws -> RegexNode {
        guard isChar(")") else { throw RegexSyntaxError(message: "missing ')'") }
        pos += 1
        return node
    }

    private mutating func parseAtom(_ flags: Flags) throws -> RegexNode {
        let c = scalars[pos]
        pos += 1
        switch c {
        case 0x2E: return .any(dotAll: flags.dotAll)  // .
        case 0x5E: return .assertion(.lineStart)  // ^
        case 0x24: return .assertion(.lineEnd)  // $
        case 0x5B: return .set(try parseBracket(), ignoreCase: flags.ignoreCase)  // [
        case 0x5C: return try parseEscape(flags)  // \
        case 0x2A, 0x2B, 0x3F:
            throw RegexSyntaxError(message: "quantifier without a target at position \(pos - 1)")
        default: return .char(c, ignoreCase: flags.ignoreCase)
        }
    }

    private mutating func parseEscape(_ flags: Flags) throws -> RegexNode {
        guard let c = peek() else { throw RegexSyntaxError(message: "pattern ends with a backslash") }
        switch c {
        case 0x41: pos += 1; return .assertion(.textStart)  // \A
        case 0x7A: pos += 1; return .assertion(.textEnd)  // \z
        case 0x5A: pos += 1; return .assertion(.textEndBeforeNewline)  // \Z
        case 0x62: pos += 1; return .assertion(.wordBoundary)  // \b
        case 0x42: pos += 1; return .assertion(.notWordBoundary)  // \B
        case 0x47: pos += 1; return .assertion(.textStart)  // \G: the search start, which is where we anchor
        default:
            if let set = try parseClassEscape() { return .set(set, ignoreCase: flags.ignoreCase) }
            return .char(try parseCharEscape(), ignoreCase: flags.ignoreCase)
        }
    }

    /// `\d \D \w \W \s \S \h \H \p{..} \P{..}` at `pos` (after the backslash); nil otherwise.
    private mutating func parseClassEscape() throws -> CharacterClass? {
        guard let c = peek() else { return nil }
        switch c {
        case 0x64: pos += 1; return .digit
        case 0x44: pos += 1; return CharacterClass.digit.inverted()
        case 0x77: pos += 1; return .word
        case 0x57: pos += 1; return CharacterClass.word.inverted()
        case 0x73: pos += 1; return .space
        case 0x53: pos += 1; return CharacterClass.space.inverted()
        case 0x68: pos += 1; return .hexDigit
        case 0x48: pos += 1; return CharacterClass.hexDigit.inverted()
        case 0x70, 0x50:  // p P
            pos += 1
            var negate = c == 0x50
            guard isChar("{") else { throw RegexSyntaxError(message: "expected '{' after \\p") }
            pos += 1
            if isChar("^") {
                negate.toggle()
                pos += 1
            }
            var name = ""
            while let n = peek(), n != 0x7D {
                name.unicodeScalars.append(Unicode.Scalar(n)!)
                pos += 1
            }
            guard isChar("}") else { throw RegexSyntaxError(message: "unterminated \\p{") }
            pos += 1
            var set = try RegexParser.propertyClass(name)
            if negate { set = set.inverted() }
            return set
        default:
            return nil
        }
    }

    static func propertyClass(_ name: String) throws -> CharacterClass {
        var set = CharacterClass()
        let key = CategoryBits.normalize(name)
        if let bits = CategoryBits.names[key] {
            set.categories = bits
        } else {
            switch key {
            case "alpha", "alphabetic": set.properties = [.alphabetic]
            case "space", "whitespace": set.properties = [.whiteSpace]
            case "ascii": set.properties = [.ascii]
            case "word": set = .word
            case "digit": set = .digit
            default:
                throw RegexSyntaxError(message: "Unicode property \\p{\(name)} is not supported")
            }
        }
        set.finalize()
        return set
    }

    /// A single-character escape at `pos` (after the backslash).
    private mutating func parseCharEscape() throws -> UInt32 {
        guard pos < scalars.count else { throw RegexSyntaxError(message: "pattern ends with a backslash") }
        let c = scalars[pos]
        pos += 1
        switch c {
        case 0x6E: return 0x0A  // n
        case 0x74: return 0x09  // t
        case 0x72: return 0x0D  // r
        case 0x66: return 0x0C  // f
        case 0x76: return 0x0B  // v
        case 0x61: return 0x07  // a
        case 0x65: return 0x1B  // e
        case 0x30:  // \0 then up to two octal digits
            var v: UInt32 = 0
            var k = 0
            while k < 2, let d = peek(), d >= 0x30, d <= 0x37 {
                v = v * 8 + (d - 0x30)
                pos += 1
                k += 1
            }
            return v
        case 0x78:  // \xHH or \x{H...}
            if isChar("{") {
                pos += 1
                return try hexDigits(max: 8, terminator: 0x7D)
            }
            return try hexDigits(exactly: 2)
        case 0x75:  // \uHHHH
            return try hexDigits(exactly: 4)
        case 0x31...0x39, 0x6B:  // \1 .. \9, \k<name>
            throw RegexSyntaxError(message: "back-references are not supported")
        case 0x52, 0x58, 0x4B, 0x4E, 0x4F, 0x79, 0x59:  // \R \X \K \N \O \y \Y
            throw RegexSyntaxError(message: "escape \\\(Character(Unicode.Scalar(c)!)) is not supported")
        default:
            return c  // escaped punctuation or letters without special meaning stand for themselves
        }
    }

    private mutating func hexDigits(exactly n: Int) throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<n {
            guard let d = peek(), d < 128, let h = hexValue(UInt8(d)) else {
                throw RegexSyntaxError(message: "invalid hexadecimal escape")
            }
            v = v * 16 + UInt32(h)
            pos += 1
        }
        return v
    }

    private mutating func hexDigits(max: Int, terminator: UInt32) throws -> UInt32 {
        var v: UInt32 = 0
        var k = 0
        while let d = peek(), d != terminator {
            guard k < max, d < 128, let h = hexValue(UInt8(d)) else {
                throw RegexSyntaxError(message: "invalid hexadecimal escape")
            }
            v = v * 16 + UInt32(h)
            pos += 1
            k += 1
        }
        guard peek() == terminator, k > 0, v <= 0x10FFFF else { throw RegexSyntaxError(message: "invalid hexadecimal escape") }
        pos += 1
        return v
    }

    /// Parses a bracket expression after its `[`.
    private mutating func parseBracket() throws -> CharacterClass {
        depth += 1
        defer { depth -= 1 }
        guard depth <= maxDepth else { throw RegexSyntaxError(message: "classes nested deeper than \(maxDepth)") }
        var set = CharacterClass()
        if isChar("^") {
            set.negated = true
            pos += 1
        }
        var first = true
        while true {
            guard let c = peek() else { throw RegexSyntaxError(message: "unterminated character class") }
            if c == 0x5D /* ] */ && !first {
                pos += 1
                break
            }
            first = false
            if c == 0x5B /* [ */ {
                if isChar(":", at: 1) { throw RegexSyntaxError(message: "POSIX bracket classes are not supported") }
                pos += 1
                set.nested.append(try parseBracket())
                continue
            }
            if c == 0x26, isChar("&", at: 1) {
                throw RegexSyntaxError(message: "class intersection '&&' is not supported")
            }
            // A single character, maybe the start of a range.
            let low: UInt32
            if c == 0x5C {
                pos += 1
                if let sub = try parseClassEscape() {
                    set.nested.append(sub)
                    continue
                }
                if isChar("b") {  // \b inside a class is backspace
                    pos += 1
                    low = 0x08
                } else {
                    low = try parseCharEscape()
                }
            } else {
                pos += 1
                low = c
            }
            if isChar("-"), let after = peek(1), after != 0x5D {
                pos += 1
                let high: UInt32
                if after == 0x5C {
                    pos += 1
                    if isChar("b") {
                        pos += 1
                        high = 0x08
                    } else {
                        let save = pos
                        if try parseClassEscape() != nil {
                            pos = save
                            throw RegexSyntaxError(message: "a class shorthand cannot end a range")
                        }
                        high = try parseCharEscape()
                    }
                } else if after == 0x5B {
                    throw RegexSyntaxError(message: "a nested class cannot end a range")
                } else {
                    pos += 1
                    high = after
                }
                guard low <= high else { throw RegexSyntaxError(message: "empty range in character class") }
                set.ranges.append(low...high)
            } else {
                set.ranges.append(low...low)
            }
        }
        set.finalize()
        return set
    }
}
