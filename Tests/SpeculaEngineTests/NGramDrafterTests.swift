import SpeculaEngine
import SpeculaModels
import SpeculaVerify
import Testing

@Suite("N-gram drafter")
struct NGramDrafterTests {
    @Test func proposesWhatFollowedTheLatestOccurrence() {
        // …7 8 9 | 1 2 3 | 7 8 9 4 5 | 7 8 9: the latest earlier "7 8 9" is followed by 4 5 7 8 9.
        let history = [7, 8, 9, 1, 2, 3, 7, 8, 9, 4, 5, 7, 8, 9]
        #expect(NGramDrafter.propose(history: history, longest: 3, count: 3) == [4, 5, 7])
        #expect(NGramDrafter.propose(history: history, longest: 3, count: 10) == [4, 5, 7, 8, 9])
        // Shorter n-grams when the longer do not occur: "6" never occurred, nothing to propose.
        #expect(NGramDrafter.propose(history: [1, 2, 3, 6], longest: 3, count: 4) == [])
        // "2 3" never occurred before; with n = 1 the earlier "3" is followed by 5 6.
        #expect(NGramDrafter.propose(history: [3, 5, 6, 2, 3], longest: 2, count: 2) == [5, 6])
        // An occurrence may overlap the suffix (runs of one token).
        #expect(NGramDrafter.propose(history: [4, 4, 4], longest: 2, count: 3) == [4])
        #expect(NGramDrafter.propose(history: [1], longest: 3, count: 3) == [])
        #expect(NGramDrafter.propose(history: [1, 1], longest: 3, count: 0) == [])
    }
}

@Suite(
    "Speculative decoding with the n-gram drafter", .enabled(if: EngineModels.present || EngineModels.required),
    .serialized)
struct NGramDecodingTests {
    /// Temperature 0: the output equals plain greedy decoding, on text that repeats itself (proposals accepted)
    /// and on the model's own continuation.
    @Test func greedyEqualsPlain() throws {
        let (model, tokenizer) = try EngineModels.load("smollm2")
        let prompt = tokenizer.encode(
            "one two three four five. one two three four five. one two three four five. one two")
        let count = 30
        let plain = try EngineModels.plainGreedy(model, prompt: prompt, count: count)
        let decoder = try SpeculativeDecoder(
            target: model, settings: .greedy, depth: 4, ngram: 3, capacity: prompt.count + count + 8)
        try decoder.start(prompt: prompt)
        var output: [Int] = []
        while output.count < count { output += try decoder.round() }
        #expect(Array(output.prefix(count)) == plain)
        #expect(decoder.telemetry.acceptedTokens > 0, "the repeated text should be proposed and accepted")
        #expect(decoder.telemetry.draftSeconds >= 0 && decoder.telemetry.targetPassSeconds > 0)
    }

    /// Temperature 0.8 with token and block verification: after the rounds the target cache gives exactly the
    /// logits of plain decoding of the emitted text (rejected proposals rolled back).
    @Test(arguments: SpeculativeDecoder.ChainVerifier.allCases)
    func cachesMatchPlainDecoding(verifier: SpeculativeDecoder.ChainVerifier) throws {
        let (model, tokenizer) = try EngineModels.load("smollm2")
        let prompt = tokenizer.encode("red green blue, red green blue, red green blue, red")
        let decoder = try SpeculativeDecoder(
            target: model, settings: SamplingSettings(temperature: 0.8), depth: 4, ngram: 2, verifier: verifier,
            capacity: 128, seed: 11)
        try decoder.start(prompt: prompt)
        var emitted: [Int] = []
        for _ in 0..<8 { emitted += try decoder.round() }
        #expect(decoder.telemetry.draftedTokens > 0)
        let plain = try model.forward(tokens: prompt + emitted, cache: model.makeCache(capacity: 128))[0]
        #expect(try decoder.rootLogits() == plain)
    }
}
