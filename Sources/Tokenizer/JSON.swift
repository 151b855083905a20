import Foundation

/// A purpose-built JSON reader for tokenizer files.
///
/// Why not `JSONSerialization`/`Codable`: a Qwen2- or Llama-3-sized `tokenizer.json` holds ~150k vocab
/// entries and ~150k merges, and building a Foundation object graph (or a `String` per key) for them
/// dominates load time. This reader parses into a flat "tape" of nodes that point back into the raw
/// bytes; strings are unescaped only when read, and the vocabulary can be copied straight from the
/// file's bytes into the token table without creating a `String` per token.
final class JSONDocument {
    enum Kind: UInt8 { case null, bool, number, string, array, object }

    /// One parsed value. Strings and numbers point at their bytes (`start..<end`, quotes excluded);
    /// containers hold their element count and `next`, the tape index just past their subtree, so a
    /// sibling walk skips nested values in O(1).
    struct Node {
        var kind: Kind
        var flag: Bool  // bool value, or "string contains escapes"
        var start: Int32
        var end: Int32
        var count: Int32
        var next: Int32
    }

    let bytes: [UInt8]
    private(set) var nodes: [Node] = []
    /// Names the file in error messages.
    let source: String

    init(data: Data, source: String) throws {
        self.bytes = [UInt8](data)
        self.source = source
        guard bytes.count < Int(Int32.max) else {
            throw TokenizerError(file: source, path: "", message: "file too large (\(bytes.count) bytes)")
        }
        nodes.reserveCapacity(max(16, bytes.count / 12))
        try bytes.withUnsafeBufferPointer { buffer in
            var parser = Parser(bytes: buffer, source: source)
            try parser.parseDocument(into: &nodes)
        }
    }

    var root: JSONValue { JSONValue(document: self, index: 0, path: "") }

    // MARK: - String access

