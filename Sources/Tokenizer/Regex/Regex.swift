/// A backtracking regex engine over Unicode scalars, matching Oniguruma's semantics for the
/// patterns that tokenizer files carry (GPT-2, Llama 3, Qwen2, DeepSeek and o200k-style splits).
///
/// Why not Foundation's `NSRegularExpression` or Swift `Regex`: ICU's `\s` leaves out U+000B and
/// U+0085 where Oniguruma includes them (so ids would differ on such text), ICU reports UTF-16
/// offsets that have to be mapped back, and both were several times slower than this engine on
/// pre-tokenization (see `RegexBenchmarkTests`). The supported syntax is what those patterns use:
/// alternation, greedy/lazy/possessive quantifiers and intervals, (non-)capturing groups, inline
/// flags `(?i)` `(?i:...)`, look-ahead, fixed-width look-behind, atomic groups, bracket classes
/// with `\p{..}` general categories, and the anchors. Anything else is rejected when loading.
struct Regex: Sendable {
    enum Instruction: Sendable {
        case char(UInt32)
        /// Compares simple case folds; the operand is already folded.
        case charFold(UInt32)
        case any
        case anyExceptNewline
        case set(Int32)
        case setFold(Int32)
        /// Try `pc + 1` first; on failure resume at the operand.
        case splitPreferNext(Int32)
        /// Try the operand first; on failure resume at `pc + 1`.
        case splitPreferJump(Int32)
        case jump(Int32)
        case save(Int32)
        case assert(RegexAssertion)
        /// Runs the sub-program at `pc + 1` (ending in `.succeed`) as a look-around, then continues
        /// at `next`. `behind` > 0 starts the sub-match that many scalars back and requires it to
        /// end at the current position.
        case look(next: Int32, negate: Bool, behind: Int32)
        /// Runs the sub-program at `pc + 1` once, keeps its first success, continues at `next`.
        case atomic(next: Int32)
        /// Loop guards: `mark` stores the position in a register; `progress` fails when the loop
        /// body consumed nothing since (an empty iteration would otherwise loop forever).
        case mark(Int32)
        case progress(Int32)
        case succeed
    }

    let pattern: String
    let program: [Instruction]
    let sets: [CharacterClass]
    let captureCount: Int
    let registerCount: Int

    init(_ pattern: String) throws(RegexSyntaxError) {
        self.pattern = pattern
        var parser = RegexParser(pattern)
        let tree = try parser.parse()
        // Nested counted repetitions multiply: ((a{1000}){1000}) would compile to a million copies.
        guard tree.programSizeEstimate <= 200_000 else {
            throw RegexSyntaxError(message: "pattern expands to too large a program (nested repetition counts)")
        }
        var compiler = Compiler()
        compiler.emit(.save(0))
        compiler.compile(tree)
        compiler.emit(.save(1))
        compiler.emit(.succeed)
        program = compiler.program
        sets = compiler.sets
        captureCount = parser.captureCount + 1
        registerCount = compiler.registerCount
    }

    /// A regex matching `literal` exactly (what `tokenizers` builds for `{"String": ...}` patterns).
    init(literal: String) {
        self.pattern = literal
        var compiler = Compiler()
        compiler.emit(.save(0))
        for s in literal.unicodeScalars { compiler.emit(.char(s.value)) }
        compiler.emit(.save(1))
        compiler.emit(.succeed)
        program = compiler.program
        sets = []
        captureCount = 1
        registerCount = 0
    }

    // MARK: - Compiler

    private struct Compiler {
        var program: [Instruction] = []
        var sets: [CharacterClass] = []
        var registerCount = 0

        mutating func emit(_ i: Instruction) { program.append(i) }
        var here: Int32 { Int32(program.count) }

