import Foundation
import SpeculaVerify
import Testing

@Suite("Probability vectors and sampling settings")
struct ProbabilityTests {
    @Test func softmaxIsStableForHugeLogits() throws {
        let probabilities = try Probability.softmax([1000, 1000, -.infinity, 999])
        let e = exp(-1.0)
        #expect(abs(probabilities[0] - 1 / (2 + e)) < 1e-15)
        #expect(probabilities[2] == 0)
        #expect(abs(probabilities.reduce(0, +) - 1) < 1e-15)
    }

    @Test func greedyIsOneHotOnTheSmallestIdAmongTies() throws {
        let processed = try SamplingSettings.greedy.process(logits: [1, 3, 3, 2])
        #expect(processed == [0, 1, 0, 0])
    }

    @Test func temperatureScalesLogits() throws {
        let processed = try SamplingSettings(temperature: 0.5).process(logits: [0, log(2)])
        // Logits [0, 2 ln 2] → weights [1, 4].
        #expect(abs(processed[0] - 0.2) < 1e-15)
        #expect(abs(processed[1] - 0.8) < 1e-15)
    }

    /// Hand-written table in the manner of llama.cpp's sampler tests: probabilities in, kept set out.
    static let filterTable: [(SamplingSettings, [Double], [Double])] = [
        (SamplingSettings(topK: 1), [0.1, 0.2, 0.3, 0.4], [0.0, 0, 0, 1]),
        (SamplingSettings(topK: 3), [0.1, 0.2, 0.3, 0.4], [0.0, 2.0 / 9, 3.0 / 9, 4.0 / 9]),
        (SamplingSettings(topK: 2), [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0]),
        (SamplingSettings(topP: 0.69), [0.1, 0.2, 0.3, 0.4], [0.0, 0, 3.0 / 7, 4.0 / 7]),
        (SamplingSettings(topP: 0.71), [0.1, 0.2, 0.3, 0.4], [0.0, 2.0 / 9, 3.0 / 9, 4.0 / 9]),
        (SamplingSettings(minP: 0.45), [0.1, 0.2, 0.3, 0.4], [0.0, 2.0 / 9, 3.0 / 9, 4.0 / 9]),
        (SamplingSettings(minP: 0.76), [0.1, 0.2, 0.3, 0.4], [0.0, 0, 0, 1]),
        // top-k then top-p: top-3 renormalised is [2/9, 3/9, 4/9]; top-p 0.5 keeps 4/9 + 3/9.
        (SamplingSettings(topK: 3, topP: 0.5), [0.1, 0.2, 0.3, 0.4], [0.0, 0, 3.0 / 7, 4.0 / 7]),
    ]

    /// Hand-written table in the manner of llama.cpp's sampler tests: probabilities in, kept set out.
    @Test func filters() throws {
        for (settings, input, expected) in Self.filterTable {
            let output = try settings.process(probabilities: input)
            #expect(Fixture.maxDifference(output, expected) < 1e-12, "\(settings): \(output) vs \(expected)")
        }
    }

    @Test func penaltiesApplyBeforeTemperature() throws {
        // Token 0 seen twice, token 1 once. Repetition 2: logit 2 → 1, logit −1 → −2; presence 0.5, frequency 0.25.
        let settings = SamplingSettings(
            temperature: 1, repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25)
        let processed = try settings.process(logits: [2, -1, 0], history: [0, 1, 0])
        let logits = [1 - 0.5 - 0.5, -2 - 0.5 - 0.25, 0]
        let expected = try Probability.softmax(logits)
        #expect(Fixture.maxDifference(processed, expected) < 1e-15)
    }

    @Test(arguments: [
        SamplingSettings(temperature: -1), SamplingSettings(topK: -2), SamplingSettings(topP: 0),
        SamplingSettings(topP: 1.5), SamplingSettings(minP: 2), SamplingSettings(repetitionPenalty: 0),
        SamplingSettings(temperature: .nan),
    ])
    func badSettingsAreRejected(settings: SamplingSettings) {
        #expect(throws: VerifyError.self) { try settings.process(logits: [0, 1]) }
    }

