/// Unicode general categories as bits, so a class like `[^\s\p{L}\p{N}]` tests a non-ASCII scalar
/// with one category lookup and one mask test.
enum CategoryBits {
    static func bit(_ category: Unicode.GeneralCategory) -> UInt32 {
        switch category {
        case .uppercaseLetter: return 1 << 0
        case .lowercaseLetter: return 1 << 1
        case .titlecaseLetter: return 1 << 2
        case .modifierLetter: return 1 << 3
        case .otherLetter: return 1 << 4
        case .nonspacingMark: return 1 << 5
        case .spacingMark: return 1 << 6
        case .enclosingMark: return 1 << 7
        case .decimalNumber: return 1 << 8
        case .letterNumber: return 1 << 9
        case .otherNumber: return 1 << 10
        case .connectorPunctuation: return 1 << 11
        case .dashPunctuation: return 1 << 12
        case .openPunctuation: return 1 << 13
        case .closePunctuation: return 1 << 14
        case .initialPunctuation: return 1 << 15
        case .finalPunctuation: return 1 << 16
        case .otherPunctuation: return 1 << 17
        case .mathSymbol: return 1 << 18
        case .currencySymbol: return 1 << 19
        case .modifierSymbol: return 1 << 20
        case .otherSymbol: return 1 << 21
        case .spaceSeparator: return 1 << 22
        case .lineSeparator: return 1 << 23
        case .paragraphSeparator: return 1 << 24
        case .control: return 1 << 25
        case .format: return 1 << 26
        case .surrogate: return 1 << 27
        case .privateUse: return 1 << 28
        case .unassigned: return 1 << 29
        @unknown default: return 1 << 29
        }
    }

    static let letter: UInt32 = 0b11111
    static let casedLetter: UInt32 = 0b00111
    static let mark: UInt32 = 0b111 << 5
    static let number: UInt32 = 0b111 << 8
    static let punctuation: UInt32 = 0b111_1111 << 11
    static let symbol: UInt32 = 0b1111 << 18
    static let separator: UInt32 = 0b111 << 22
    static let other: UInt32 = 0b11111 << 25

    /// Category bit of a scalar value (invalid values count as unassigned).
    @inline(__always)
    static func of(_ c: UInt32) -> UInt32 {
        if c < 128 { return asciiTable[Int(c)] }
        guard let s = Unicode.Scalar(c) else { return 1 << 27 }
        return bit(s.properties.generalCategory)
    }

    static let asciiTable: [UInt32] = (0..<128).map { bit(Unicode.Scalar(UInt8($0)).properties.generalCategory) }

    /// Named categories accepted in `\p{...}`: short and long names, compared after dropping case,
    /// spaces, hyphens and underscores, as Oniguruma does.
    static let names: [String: UInt32] = {
        var m: [String: UInt32] = [:]
        func add(_ bits: UInt32, _ aliases: String...) {
            for a in aliases { m[normalize(a)] = bits }
        }
        add(letter, "L", "Letter")
        add(casedLetter, "LC", "L&", "Cased_Letter")
        add(1 << 0, "Lu", "Uppercase_Letter")
        add(1 << 1, "Ll", "Lowercase_Letter")
        add(1 << 2, "Lt", "Titlecase_Letter")
        add(1 << 3, "Lm", "Modifier_Letter")
        add(1 << 4, "Lo", "Other_Letter")
        add(mark, "M", "Mark", "Combining_Mark")
        add(1 << 5, "Mn", "Nonspacing_Mark")
        add(1 << 6, "Mc", "Spacing_Mark")
        add(1 << 7, "Me", "Enclosing_Mark")
        add(number, "N", "Number")
        add(1 << 8, "Nd", "Decimal_Number", "Digit")
        add(1 << 9, "Nl", "Letter_Number")
        add(1 << 10, "No", "Other_Number")
        add(punctuation, "P", "Punctuation", "Punct")
        add(1 << 11, "Pc", "Connector_Punctuation")
        add(1 << 12, "Pd", "Dash_Punctuation")
        add(1 << 13, "Ps", "Open_Punctuation")
        add(1 << 14, "Pe", "Close_Punctuation")
        add(1 << 15, "Pi", "Initial_Punctuation")
        add(1 << 16, "Pf", "Final_Punctuation")
        add(1 << 17, "Po", "Other_Punctuation")
        add(symbol, "S", "Symbol")
        add(1 << 18, "Sm", "Math_Symbol")
        add(1 << 19, "Sc", "Currency_Symbol")
        add(1 << 20, "Sk", "Modifier_Symbol")
        add(1 << 21, "So", "Other_Symbol")
        add(separator, "Z", "Separator")
        add(1 << 22, "Zs", "Space_Separator")
        add(1 << 23, "Zl", "Line_Separator")
        add(1 << 24, "Zp", "Paragraph_Separator")
        add(other, "C", "Other")
        add(1 << 25, "Cc", "Control", "Cntrl")
        add(1 << 26, "Cf", "Format")
        add(1 << 27, "Cs", "Surrogate")
        add(1 << 28, "Co", "Private_Use")
        add(1 << 29, "Cn", "Unassigned")
        add(0x3FFF_FFFF, "Any")
        return m
    }()

    static func normalize(_ name: String) -> String {
        String(name.lowercased().filter { $0 != "_" && $0 != " " && $0 != "-" })
    }
}