        mutating func compile(_ node: RegexNode) {
            switch node {
            case .empty:
                break
            case .char(let c, let ignoreCase):
                if ignoreCase, let expansion = multiScalarFold(c) {
                    // Oniguruma folds some characters to several ("ß" ~ "ss"): accept either spelling.
                    let split = program.count
                    emit(.splitPreferNext(0))
                    emit(.charFold(simpleFold(c)))
                    let jump = program.count
                    emit(.jump(0))
                    program[split] = .splitPreferNext(here)
                    for f in expansion { emit(caseVariants(f).isEmpty ? .char(f) : .charFold(simpleFold(f))) }
                    program[jump] = .jump(here)
                } else if ignoreCase, !caseVariants(c).isEmpty {
                    emit(.charFold(simpleFold(c)))
                } else {
                    emit(.char(c))
                }
            case .any(let dotAll):
                emit(dotAll ? .any : .anyExceptNewline)
            case .set(let set, let ignoreCase):
                sets.append(set)
                let index = Int32(sets.count - 1)
                emit(ignoreCase ? .setFold(index) : .set(index))
            case .concat(let nodes):
                for n in nodes { compile(n) }
            case .alternation(let branches):
                // split L2 ; a ; jump end ; L2: split L3 ; b ; jump end ; L3: c ; end:
                var jumps: [Int] = []
                for (k, branch) in branches.enumerated() {
                    if k < branches.count - 1 {
                        let split = program.count
                        emit(.splitPreferNext(0))
                        compile(branch)
                        jumps.append(program.count)
                        emit(.jump(0))
                        program[split] = .splitPreferNext(here)
                    } else {
                        compile(branch)
                    }
                }
                for j in jumps { program[j] = .jump(here) }
            case .capture(let inner, let index):
                emit(.save(Int32(index * 2)))
                compile(inner)
                emit(.save(Int32(index * 2 + 1)))
            case .assertion(let a):
                emit(.assert(a))
            case .lookahead(let inner, let negate):
                let at = program.count
                emit(.look(next: 0, negate: negate, behind: 0))
                compile(inner)
                emit(.succeed)
                program[at] = .look(next: here, negate: negate, behind: 0)
            case .lookbehind(let inner, let negate, let width):
                let at = program.count
                emit(.look(next: 0, negate: negate, behind: Int32(width)))
                compile(inner)
                emit(.succeed)
                program[at] = .look(next: here, negate: negate, behind: Int32(width))
            case .atomic(let inner):
                compileAtomic(inner)
            case .repetition(let inner, let min, let max, let greedy, let possessive):
                if possessive {
                    compileAtomic(.repetition(inner, min: min, max: max, greedy: true, possessive: false))
                    return
                }
                for _ in 0..<min { compile(inner) }
                if let max {
                    // Optional copies: split(exit) body split(exit) body ... exit:
                    var splits: [Int] = []
                    for _ in min..<max {
                        splits.append(program.count)
                        emit(.splitPreferNext(0))
                        compile(inner)
                    }
                    for s in splits {
                        program[s] = greedy ? .splitPreferNext(here) : .splitPreferJump(here)
                    }
                } else {
                    // loop: split(exit) [mark] body [progress] jump loop ; exit:
                    let guardEmpty = inner.canBeEmpty
                    let register = Int32(registerCount)
                    if guardEmpty { registerCount += 1 }
                    let loop = program.count
                    emit(.splitPreferNext(0))
                    if guardEmpty { emit(.mark(register)) }
                    compile(inner)
                    if guardEmpty { emit(.progress(register)) }
                    emit(.jump(Int32(loop)))
                    program[loop] = greedy ? .splitPreferNext(here) : .splitPreferJump(here)
                }
            }
        }

        mutating func compileAtomic(_ inner: RegexNode) {
            let at = program.count
            emit(.atomic(next: 0))
            compile(inner)
            emit(.succeed)
            program[at] = .atomic(next: here)
        }
    }

    // MARK: - Matching

    /// Backtracking state for one search. Kept separate so a search over many start positions
    /// reuses its buffers.
    struct Matcher {
        let regex: Regex
        let text: UnsafeBufferPointer<UInt32>
        var captures: [Int]
        var registers: [Int]
        private var stack: [Entry] = []

        private struct Entry {
            enum Kind: UInt8 { case branch, restoreCapture, restoreRegister, barrier }
            var kind: Kind
            var a: Int32
            var b: Int
        }

        init(regex: Regex, text: UnsafeBufferPointer<UInt32>) {
            self.regex = regex
            self.text = text
            captures = [Int](repeating: -1, count: regex.captureCount * 2)
            registers = [Int](repeating: -1, count: regex.registerCount)
            stack.reserveCapacity(64)
        }

        /// Leftmost match starting at or after `start`, as a scalar range; captures are filled in.
        mutating func firstMatch(from start: Int) -> Range<Int>? {
            var s = start
            while s <= text.count {
                for k in captures.indices { captures[k] = -1 }
                if run(pc: 0, pos: s) != nil { return captures[0]..<captures[1] }
                s += 1
            }
            return nil
        }

        /// Whether the pattern matches starting exactly at `start` (anchored), returning the end.
        mutating func match(at start: Int) -> Int? {
            for k in captures.indices { captures[k] = -1 }
            return run(pc: 0, pos: start)
        }

        @inline(__always)
        private func isWordAt(_ i: Int) -> Bool {
            i >= 0 && i < text.count && CharacterClass.wordShared.contains(text[i])
        }

        private func check(_ a: RegexAssertion, _ pos: Int) -> Bool {
            switch a {
            case .lineStart: return pos == 0 || text[pos - 1] == 0x0A
            case .lineEnd: return pos == text.count || text[pos] == 0x0A
            case .textStart: return pos == 0
            case .textEnd: return pos == text.count
            case .textEndBeforeNewline: return pos == text.count || (pos == text.count - 1 && text[pos] == 0x0A)
            case .wordBoundary: return isWordAt(pos - 1) != isWordAt(pos)
            case .notWordBoundary: return isWordAt(pos - 1) == isWordAt(pos)
            }
        }

