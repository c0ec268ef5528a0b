/// The mean of per-position values grouped by prompt, with a 95 % confidence interval that respects the grouping:
/// positions of one prompt are not independent, so the interval comes from the spread of the per-prompt means:
/// Student's t with one degree of freedom fewer than the prompts (4.30 standard errors at 3 prompts, 2.09 at 20),
/// valid for few clusters where the normal 1.96 is not. With one group the interval is undefined (nil).
public struct ClusteredMean: Sendable, Equatable {
    /// Mean over all values (each position weighs the same).
    public var mean: Double
    /// Mean of the per-group means (each prompt weighs the same).
    public var meanOfGroups: Double
    /// Half-width of the 95 % interval around `meanOfGroups`; nil with fewer than two groups.
    public var halfWidth: Double?
    public var count: Int
    public var groups: Int

    public init(groups values: [[Double]]) {
        let nonEmpty = values.filter { !$0.isEmpty }
        let all = nonEmpty.flatMap { $0 }
        count = all.count
        groups = nonEmpty.count
        mean = all.isEmpty ? .nan : all.reduce(0, +) / Double(all.count)
        let means = nonEmpty.map { $0.reduce(0, +) / Double($0.count) }
        meanOfGroups = means.isEmpty ? .nan : means.reduce(0, +) / Double(means.count)
        if means.count >= 2 {
            let m = meanOfGroups
            let variance = means.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(means.count - 1)
            halfWidth = StudentT.interval95(groups: means.count) * (variance / Double(means.count)).squareRoot()
        } else {
            halfWidth = nil
        }
    }
}