    @Test func badVectorsNameTheProblem() {
        #expect(throws: VerifyError.emptyVocabulary(what: "logits")) { try Probability.softmax([]) }
        #expect(throws: VerifyError.notFinite(what: "logits", index: 1, value: .infinity)) {
            try Probability.softmax([0, .infinity])
        }
        #expect(throws: VerifyError.negative(what: "x", index: 0, value: -0.5)) {
            try Probability.validate([-0.5, 1.5], "x")
        }
        #expect(throws: VerifyError.zeroMass(what: "x")) { try Probability.validate([0, 0], "x") }
        #expect(throws: VerifyError.notNormalized(what: "x", total: 0.5)) {
            try Probability.validate([0.25, 0.25], "x")
        }
        #expect(throws: VerifyError.self) { try Probability.validate([.nan, 1], "x") }
        #expect(throws: VerifyError.lengthMismatch(what: "draft distribution", expected: 2, actual: 3)) {
            try Probability.validatePair(target: [0.5, 0.5], draft: [0.2, 0.3, 0.5])
        }
        #expect(throws: VerifyError.tokenOutOfRange(what: "history", token: 7, vocabularySize: 2)) {
            try SamplingSettings(repetitionPenalty: 1.1).process(logits: [0, 1], history: [7])
        }
    }

    @Test func sampleIndexFollowsRunningSums() {
        let weights = [0.0, 2, 0, 1, 1]
        #expect(Probability.sampleIndex(weights, uniform: 0) == 1)
        #expect(Probability.sampleIndex(weights, uniform: 0.49) == 1)
        #expect(Probability.sampleIndex(weights, uniform: 0.5) == 3)
        #expect(Probability.sampleIndex(weights, uniform: 0.99) == 4)
        #expect(Probability.sampleIndex([0, 0], uniform: 0.3) == nil)
    }

    @Test func topIndicesBreakTiesBySmallestId() {
        #expect(SamplingSettings.topIndices([0.2, 0.3, 0.3, 0.1, 0.3], count: 2) == [1, 2])
        #expect(SamplingSettings.topIndices([0.2, 0.3], count: 0) == [])
        #expect(SamplingSettings.topIndices([0.2, 0.3], count: 5) == [1, 0])
    }

    @Test func counterRandomReplaysAndSeparatesStreams() {
        var a = CounterRandom(seed: 7, step: 3, node: 1)
        var b = CounterRandom(seed: 7, step: 3, node: 1)
        var c = CounterRandom(seed: 7, step: 3, node: 2)
        let first = (0..<4).map { _ in a.next() }
        #expect(first == (0..<4).map { _ in b.next() })
        #expect(first != (0..<4).map { _ in c.next() })
        var generator = SplitMix64(seed: 1)
        for _ in 0..<10_000 {
            let u = generator.nextUniform()
            let v = generator.nextOpenUniform()
            #expect(u >= 0 && u < 1 && v > 0 && v <= 1)
        }
    }
}

/// The temperature-0 shortcut gives what processing and choosing give, ties and infinities included.
@Suite("Greedy token from logits")
struct GreedyTokenTests {
    @Test func theShortcutChoosesWhatProcessingChooses() throws {
        var random = SplitMix64(seed: 5)
        var nothing = SplitMix64(seed: 0)
        for trial in 0..<300 {
            let size = 1 + Int(random.nextUniform() * 40)
            // Few distinct values: ties are common; some −∞ and +∞.
            var logits = (0..<size).map { _ in Float(Int(random.nextUniform() * 5)) - 2 }
            if trial % 7 == 0 { logits[Int(random.nextUniform() * Double(size))] = -.infinity }
            if trial % 11 == 0 { logits[Int(random.nextUniform() * Double(size))] = .infinity }
            if logits.allSatisfy({ $0 == -.infinity }) { continue }
            let settings = SamplingSettings.greedy
            #expect(settings.isPlainGreedy)
            let processed = try settings.process(logits: logits.map(Double.init))
            let expected = try settings.choose(from: processed, using: &nothing)
            #expect(try SamplingSettings.greedyToken(logits) == expected, "\(logits)")
        }
    }

    @Test func aNaNOrNoLogitIsAnError() {
        #expect(throws: VerifyError.self) { try SamplingSettings.greedyToken([1, .nan, 2]) }
        #expect(throws: VerifyError.self) { try SamplingSettings.greedyToken([.nan, 1]) }
        #expect(throws: VerifyError.self) { try SamplingSettings.greedyToken([]) }
        #expect(!SamplingSettings(temperature: 0, repetitionPenalty: 1.1).isPlainGreedy)
        #expect(!SamplingSettings(temperature: 0.5).isPlainGreedy)
    }
}
