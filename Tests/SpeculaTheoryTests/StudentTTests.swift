import SpeculaTheory
import Testing

/// Student's t against scipy.stats.t (values printed by scipy 1.17, an independent implementation).
@Suite("Student's t quantiles")
struct StudentTTests {
    static let quantiles975: [(Double, Double)] = [
        (1, 12.706204736174694), (2, 4.302652729749462), (3, 3.1824463052837078), (4, 2.7764451051977934),
        (5, 2.5705818356363146), (7, 2.364624251592784), (10, 2.228138851986274), (20, 2.085963447265864),
        (30, 2.0422724563012378), (60, 2.0002978220142604), (100, 1.9839715185235518), (1000, 1.9623390808264083),
    ]

    @Test func quantilesMatchScipy() {
        for (nu, expected) in Self.quantiles975 {
            let value = StudentT.quantile(0.975, degreesOfFreedom: nu)
            #expect(abs(value - expected) < 1e-9 * expected, "ν = \(nu): \(value)")
            #expect(abs(StudentT.quantile(0.025, degreesOfFreedom: nu) + expected) < 1e-9 * expected)
        }
        #expect(abs(StudentT.quantile(0.9, degreesOfFreedom: 3) - 1.637744353696209) < 1e-9)
        #expect(abs(StudentT.quantile(0.995, degreesOfFreedom: 8) - 3.355387331333395) < 1e-9)
        #expect(abs(StudentT.cdf(1.5, degreesOfFreedom: 4) - 0.896) < 1e-12)
        #expect(abs(StudentT.cdf(-1.5, degreesOfFreedom: 4) - 0.104) < 1e-12)
        #expect(StudentT.interval95(groups: 3) == StudentT.quantile(0.975, degreesOfFreedom: 2))
    }
}
