/// Seeded random numbers for drafting and verification.
///
/// Verification uniforms are independent of drafting randomness and each is used once (ALGORITHMS.md §10.6).
/// ``CounterRandom`` derives a stream from `(seed, step, node)` so that a run replays exactly, whatever order the
/// engine visits nodes in; ``SplitMix64`` is a plain seeded generator for tests and Monte Carlo.

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit seeded generator, good enough for sampling and cheap to create.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 finaliser: a bijective 64-bit mixing function.
    @inlinable
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A counter-based stream keyed by `(seed, step, node)`: the `k`-th number of the stream is a hash of the key and
/// `k`, so a node's uniforms do not depend on what other nodes drew.
public struct CounterRandom: RandomNumberGenerator, Sendable {
    public let key: UInt64
    public var counter: UInt64 = 0

    public init(seed: UInt64, step: UInt64, node: UInt64) {
        var key = SplitMix64.mix(seed ^ 0x5DEE_CE66_D1CE_4E5B)
        key = SplitMix64.mix(key ^ step &* 0x9E37_79B9_7F4A_7C15)
        key = SplitMix64.mix(key ^ node &* 0xC2B2_AE3D_27D4_EB4F)
        self.key = key
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let value = SplitMix64.mix(key &+ counter &* 0x9E37_79B9_7F4A_7C15)
        counter &+= 1
        return SplitMix64.mix(value)
    }
}

extension RandomNumberGenerator {
    /// A uniform in `[0, 1)` with 53 random bits.
    @inlinable
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform in `(0, 1]` with 53 random bits (for `−ln u`, which must stay finite).
    @inlinable
    public mutating func nextOpenUniform() -> Double {
        Double((next() >> 11) + 1) * 0x1p-53
    }
}

/// Every random choice drafting and verification make, named by what it decides.
///
/// Seeded generators (``SplitMix64``, ``CounterRandom``) answer with uniforms; ``ChoiceReplay`` answers from a
/// script and records each choice's probabilities, so that ``Enumeration`` can visit every outcome of a randomized
/// computation (a whole speculative round on real model code) with its exact probability.
public protocol RandomSource {
    /// True with probability `numerator / denominator` (`0 ≤ numerator`, `denominator > 0`).
    mutating func bernoulli(_ numerator: Double, over denominator: Double) -> Bool
    /// An index drawn with probability proportional to the nonnegative `weights` (`total`: their sum, when the
    /// caller has it), or nil when they have no mass.
    mutating func categorical(_ weights: [Double], total: Double?) -> Int?
    /// `count` distinct indices in draw order: successive draws, each proportional to the weights not drawn yet.
    /// Zero-weight indices come last, smallest id first, and only with `includeZeroMass`.
    mutating func withoutReplacement(_ weights: [Double], count: Int, includeZeroMass: Bool) -> [Int]
    /// The source for one round's verification. Seeded sources derive a counter-based stream keyed by `step`
    /// (ALGORITHMS.md §10.6), a replay continues its own script.
    mutating func roundStream(step: UInt64) -> any RandomSource
}

extension RandomSource where Self: RandomNumberGenerator {
    public mutating func bernoulli(_ numerator: Double, over denominator: Double) -> Bool {
        nextUniform() * denominator < numerator
    }

    public mutating func categorical(_ weights: [Double], total: Double?) -> Int? {
        Probability.sampleIndex(weights, uniform: nextUniform(), total: total)
    }

    /// The exponential race (``DraftLaw``), one uniform per index.
    public mutating func withoutReplacement(_ weights: [Double], count: Int, includeZeroMass: Bool) -> [Int] {
        DraftLaw.race(draft: weights, count: count, includeZeroMass: includeZeroMass, using: &self)
    }

    public mutating func roundStream(step: UInt64) -> any RandomSource {
        CounterRandom(seed: next(), step: step, node: 0)
    }
}

extension RandomSource {
    /// An index drawn with probability proportional to `weights`.
    public mutating func categorical(_ weights: [Double]) -> Int? { categorical(weights, total: nil) }
}

extension SplitMix64: RandomSource {}
extension CounterRandom: RandomSource {}

/// A random source that takes its choices from a script and records every choice it makes with its
/// probabilities. Past the script it takes the first index of positive probability. One instance is one path
/// through a randomized computation; ``Enumeration/law(maximumPaths:_:)`` walks all of them.
public final class ChoiceReplay: RandomSource {
    /// One choice: the index taken and the probability of each index.
    public struct Choice: Sendable {
        public var taken: Int
        public var probabilities: [Double]
    }

    public let script: [Int]
    public private(set) var choices: [Choice] = []
    /// The probability of the path so far: the product of the probabilities of the indices taken.
    public private(set) var probability = 1.0

    public init(script: [Int] = []) { self.script = script }

    /// Takes index `script[k]` at the `k`-th choice, or the first index of positive probability past the script.
    func choose(_ probabilities: [Double]) -> Int {
        let position = choices.count
        var taken = probabilities.firstIndex { $0 > 0 } ?? 0
        if position < script.count { taken = script[position] }
        probability *= probabilities[taken]
        choices.append(Choice(taken: taken, probabilities: probabilities))
        return taken
    }

    public func bernoulli(_ numerator: Double, over denominator: Double) -> Bool {
        let p = min(max(numerator / denominator, 0), 1)
        return choose([p, 1 - p]) == 0
    }

    public func categorical(_ weights: [Double], total: Double?) -> Int? {
        let mass = Probability.sum(weights)
        if !(mass > 0) { return nil }
        return choose(weights.map { max($0, 0) / mass })
    }

    public func withoutReplacement(_ weights: [Double], count: Int, includeZeroMass: Bool) -> [Int] {
        var remaining = weights.map { max($0, 0) }
        var drawn: [Int] = []
        while drawn.count < count {
            guard let index = categorical(remaining, total: nil) else { break }
            drawn.append(index)
            remaining[index] = 0
        }
        if includeZeroMass {
            for index in weights.indices where drawn.count < count && !drawn.contains(index) && !(weights[index] > 0) {
                drawn.append(index)
            }
        }
        return drawn
    }

    public func roundStream(step: UInt64) -> any RandomSource { self }
}

/// Exact laws of randomized computations whose randomness all goes through a ``RandomSource``.
public enum Enumeration {
    /// Enumeration stopped: more paths than allowed.
    public struct TooManyPaths: Error, CustomStringConvertible {
        public var limit: Int
        public var description: String { "enumeration stopped after \(limit) paths" }
    }

    /// Runs `body` once for every sequence of choices of positive probability (depth first, replaying each
    /// path's prefix), and returns the law of its results: each result's total path probability.
    /// `body` must be deterministic given the source's choices.
    public static func law<Result: Hashable>(
        maximumPaths: Int = 1_000_000, _ body: (ChoiceReplay) throws -> Result
    ) throws -> [Result: Double] {
        var law: [Result: Double] = [:]
        var pending: [[Int]] = [[]]
        var paths = 0
        while let script = pending.popLast() {
            paths += 1
            if paths > maximumPaths { throw TooManyPaths(limit: maximumPaths) }
            let source = ChoiceReplay(script: script)
            let result = try body(source)
            law[result, default: 0] += source.probability
            let taken = source.choices.map(\.taken)
            for position in script.count..<source.choices.count {
                let choice = source.choices[position]
                for index in choice.probabilities.indices where index != choice.taken && choice.probabilities[index] > 0
                {
                    pending.append(Array(taken[..<position]) + [index])
                }
            }
        }
        return law
    }
}