    /// Calls `body` with the unescaped UTF-8 bytes of the string node at `index`.
    func withStringBytes<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let node = nodes[index]
        return try bytes.withUnsafeBufferPointer { all in
            let raw = UnsafeBufferPointer(rebasing: all[Int(node.start)..<Int(node.end)])
            if !node.flag { return try body(raw) }
            let unescaped = JSONDocument.unescape(raw)
            return try unescaped.withUnsafeBufferPointer { try body($0) }
        }
    }

    func string(at index: Int) -> String {
        withStringBytes(index) { String(decoding: $0, as: UTF8.self) }
    }

    /// Decodes JSON escapes. Lone surrogates (which `\u` escapes can express but UTF-8 cannot)
    /// become U+FFFD.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= raw.count else { return nil }
            var v: UInt32 = 0
            for k in 0..<4 {
                guard let d = hexValue(raw[at + k]) else { return nil }
                v = v << 4 | UInt32(d)
            }
            return v
        }
        while i < raw.count {
            let b = raw[i]
            if b != UInt8(ascii: "\\") {
                out.append(b)
                i += 1
                continue
            }
            let e = i + 1 < raw.count ? raw[i + 1] : 0
            i += 2
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar: UInt32 = 0xFFFD
                if let hi = hex4(i) {
                    i += 4
                    if (0xD800..<0xDC00).contains(hi) {
                        if i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u"),
                            let lo = hex4(i + 2), (0xDC00..<0xE000).contains(lo)
                        {
                            scalar = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            i += 6
                        }
                    } else if !(0xDC00..<0xE000).contains(hi) {
                        scalar = hi
                    }
                }
                appendUTF8(scalar, to: &out)
            default: out.append(e)  // \" \\ \/
            }
        }
        return out
    }

    // MARK: - Parser

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let source: String
        var pos = 0
        static let maxDepth = 256

        init(bytes: UnsafeBufferPointer<UInt8>, source: String) {
            self.bytes = bytes
            self.source = source
        }

        mutating func parseDocument(into nodes: inout [Node]) throws {
            // A UTF-8 byte order mark is tolerated, as serde_json does not but editors write it.
            if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { pos = 3 }
            skipWhitespace()
            try parseValue(into: &nodes, depth: 0)
            skipWhitespace()
            if pos != bytes.count { throw error("unexpected data after the JSON value") }
        }

        func error(_ message: String) -> TokenizerError {
            var line = 1
            var column = 1
            for i in 0..<min(pos, bytes.count) {
                if bytes[i] == 0x0A {
                    line += 1
                    column = 1
                } else if bytes[i] & 0xC0 != 0x80 {
                    column += 1
                }
            }
            return TokenizerError(file: source, path: "", message: "malformed JSON at line \(line), column \(column): \(message)")
        }

        mutating func skipWhitespace() {
            while pos < bytes.count {
                switch bytes[pos] {
                case 0x20, 0x0A, 0x0D, 0x09: pos += 1
                default: return
                }
            }
        }

        mutating func parseValue(into nodes: inout [Node], depth: Int) throws {
            guard pos < bytes.count else { throw error("unexpected end of input") }
            switch bytes[pos] {
            case UInt8(ascii: "{"): try parseObject(into: &nodes, depth: depth)
            case UInt8(ascii: "["): try parseArray(into: &nodes, depth: depth)
            case UInt8(ascii: "\""): try parseString(into: &nodes)
            case UInt8(ascii: "t"): try parseLiteral("true", kind: .bool, flag: true, into: &nodes)
            case UInt8(ascii: "f"): try parseLiteral("false", kind: .bool, flag: false, into: &nodes)
            case UInt8(ascii: "n"): try parseLiteral("null", kind: .null, flag: false, into: &nodes)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try parseNumber(into: &nodes)
            default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[pos])))'")
            }
        }

        mutating func parseLiteral(_ word: StaticString, kind: Kind, flag: Bool, into nodes: inout [Node]) throws {
            let n = word.utf8CodeUnitCount
            guard pos + n <= bytes.count else { throw error("unexpected end of input") }
            let w = UnsafeBufferPointer(start: word.utf8Start, count: n)
            for k in 0..<n where bytes[pos + k] != w[k] { throw error("invalid literal") }
            nodes.append(Node(kind: kind, flag: flag, start: Int32(pos), end: Int32(pos + n), count: 0, next: Int32(nodes.count + 1)))
            pos += n
        }

        mutating func parseNumber(into nodes: inout [Node]) throws {
            let start = pos
            if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            var digits = 0
            while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
                pos += 1
                digits += 1
            }
            if digits == 0 { throw error("invalid number") }
            if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
                pos += 1
                var frac = 0
                while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
                    pos += 1
                    frac += 1
                }
                if frac == 0 { throw error("invalid number") }
            }
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
                pos += 1
                if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
                var exp = 0
                while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
                    pos += 1
                    exp += 1
                }
                if exp == 0 { throw error("invalid number") }
            }
            nodes.append(Node(kind: .number, flag: false, start: Int32(start), end: Int32(pos), count: 0, next: Int32(nodes.count + 1)))
        }

        mutating func parseString(into nodes: inout [Node]) throws {
            pos += 1  // opening quote
            let start = pos
            var escaped = false
            while true {
                guard pos < bytes.count else { throw error("unterminated string") }
                let b = bytes[pos]
                if b == UInt8(ascii: "\"") { break }
                if b == UInt8(ascii: "\\") {
                    escaped = true
                    guard pos + 1 < bytes.count else { throw error("unterminated string") }
                    switch bytes[pos + 1] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        pos += 2
                    case UInt8(ascii: "u"):
                        guard pos + 6 <= bytes.count, (2..<6).allSatisfy({ hexValue(bytes[pos + $0]) != nil }) else {
                            throw error("invalid \\u escape")
                        }
                        pos += 6
                    default:
                        throw error("invalid escape sequence")
                    }
                    continue
                }
                if b < 0x20 { throw error("control character in string") }
                pos += 1
            }
            let end = pos
            pos += 1  // closing quote
            if !escaped {
                // Raw bytes are used as-is later, so they must be valid UTF-8 now.
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if !isValidUTF8(slice) {
                    pos = start
                    throw error("invalid UTF-8 in string")
                }
            }
            nodes.append(Node(kind: .string, flag: escaped, start: Int32(start), end: Int32(end), count: 0, next: Int32(nodes.count + 1)))
        }

        mutating func parseArray(into nodes: inout [Node], depth: Int) throws {
            guard depth < Parser.maxDepth else { throw error("nesting deeper than \(Parser.maxDepth)") }
            let me = nodes.count
            nodes.append(Node(kind: .array, flag: false, start: Int32(pos), end: 0, count: 0, next: 0))
            pos += 1
            skipWhitespace()
            var count: Int32 = 0
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
                pos += 1
            } else {
                while true {
                    try parseValue(into: &nodes, depth: depth + 1)
                    count += 1
                    skipWhitespace()
                    guard pos < bytes.count else { throw error("unterminated array") }
                    if bytes[pos] == UInt8(ascii: ",") {
                        pos += 1
                        skipWhitespace()
                        continue
                    }
                    if bytes[pos] == UInt8(ascii: "]") {
                        pos += 1
                        break
                    }
                    throw error("expected ',' or ']' in array")
                }
            }
            nodes[me].count = count
            nodes[me].end = Int32(pos)
            nodes[me].next = Int32(nodes.count)
        }

        mutating func parseObject(into nodes: inout [Node], depth: Int) throws {
            guard depth < Parser.maxDepth else { throw error("nesting deeper than \(Parser.maxDepth)") }
            let me = nodes.count
            nodes.append(Node(kind: .object, flag: false, start: Int32(pos), end: 0, count: 0, next: 0))
            pos += 1
            skipWhitespace()
            var count: Int32 = 0
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
                pos += 1
            } else {
                while true {
                    guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a string key in object") }
                    try parseString(into: &nodes)
                    skipWhitespace()
                    guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected ':' after object key") }
                    pos += 1
                    skipWhitespace()
                    try parseValue(into: &nodes, depth: depth + 1)
                    count += 1
                    skipWhitespace()
                    guard pos < bytes.count else { throw error("unterminated object") }
                    if bytes[pos] == UInt8(ascii: ",") {
                        pos += 1
                        skipWhitespace()
                        continue
                    }
                    if bytes[pos] == UInt8(ascii: "}") {
                        pos += 1
                        break
                    }
                    throw error("expected ',' or '}' in object")
                }
            }
            nodes[me].count = count
            nodes[me].end = Int32(pos)
            nodes[me].next = Int32(nodes.count)
        }
    }
}

