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
