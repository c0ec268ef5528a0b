import SpeculaVerify

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Seeded synthetic target/draft pairs shaped like a language model's next-token distributions, for benchmarks and
/// large-vocabulary tests: Zipf-like logits over a shuffled vocabulary (a few likely tokens, a long tail), with the
/// draft's logits a noisy copy of the target's, as a smaller model of the same family would give.
public enum SyntheticPair {
    /// - Parameters:
    ///   - vocabularySize: |V|.
    ///   - seed: the generator seed.
    ///   - draftNoise: standard deviation of the noise added to the draft's logits (0 gives `q = p`).
    ///   - temperature: applied to both, as the sampling settings would.
    /// - Complexity: O(|V|).
    public static func make(vocabularySize: Int, seed: UInt64, draftNoise: Double = 1, temperature: Double = 1)
        throws -> (target: [Double], draft: [Double])
    {
        if vocabularySize < 1 { throw VerifyError.emptyVocabulary(what: "synthetic pair") }
        var generator = SplitMix64(seed: seed)
        var targetLogits = [Double](repeating: 0, count: vocabularySize)
        var draftLogits = [Double](repeating: 0, count: vocabularySize)
        // A multiplicative permutation of the ranks (stride coprime with |V| chosen from the seed).
        var stride = Int(generator.next() % UInt64(vocabularySize)) | 1
        while gcd(stride, vocabularySize) != 1 { stride += 2 }
        for index in 0..<vocabularySize {
            let rank = Double((index &* stride) % vocabularySize + 1)
            targetLogits[index] = -1.2 * log(rank) + 0.5 * gaussian(&generator)
        }
        let top = Int(generator.next() % UInt64(vocabularySize))
        targetLogits[top] += 3
        for index in 0..<vocabularySize { draftLogits[index] = targetLogits[index] + draftNoise * gaussian(&generator) }
        let settings = SamplingSettings(temperature: temperature)
        return (try settings.process(logits: targetLogits), try settings.process(logits: draftLogits))
    }

    static func gaussian(_ generator: inout SplitMix64) -> Double {
        let u = generator.nextOpenUniform()
        let v = generator.nextUniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}

/// A weaker draft that changes which tokens it favours, not only how sharply: the draft's distribution with seeded
/// Gaussian noise on its log-probabilities, q'(x) ∝ q(x) · e^(σ·g_x) for every x with q(x) > 0 (tokens the draft
/// rules out stay out). Unlike a hotter draft, whose most likely token stays the same, the noise also reorders the
/// draft's top tokens. Every verifier stays exact for any draft distribution, so this changes acceptance, never the
/// output's law.
public enum NoisyDraft {
    /// - Parameters:
    ///   - q: a probability vector.
    ///   - sigma: the noise's standard deviation (0 returns `q`).
    ///   - seed: the generator seed (the same seed, the same noise).
    /// - Complexity: O(|V|).
    public static func perturb(_ q: [Double], sigma: Double, seed: UInt64) -> [Double] {
        if sigma == 0 || q.isEmpty { return q }
        var generator = SplitMix64(seed: seed)
        var logits = [Double](repeating: -Double.infinity, count: q.count)
        var maximum = -Double.infinity
        for (index, value) in q.enumerated() {
            let noise = SyntheticPair.gaussian(&generator)
            guard value > 0 else { continue }
            logits[index] = log(value) + sigma * noise
            maximum = max(maximum, logits[index])
        }
        guard maximum.isFinite else { return q }
        var total = 0.0
        var result = logits.map { $0.isFinite ? exp($0 - maximum) : 0 }
        for value in result { total += value }
        for index in result.indices { result[index] /= total }
        return result
    }
}