/// One bracket expression or shorthand (`\s`, `\p{L}`, `[^\r\n\p{L}\p{N}]`, ...).
///
/// Membership = (ranges ∪ categories ∪ properties ∪ included sub-classes ∪ complements of excluded
/// sub-classes), optionally negated. ASCII membership is precomputed into a 128-bit map.
struct CharacterClass: Sendable {
    enum Property: Sendable {
        case alphabetic
        case whiteSpace
        case ascii
    }

    var negated = false
    var ranges: [ClosedRange<UInt32>] = []
    var categories: UInt32 = 0
    var properties: [Property] = []
    /// Nested classes (e.g. `\S` or `[^...]` inside a bracket) that are unioned in as they are.
    var nested: [CharacterClass] = []
    private var asciiLow: UInt64 = 0
    private var asciiHigh: UInt64 = 0

    /// Called after construction to build the ASCII fast path.
    mutating func finalize() {
        asciiLow = 0
        asciiHigh = 0
        for c in UInt32(0)..<128 where slowContains(c) {
            if c < 64 { asciiLow |= 1 << UInt64(c) } else { asciiHigh |= 1 << UInt64(c - 64) }
        }
    }

    @inline(__always)
    func contains(_ c: UInt32) -> Bool {
        if c < 64 { return asciiLow & (1 << UInt64(c)) != 0 }
        if c < 128 { return asciiHigh & (1 << UInt64(c - 64)) != 0 }
        return slowContains(c)
    }

    private func slowContains(_ c: UInt32) -> Bool {
        var hit = false
        if categories != 0, CategoryBits.of(c) & categories != 0 { hit = true }
        if !hit {
            for r in ranges where r.contains(c) {
                hit = true
                break
            }
        }
        if !hit, !properties.isEmpty, let s = Unicode.Scalar(c) {
            for p in properties {
                switch p {
                case .alphabetic: hit = s.properties.isAlphabetic
                case .whiteSpace: hit = s.properties.isWhitespace
                case .ascii: hit = c < 128
                }
                if hit { break }
            }
        }
        if !hit {
            for n in nested where n.contains(c) {
                hit = true
                break
            }
        }
        return hit != negated
    }

    /// Membership under case-insensitive matching: the scalar or any of its simple case variants.
    func containsIgnoringCase(_ c: UInt32) -> Bool {
        if contains(c) { return true }
        for v in caseVariants(c) where contains(v) { return true }
        return false
    }

    // MARK: Shorthands (Oniguruma's Unicode definitions)

    /// `\s`: U+0009–U+000D, U+0085 and the separators Zs/Zl/Zp.
    static var space: CharacterClass {
        var c = CharacterClass()
        c.ranges = [0x09...0x0D, 0x85...0x85]
        c.categories = CategoryBits.separator
        c.finalize()
        return c
    }

    /// `\w`: letters, marks, numbers and connector punctuation.
    static var word: CharacterClass {
        var c = CharacterClass()
        c.categories = CategoryBits.letter | CategoryBits.mark | CategoryBits.number | (1 << 11)
        c.finalize()
        return c
    }

    /// `\d`: decimal numbers.
    static var digit: CharacterClass {
        var c = CharacterClass()
        c.categories = 1 << 8
        c.finalize()
        return c
    }

    /// `\h` in Oniguruma is a hexadecimal digit.
    static var hexDigit: CharacterClass {
        var c = CharacterClass()
        c.ranges = [0x30...0x39, 0x41...0x46, 0x61...0x66]
        c.finalize()
        return c
    }

    func inverted() -> CharacterClass {
        var c = self
        c.negated.toggle()
        c.finalize()
        return c
    }
}

/// Simple case folding: a scalar's lowercase form of its uppercase form when both are single scalars
/// (maps 'ſ' and 'S' to 's', 'K' (Kelvin) to 'k').
@inline(__always)
func simpleFold(_ c: UInt32) -> UInt32 {
    if c < 128 {
        return (c >= 0x41 && c <= 0x5A) ? c + 32 : c
    }
    guard let s = Unicode.Scalar(c) else { return c }
    let upper = singleScalar(s.properties.uppercaseMapping) ?? s
    return singleScalar(upper.properties.lowercaseMapping)?.value ?? c
}

private func singleScalar(_ s: String) -> Unicode.Scalar? {
    var it = s.unicodeScalars.makeIterator()
    guard let first = it.next(), it.next() == nil else { return nil }
    return first
}

/// The full case folding of `c` when it is several scalars ("ß" -> "ss", "ﬁ" -> "fi"), else nil.
func multiScalarFold(_ c: UInt32) -> [UInt32]? {
    guard c >= 0x80, let s = Unicode.Scalar(c) else { return nil }
    let folded = s.properties.uppercaseMapping.unicodeScalars.flatMap { $0.properties.lowercaseMapping.unicodeScalars }
    return folded.count > 1 ? folded.map(\.value) : nil
}

/// The other scalars that fold together with `c` (at most a few).
func caseVariants(_ c: UInt32) -> [UInt32] {
    if c < 128 {
        if c >= 0x41 && c <= 0x5A { return [c + 32] }
        if c >= 0x61 && c <= 0x7A { return [c - 32] }
        return []
    }
    guard let s = Unicode.Scalar(c) else { return [] }
    var out: [UInt32] = []
    for m in [s.properties.lowercaseMapping, s.properties.uppercaseMapping, s.properties.titlecaseMapping] {
        if let v = singleScalar(m)?.value, v != c, !out.contains(v) { out.append(v) }
    }
    return out
}
