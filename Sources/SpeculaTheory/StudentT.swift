#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Student's t distribution: the CDF through the regularized incomplete beta function, and quantiles by bisection on
/// it. For intervals over few clusters (prompts), where the normal 1.96 understates the uncertainty (with 3 prompts
/// the 97.5 % quantile is 4.30).
public enum StudentT {
    /// P(T ≤ t) for `degreesOfFreedom` ν > 0: `1 − I_x(ν/2, 1/2)/2` with `x = ν/(ν + t²)` for t ≥ 0, symmetric below.
    public static func cdf(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        precondition(nu > 0, "degrees of freedom must be positive")
        if t.isNaN { return .nan }
        if t.isInfinite { return t > 0 ? 1 : 0 }
        let tail = 0.5 * regularizedBeta(nu / (nu + t * t), a: nu / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The `probability` quantile (0 < probability < 1), to about 1e-12 relative.
    public static func quantile(_ probability: Double, degreesOfFreedom nu: Double) -> Double {
        precondition(probability > 0 && probability < 1 && nu > 0)
        if probability == 0.5 { return 0 }
        if probability < 0.5 { return -quantile(1 - probability, degreesOfFreedom: nu) }
        var high = 1.0
        while cdf(high, degreesOfFreedom: nu) < probability { high *= 2 }
        var low = 0.0
        for _ in 0..<200 {
            let middle = (low + high) / 2
            if cdf(middle, degreesOfFreedom: nu) < probability { low = middle } else { high = middle }
            if high - low <= 1e-14 * high { break }
        }
        return (low + high) / 2
    }

    /// The half-width multiplier of a two-sided 95 % interval from `groups` cluster means (ν = groups − 1).
    public static func interval95(groups: Int) -> Double {
        quantile(0.975, degreesOfFreedom: Double(groups - 1))
    }

    /// I_x(a, b) by its continued fraction (modified Lentz), on the side where it converges fast.
    static func regularizedBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x)
        if x < (a + 1) / (a + b + 2) { return exp(logFront) * continuedFraction(x, a: a, b: b) / a }
        return 1 - exp(logFront) * continuedFraction(1 - x, a: b, b: a) / b
    }

    static func continuedFraction(_ x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var result = d
        for m in 1...10_000 {
            let m = Double(m)
            let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d
            if abs(d) < tiny { d = tiny }
            c = 1 + even / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            result *= d * c
            let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d
            if abs(d) < tiny { d = tiny }
            c = 1 + odd / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            result *= step
            if abs(step - 1) < 1e-16 { break }
        }
        return result
    }
}
