import Foundation
import Kernels

/// New tokens for one sequence in one step.
public struct StepInput: Sendable {
    public var sequence: Int
    public var tokens: [Int]
    /// Logits for every row (a dumped prefill) rather than only the last.
    public var allLogits: Bool
    public init(sequence: Int, tokens: [Int], allLogits: Bool = false) {
        self.sequence = sequence
        self.tokens = tokens
        self.allLogits = allLogits
    }
}

/// Something that turns tokens into next-token logits for several sequences at once: one node
/// in-process (`LocalBackend`) or a cluster of workers. Generation logic sits on top of this.
public protocol InferenceBackend: AnyObject {
    var config: ModelConfig { get }
    /// Starts a sequence with room for `capacity` positions; returns its id.
    func openSequence(capacity: Int) throws -> Int
    /// Starts one forward step over every input together and returns a ticket for `collect`.
    /// Several steps may be in flight (pipeline micro-batches); they complete in order.
    func submit(_ inputs: [StepInput]) throws -> Int
    /// Per input of the ticket's step, logits [rows, vocab] row-major (rows = tokens.count with
    /// allLogits, else 1).
    func collect(_ ticket: Int) throws -> [[Float]]
    func closeSequence(_ id: Int)
}

extension InferenceBackend {
    /// One step, waited for.
    public func step(_ inputs: [StepInput]) throws -> [[Float]] { try collect(try submit(inputs)) }
}

/// The whole model on this machine.
public final class LocalBackend: InferenceBackend {
    public let transformer: Transformer
    private var caches: [Int: ContiguousKVCache] = [:]
    private var nextID = 0

    public init(transformer: Transformer) { self.transformer = transformer }

    public var config: ModelConfig { transformer.config }

    public func openSequence(capacity: Int) throws -> Int {
        guard capacity <= config.maxPositions else {
            throw ModelError.promptTooLong(prompt: capacity, generate: 0, limit: config.maxPositions)
        }
        let id = nextID
        nextID += 1
        caches[id] = transformer.makeCache(capacity: capacity)
        return id
    }

    public func cache(_ id: Int) -> ContiguousKVCache? { caches[id] }

    private var results: [Int: [[Float]]] = [:]
    private var nextTicket = 0

    /// Runs the step at once (a single node has nothing to overlap); `collect` hands it over.
    public func submit(_ inputs: [StepInput]) throws -> Int {
        nextTicket += 1
        results[nextTicket] = try run(inputs)
        return nextTicket
    }

    public func collect(_ ticket: Int) throws -> [[Float]] {
        guard let r = results.removeValue(forKey: ticket) else { throw ModelError.invalidRequest("unknown step ticket \(ticket)") }
        return r
    }

    private func run(_ inputs: [StepInput]) throws -> [[Float]] {
        var entries: [SequenceBatch.Entry] = []
        var tokens: [Int] = []
        var logitRows: [Int] = []
        var rowCounts: [Int] = []
        for input in inputs {
            guard let cache = caches[input.sequence] else { throw ModelError.invalidRequest("unknown sequence \(input.sequence)") }
            guard !input.tokens.isEmpty else { throw ModelError.invalidRequest("sequence \(input.sequence): a step needs at least one token") }
            let first = tokens.count
            entries.append(.init(cache: cache, tokens: input.tokens.count))
            tokens += input.tokens
            let rows = input.allLogits ? Array(first ..< tokens.count) : [tokens.count - 1]
            logitRows += rows
            rowCounts.append(rows.count)
        }
        let logits = try transformer.forward(tokens: tokens, batch: SequenceBatch(entries), logitRows: logitRows)
        let vocab = config.vocabSize
        var out: [[Float]] = []
        var offset = 0
        for n in rowCounts {
            out.append(Array(UnsafeBufferPointer(start: logits.pointer + offset * vocab, count: n * vocab)))
            offset += n
        }
        return out
    }

    public func closeSequence(_ id: Int) { caches[id] = nil }
}