        /// Runs the program from `pc` until a `.succeed`; returns the position there, or nil.
        /// Entries pushed by this call sit above a barrier so nested runs (look-arounds, atomic
        /// groups) never backtrack into their caller's choices.
        private mutating func run(pc startPC: Int, pos startPos: Int) -> Int? {
            let base = stack.count
            stack.append(Entry(kind: .barrier, a: 0, b: 0))
            var pc = startPC
            var pos = startPos
            let program = regex.program
            let n = text.count
            while true {
                var ok = true
                switch program[pc] {
                case .char(let c):
                    if pos < n && text[pos] == c {
                        pos += 1
                        pc += 1
                    } else {
                        ok = false
                    }
                case .charFold(let c):
                    if pos < n && simpleFold(text[pos]) == c {
                        pos += 1
                        pc += 1
                    } else {
                        ok = false
                    }
                case .any:
                    if pos < n {
                        pos += 1
                        pc += 1
                    } else {
                        ok = false
                    }
                case .anyExceptNewline:
                    if pos < n && text[pos] != 0x0A {
                        pos += 1
                        pc += 1
                    } else {
                        ok = false
                    }
                case .set(let index):
                    if pos < n && regex.sets[Int(index)].contains(text[pos]) {
                        pos += 1
                        pc += 1
                    } else {
                        ok = false
                    }
                case .setFold(let index):
                    if pos < n && regex.sets[Int(index)].containsIgnoringCase(text[pos]) {
                        pos += 1
                        pc += 1
                    } else {
                        ok = false
                    }
                case .splitPreferNext(let alt):
                    stack.append(Entry(kind: .branch, a: alt, b: pos))
                    pc += 1
                case .splitPreferJump(let target):
                    stack.append(Entry(kind: .branch, a: Int32(pc + 1), b: pos))
                    pc = Int(target)
                case .jump(let target):
                    pc = Int(target)
                case .save(let slot):
                    stack.append(Entry(kind: .restoreCapture, a: slot, b: captures[Int(slot)]))
                    captures[Int(slot)] = pos
                    pc += 1
                case .assert(let a):
                    if check(a, pos) { pc += 1 } else { ok = false }
                case .look(let next, let negate, let behind):
                    var found = false
                    if behind > 0 {
                        let from = pos - Int(behind)
                        if from >= 0 {
                            let saved = captures
                            if let end = run(pc: pc + 1, pos: from), end == pos { found = true }
                            captures = saved
                        }
                    } else {
                        let saved = captures
                        found = run(pc: pc + 1, pos: pos) != nil
                        captures = saved
                    }
                    if found != negate { pc = Int(next) } else { ok = false }
                case .atomic(let next):
                    let saved = captures
                    if let end = run(pc: pc + 1, pos: pos) {
                        // Keep the group's captures, but undo them if we backtrack past it.
                        for k in captures.indices where captures[k] != saved[k] {
                            stack.append(Entry(kind: .restoreCapture, a: Int32(k), b: saved[k]))
                        }
                        pos = end
                        pc = Int(next)
                    } else {
                        ok = false
                    }
                case .mark(let r):
                    stack.append(Entry(kind: .restoreRegister, a: r, b: registers[Int(r)]))
                    registers[Int(r)] = pos
                    pc += 1
                case .progress(let r):
                    if registers[Int(r)] == pos { ok = false } else { pc += 1 }
                case .succeed:
                    // Drop this run's choices: a nested run commits to its first success.
                    stack.removeSubrange(base...)
                    return pos
                }
                if ok { continue }
                // Backtrack to the most recent branch of this run.
                var resumed = false
                while stack.count > base + 1 {
                    let e = stack.removeLast()
                    switch e.kind {
                    case .branch:
                        pc = Int(e.a)
                        pos = e.b
                        resumed = true
                    case .restoreCapture:
                        captures[Int(e.a)] = e.b
                    case .restoreRegister:
                        registers[Int(e.a)] = e.b
                    case .barrier:
                        break
                    }
                    if resumed { break }
                }
                if !resumed {
                    stack.removeSubrange(base...)
                    return nil
                }
            }
        }
    }

    /// All non-overlapping matches, left to right, as the `onig` crate's `find_iter` yields them:
    /// the next search starts at the previous match's end, and an empty match right at that end is
    /// skipped by moving one scalar on (so `a*` over "ba" gives 0..<0, 1..<2).
    func matches(in text: UnsafeBufferPointer<UInt32>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var matcher = Matcher(regex: self, text: text)
        var searchFrom = 0
        var lastMatchEnd: Int?
        while searchFrom <= text.count {
            guard let m = matcher.firstMatch(from: searchFrom) else { break }
            if m.isEmpty && m.upperBound == lastMatchEnd {
                searchFrom += 1
                continue
            }
            out.append(m)
            searchFrom = m.upperBound
            lastMatchEnd = m.upperBound
        }
        return out
    }

    func matches(in scalars: [UInt32]) -> [Range<Int>] {
        scalars.withUnsafeBufferPointer { matches(in: $0) }
    }
}

extension CharacterClass {
    /// `\w` as used by `\b`, built once.
    static let wordShared: CharacterClass = .word
}