@inline(__always)
func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case 0x30...0x39: return b - 0x30
    case 0x41...0x46: return b - 0x41 + 10
    case 0x61...0x66: return b - 0x61 + 10
    default: return nil
    }
}

func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        out.append(UInt8(scalar))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | (scalar >> 6)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | (scalar >> 12)))
        out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    default:
        out.append(UInt8(0xF0 | (scalar >> 18)))
        out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    }
}

func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var i = 0
    let n = bytes.count
    while i < n {
        let b = bytes[i]
        if b < 0x80 {
            i += 1
            continue
        }
        var need = 0
        var minScalar: UInt32 = 0
        var scalar: UInt32 = 0
        if b & 0xE0 == 0xC0 {
            need = 1; scalar = UInt32(b & 0x1F); minScalar = 0x80
        } else if b & 0xF0 == 0xE0 {
            need = 2; scalar = UInt32(b & 0x0F); minScalar = 0x800
        } else if b & 0xF8 == 0xF0 {
            need = 3; scalar = UInt32(b & 0x07); minScalar = 0x10000
        } else {
            return false
        }
        guard i + need < n else { return false }
        for k in 1...need {
            let c = bytes[i + k]
            if c & 0xC0 != 0x80 { return false }
            scalar = scalar << 6 | UInt32(c & 0x3F)
        }
        if scalar < minScalar || scalar > 0x10FFFF || (0xD800..<0xE000).contains(scalar) { return false }
        i += need + 1
    }
    return true
}

/// A position in a `JSONDocument` together with its JSON path, so that every accessor can throw an
/// error naming the file and the field at fault.
struct JSONValue {
    let document: JSONDocument
    let index: Int
    let path: String

    var node: JSONDocument.Node { document.nodes[index] }
    var kind: JSONDocument.Kind { node.kind }
    var isNull: Bool { kind == .null }

    func error(_ message: String) -> TokenizerError {
        TokenizerError(file: document.source, path: path, message: message)
    }

    private func typeError(_ expected: String) -> TokenizerError {
        error("expected \(expected), found \(kindName)")
    }

