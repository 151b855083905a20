/// GPT-2's reversible byte <-> printable-character map: bytes that are printable Latin-1 map to
/// themselves, the other 68 bytes to U+0100... in order. Byte-level vocabularies spell every token
/// in these characters (a space is "Ġ", a newline "Ċ").
enum ByteLevelAlphabet {
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// Inverse map, indexed by scalar value (all mapped scalars are below 0x144); -1 = not mapped.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    @inline(__always)
    static func byte(for scalar: UInt32) -> UInt8? {
        guard scalar < 0x144 else { return nil }
        let b = byteForScalar[Int(scalar)]
        return b < 0 ? nil : UInt8(b)
    }

    /// Maps text to its byte-level spelling: every UTF-8 byte becomes one scalar.
    static func encode(_ scalars: ArraySlice<UInt32>) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(scalars.count * 2)
        var utf8: [UInt8] = []
        utf8.reserveCapacity(4)
        for s in scalars {
            if s < 0x80 {
                out.append(scalarForByte[Int(s)])
                continue
            }
            utf8.removeAll(keepingCapacity: true)
            appendUTF8(s, to: &utf8)
            for b in utf8 { out.append(scalarForByte[Int(b)]) }
        }
        return out
    }
}
