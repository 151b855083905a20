/// Splits `total` units into parts proportional to `weights`, with every boundary a multiple
/// of `granularity` (except the end), so that e.g. FFN slices of block-quantized weights
/// (32 per block) split cleanly. Largest-remainder rounding; deterministic.
public func proportionalBoundaries(total: Int, weights: [Double], granularity: Int = 1, minimumPerPart: Int = 0) -> [Range<Int>] {
    precondition(!weights.isEmpty && weights.allSatisfy { $0 > 0 })
    let units = total / granularity
    let tail = total - units * granularity
    let sum = weights.reduce(0, +)
    let exact = weights.map { Double(units) * $0 / sum }
    var counts = exact.map { Int($0.rounded(.down)) }
    var left = units - counts.reduce(0, +)
    let order = exact.indices.sorted { (exact[$0] - Double(counts[$0])) > (exact[$1] - Double(counts[$1])) || ((exact[$0] - Double(counts[$0])) == (exact[$1] - Double(counts[$1])) && $0 < $1) }
    for i in order where left > 0 {
        counts[i] += 1
        left -= 1
    }
    // Give empty parts a unit where possible, taken from the largest part.
    if minimumPerPart > 0 {
        for i in counts.indices where counts[i] < minimumPerPart {
            guard let donor = counts.indices.max(by: { counts[$0] < counts[$1] }), counts[donor] > minimumPerPart else { break }
            counts[donor] -= 1
            counts[i] += 1
        }
    }
    var ranges: [Range<Int>] = []
    var start = 0
    for (i, c) in counts.enumerated() {
        var end = start + c * granularity
        if i == counts.count - 1 { end += tail }
        ranges.append(start ..< end)
        start = end
    }
    return ranges
}