    var kindName: String {
        switch kind {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    static func childPath(_ parent: String, key: String) -> String {
        parent.isEmpty ? key : parent + "." + key
    }

    static func childPath(_ parent: String, index: Int) -> String {
        parent + "[\(index)]"
    }

    // MARK: Objects

    /// The member called `key`, or nil when absent. (Present-but-null is returned as a null value.)
    func member(_ key: String) -> JSONValue? {
        guard kind == .object else { return nil }
        let nodes = document.nodes
        var i = index + 1
        let keyBytes = Array(key.utf8)
        for _ in 0..<Int(node.count) {
            let matches = document.withStringBytes(i) { $0.elementsEqual(keyBytes) }
            let valueIndex = i + 1
            if matches { return JSONValue(document: document, index: valueIndex, path: JSONValue.childPath(path, key: key)) }
            i = Int(nodes[valueIndex].next)
        }
        return nil
    }

    /// A member that must be present; null counts as present.
    func required(_ key: String) throws -> JSONValue {
        guard kind == .object else { throw typeError("an object") }
        guard let value = member(key) else {
            throw TokenizerError(file: document.source, path: JSONValue.childPath(path, key: key), message: "missing required field")
        }
        return value
    }

    /// A member that is absent or null maps to nil.
    func optional(_ key: String) throws -> JSONValue? {
        guard kind == .object else { throw typeError("an object") }
        guard let value = member(key), !value.isNull else { return nil }
        return value
    }

    /// Calls `body` for each member, with the key's unescaped bytes, in file order.
    func forEachMember(_ body: (UnsafeBufferPointer<UInt8>, JSONValue) throws -> Void) throws {
        guard kind == .object else { throw typeError("an object") }
        var i = index + 1
        for _ in 0..<Int(node.count) {
            let valueIndex = i + 1
            try document.withStringBytes(i) { key in
                // The path is built lazily by callers that need it (see `memberPath`).
                try body(key, JSONValue(document: document, index: valueIndex, path: path))
            }
            i = Int(document.nodes[valueIndex].next)
        }
    }

    func members() throws -> [(key: String, value: JSONValue)] {
        guard kind == .object else { throw typeError("an object") }
        var out: [(String, JSONValue)] = []
        var i = index + 1
        for _ in 0..<Int(node.count) {
            let key = document.string(at: i)
            out.append((key, JSONValue(document: document, index: i + 1, path: JSONValue.childPath(path, key: key))))
            i = Int(document.nodes[i + 1].next)
        }
        return out
    }

    var count: Int { Int(node.count) }

    // MARK: Arrays

    func array() throws -> [JSONValue] {
        guard kind == .array else { throw typeError("an array") }
        var out: [JSONValue] = []
        out.reserveCapacity(Int(node.count))
        var i = index + 1
        for k in 0..<Int(node.count) {
            out.append(JSONValue(document: document, index: i, path: JSONValue.childPath(path, index: k)))
            i = Int(document.nodes[i].next)
        }
        return out
    }

    /// Iterates elements without building a path string per element (the hot loop for merges);
    /// `body` gets the element position for error messages.
    func forEachElement(_ body: (Int, JSONValue) throws -> Void) throws {
        guard kind == .array else { throw typeError("an array") }
        var i = index + 1
        for k in 0..<Int(node.count) {
            try body(k, JSONValue(document: document, index: i, path: path))
            i = Int(document.nodes[i].next)
        }
    }

    // MARK: Scalars

    func string() throws -> String {
        guard kind == .string else { throw typeError("a string") }
        return document.string(at: index)
    }

    func withStringBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R {
        guard kind == .string else { throw typeError("a string") }
        return try document.withStringBytes(index, body)
    }

    func bool() throws -> Bool {
        guard kind == .bool else { throw typeError("a boolean") }
        return node.flag
    }

    /// An integer literal. Fractions and exponents are rejected rather than truncated.
    func int() throws -> Int {
        guard kind == .number else { throw typeError("an integer") }
        let n = node
        var value = 0
        var negative = false
        var ok = true
        document.bytes.withUnsafeBufferPointer { b in
            var i = Int(n.start)
            if b[i] == UInt8(ascii: "-") {
                negative = true
                i += 1
            }
            while i < Int(n.end) {
                let d = b[i]
                guard d >= 0x30, d <= 0x39, value < (Int.max - 9) / 10 else {
                    ok = false
                    return
                }
                value = value * 10 + Int(d - 0x30)
                i += 1
            }
        }
        guard ok else { throw error("expected an integer, found \(numberText)") }
        return negative ? -value : value
    }

    func double() throws -> Double {
        guard kind == .number else { throw typeError("a number") }
        guard let v = Double(numberText) else { throw error("invalid number \(numberText)") }
        return v
    }

    private var numberText: String {
        let n = node
        return String(decoding: document.bytes[Int(n.start)..<Int(n.end)], as: UTF8.self)
    }

    // MARK: Convenience for optional typed members

    func optionalString(_ key: String) throws -> String? { try optional(key)?.string() }
    func optionalBool(_ key: String) throws -> Bool? { try optional(key)?.bool() }
    func optionalInt(_ key: String) throws -> Int? { try optional(key)?.int() }
    func bool(_ key: String, default value: Bool) throws -> Bool { try optionalBool(key) ?? value }
}
