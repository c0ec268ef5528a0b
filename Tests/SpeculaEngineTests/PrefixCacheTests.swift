import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaVerify
import Testing

/// Caches kept across turns: the next turn feeds only its new tokens and gives the tokens a fresh session gives,
/// for every plan, at temperature 0 and (the forward pass being batch-invariant) at temperature > 0 with the same
/// seed. Log-probabilities come from the rows of the rounds' own passes and equal plain decoding's.
@Suite("Prefix reuse and log-probabilities")
struct PrefixCacheTests {
    static let methods = ["plain", "chain:4/token", "binary:3/spechub", "adaptive", "ngram-adaptive", "chain:3/block"]

    static func session(
        _ method: String, temperature: Double, maxTokens: Int, pool: PrefixCache?
    ) throws -> GenerationSession {
        let (target, draft) = try GenerationSessionTests.models()
        let sampling = SamplingSettings(temperature: temperature)
        let plan = try DecodingPlan(
            method: method,
            base: DecodingPlan(
                sampling: sampling, stop: StopConditions(maxTokens: maxTokens, atEndOfGeneration: false), seed: 7))
        let session = try GenerationSession(target: target, draft: draft, plan: plan, context: 160)
        session.prefixCache = pool
        return session
    }

    @Test(arguments: methods, [0.0, 0.8])
    func aSecondTurnReusesTheFirstAndGivesTheSameTokens(method: String, temperature: Double) throws {
        let pool = PrefixCache()
        let first = try Self.session(method, temperature: temperature, maxTokens: 20, pool: pool)
        let opening = Array("the cat sat on the mat and".utf8).map(Int.init)
        try first.start(prompt: opening)
        try first.run()
        #expect(first.cachedPromptTokens == 0)
        #expect(pool.target != nil, "the finished session gave its cache back")
        // The next turn: the whole first exchange and a new question.
        let next = opening + first.generated + Array(" then what".utf8).map(Int.init)
        let second = try Self.session(method, temperature: temperature, maxTokens: 24, pool: pool)
        try second.start(prompt: next)
        try second.run()
        let fresh = try Self.session(method, temperature: temperature, maxTokens: 24, pool: nil)
        try fresh.start(prompt: next)
        try fresh.run()
        // The adaptive modes choose each round's kind from measured time, and at T > 0 a different choice draws a
        // different (equally exact) sample: their tokens are compared at T = 0 only.
        if temperature == 0 || !method.contains("adaptive") {
            #expect(second.generated == fresh.generated, "\(method) at T = \(temperature)")
        }
        #expect(second.cachedPromptTokens >= opening.count)
        #expect(second.cachedPromptTokens <= next.count - 1)
        if method == "plain" {
            // Plain decoding's cache holds the prompt and every generated token but the last.
            #expect(second.cachedPromptTokens == opening.count + first.generated.count - 1)
        }
        #expect(second.stats.cachedPromptTokens == second.cachedPromptTokens)
    }

    @Test func oneCacheServesTurnsOfDifferentPlans() throws {
        let pool = PrefixCache()
        var prompt = Array("once upon a time".utf8).map(Int.init)
        for method in ["chain:4/token", "plain", "adaptive", "ngram-adaptive", "binary:3/spechub"] {
            let kept = try Self.session(method, temperature: 0, maxTokens: 12, pool: pool)
            try kept.start(prompt: prompt)
            try kept.run()
            let fresh = try Self.session(method, temperature: 0, maxTokens: 12, pool: nil)
            try fresh.start(prompt: prompt)
            try fresh.run()
            #expect(kept.generated == fresh.generated, "\(method)")
            prompt += kept.generated + [32, 97]
        }
    }

    @Test func anUnrelatedPromptKeepsNothingItDoesNotShare() throws {
        let pool = PrefixCache()
        let first = try Self.session("adaptive", temperature: 0, maxTokens: 10, pool: pool)
        try first.start(prompt: Array("abcdef".utf8).map(Int.init))
        try first.run()
        let other = Array("xyz".utf8).map(Int.init)
        let second = try Self.session("adaptive", temperature: 0, maxTokens: 10, pool: pool)
        try second.start(prompt: other)
        try second.run()
        let fresh = try Self.session("adaptive", temperature: 0, maxTokens: 10, pool: nil)
        try fresh.start(prompt: other)
        try fresh.run()
        #expect(second.cachedPromptTokens == 0)
        #expect(second.generated == fresh.generated)
    }

    @Test(arguments: ["chain:4/token", "binary:3/spechub", "adaptive", "ngram", "eagle/rrs"])
    func logprobsEqualPlainDecodings(method: String) throws {
        let prompt = Array("the cat sat on".utf8).map(Int.init)
        let plain = try Self.session("plain", temperature: 0, maxTokens: 30, pool: nil)
        plain.logprobs = 3
        try plain.start(prompt: prompt)
        var plainEntries: [TokenLogprob] = []
        while let event = try plain.next() { plainEntries += event.logprobs }
        let speculative = try Self.session(method, temperature: 0, maxTokens: 30, pool: nil)
        speculative.logprobs = 3
        try speculative.start(prompt: prompt)
        var entries: [TokenLogprob] = []
        while let event = try speculative.next() {
            #expect(event.logprobs.map(\.token) == event.tokens)
            entries += event.logprobs
        }
        #expect(entries.count == 30)
        #expect(entries == plainEntries, "\(method)")
    }

    @Test func logprobsAreTheTargetsSoftmax() throws {
        // At temperature 1 with no filter the distribution a plain step draws from is the softmax of the logits:
        // each token's log-probability is the log of its probability there, and the alternatives are the most
        // likely tokens in order.
        let (target, _) = try GenerationSessionTests.models()
        var plan = DecodingPlan.plain(
            sampling: SamplingSettings(temperature: 1), stop: StopConditions(maxTokens: 12, atEndOfGeneration: false),
            seed: 3)
        plan.recordDistributions = true
        let session = try GenerationSession(target: target, plan: plan)
        session.logprobs = 4
        try session.start(prompt: Array("hello".utf8).map(Int.init))
        while let event = try session.next() {
            for (entry, distribution) in zip(event.logprobs, event.distributions) {
                #expect(abs(entry.logprob - Foundation.log(distribution[entry.token])) < 1e-9)
                let order = distribution.indices.sorted {
                    distribution[$0] > distribution[$1] || (distribution[$0] == distribution[$1] && $0 < $1)
                }
                #expect(entry.top.map(\.token) == Array(order.prefix(4)))
                for alternative in entry.top {
                    #expect(abs(alternative.logprob - Foundation.log(distribution[alternative.token])) < 1e-9)
                }
            }
        }
    }
}
