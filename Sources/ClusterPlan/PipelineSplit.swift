import Foundation
/// Contiguous layer ranges per pipeline stage: even by default, or as given (`--layers 0-9,10-21`).
public enum PipelineSplit {
    public static func even(layers: Int, stages: Int) throws -> [Range<Int>] {
        guard stages >= 1, stages <= layers else {
            throw PlanError.invalid("PP = \(stages) needs between 1 and \(layers) stages (one layer at least per stage)")
        }
        return proportionalBoundaries(total: layers, weights: Array(repeating: 1, count: stages), minimumPerPart: 1)
    }

    /// Parses "A-B,C-D" (inclusive bounds) and checks the ranges cover 0..<layers in order.
    public static func parse(_ text: String, layers: Int) throws -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard bounds.count == 2, let a = bounds[0], let b = bounds[1], a <= b else {
                throw PlanError.invalid("--layers: '\(part)' is not a range like 0-9")
            }
            ranges.append(a ..< b + 1)
        }
        try check(ranges, layers: layers)
        return ranges
    }

    public static func check(_ ranges: [Range<Int>], layers: Int) throws {
        var next = 0
        for r in ranges {
            guard r.lowerBound == next, !r.isEmpty else {
                throw PlanError.invalid("--layers: stages must cover layers 0-\(layers - 1) contiguously and in order; got \(ranges.map { "\($0.lowerBound)-\($0.upperBound - 1)" })")
            }
            next = r.upperBound
        }
        guard next == layers else {
            throw PlanError.invalid("--layers: stages cover layers 0-\(next - 1) but the model has \(layers)")
        }
    }
}

