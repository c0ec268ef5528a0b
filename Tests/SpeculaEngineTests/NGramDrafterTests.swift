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

@Suite("Suffix drafter")
struct SuffixDrafterTests {
    /// "1 4" occurred twice before the end, followed by 2 1 4 … and by 3 1 4: both ways, the latest first at equal
    /// counts, breadth first.
    @Test func branchesWhereTheTextContinuedSeveralWays() {
        let history = [1, 4, 2, 1, 4, 3, 1, 4]
        let tree = SuffixDrafter.propose(history: history, longest: 3, nodes: 4, depth: 3)
        #expect(tree.matchLength == 2 && tree.occurrences == 2)
        #expect(tree.tokens == [3, 2, 1, 1])
        #expect(tree.parents == [0, 0, 1, 2])
        #expect(tree.counts == [1, 1, 1, 1])
        #expect(!tree.isChain)
        // One node: the latest continuation's first token.
        #expect(SuffixDrafter.propose(history: history, longest: 3, nodes: 1, depth: 3).tokens == [3])
    }

    /// Frequency ranks the candidates: after "5 6", 7 followed twice (then 1, then 0) and 8 once (then 2), the 8
    /// most recently.
    @Test func ranksContinuationsByHowOftenTheyOccurred() {
        let history = [5, 6, 7, 0, 5, 6, 7, 1, 5, 6, 8, 2, 5, 6]
        let tree = SuffixDrafter.propose(history: history, longest: 2, nodes: 3, depth: 2)
        #expect(tree.occurrences == 3)
        // 7 (count 2) first; then, at count 1, the shallower 8, then the most recent occurrence's 2 after it.
        #expect(tree.tokens == [7, 8, 2])
        #expect(tree.parents == [0, 0, 2])
        #expect(tree.counts == [2, 1, 1])
    }

    /// With one earlier occurrence the tree is the n-gram drafter's chain; with none it is empty.
    @Test func oneOccurrenceGivesTheNGramChain() {
        var generator = SplitMix64(seed: 11)
        var compared = 0
        for _ in 0..<300 {
            let history = (0..<24).map { _ in Int(generator.next() % 5) }
            let tree = SuffixDrafter.propose(history: history, longest: 3, nodes: 6, depth: 6)
            let chain = NGramDrafter.match(history: history, longest: 3, count: 6)
            #expect(tree.matchLength == chain.length)
            if tree.occurrences == 1 {
                #expect(tree.isChain && tree.tokens == chain.proposal)
                compared += 1
            }
            // Always a tree: parents come before their children, and the budget holds.
            #expect(tree.tokens.count <= 6)
            #expect(tree.parents.enumerated().allSatisfy { $0.element <= $0.offset })
        }
        #expect(compared > 10)
        #expect(SuffixDrafter.propose(history: [1, 2, 3, 6], longest: 3, nodes: 4, depth: 3).tokens.isEmpty)
        #expect(SuffixDrafter.propose(history: [1, 1], longest: 3, nodes: 0, depth: 3).tokens.isEmpty)
    }

    /// A cut keeps the most frequent nodes, shallower first at equal counts, and is still a tree: after "5 6", 7
    /// (2 of 3) with 1 and 0 below it (1 of 2 each), 8 (1 of 3) with 2 below it.
    @Test func aCutKeepsTheMostFrequentNodes() {
        let history = [5, 6, 7, 0, 5, 6, 7, 1, 5, 6, 8, 2, 5, 6]
        let tree = SuffixDrafter.propose(history: history, longest: 2, nodes: 8, depth: 2)
        #expect(tree.tokens == [7, 8, 1, 0, 2])
        #expect(tree.parents == [0, 0, 1, 1, 2])
        #expect(tree.shares == [2.0 / 3, 1.0 / 3, 0.5, 0.5, 1])
        let three = tree.pruned(to: 3)
        #expect(three.tokens == [7, 8, 1] && three.parents == [0, 0, 1] && three.counts == [2, 1, 1])
        #expect(three.occurrences == 3 && three.matchLength == 2)
        #expect(tree.pruned(to: 1).tokens == [7] && tree.pruned(to: 1).isChain)
        #expect(tree.pruned(to: 9) == tree)
        #expect(tree.pruned(to: 0).tokens.isEmpty)
    }

    /// On random texts: every cut is a tree (parents first), holds min(k, nodes) of the tree's nodes with their
    /// paths, and no node left out occurred more often than one kept.
    @Test func cutsAreTreesOfTheMostFrequentNodes() {
        var generator = SplitMix64(seed: 5)
        var branching = 0
        for _ in 0..<200 {
            let history = (0..<40).map { _ in Int(generator.next() % 4) }
            let tree = SuffixDrafter.propose(history: history, longest: 2, nodes: 10, depth: 4)
            if !tree.isChain { branching += 1 }
            func paths(_ proposal: SuffixDrafter.Proposal) -> [[Int]: Int] {
                var path: [[Int]] = [[]]
                var result: [[Int]: Int] = [:]
                for (index, parent) in proposal.parents.enumerated() {
                    path.append(path[parent] + [proposal.tokens[index]])
                    result[path[index + 1]] = proposal.counts[index]
                }
                return result
            }
            let all = paths(tree)
            for k in 0...tree.tokens.count {
                let cut = tree.pruned(to: k)
                #expect(cut.tokens.count == k)
                #expect(cut.parents.enumerated().allSatisfy { $0.element <= $0.offset })
                let kept = paths(cut)
                #expect(kept.allSatisfy { all[$0.key] == $0.value }, "a cut node is not the tree's")
                let least = kept.values.min() ?? Int.max
                #expect(all.filter { kept[$0.key] == nil }.allSatisfy { $0.value <= least })
            }
        }
        #expect(branching > 20)
    }

    /// The counts of a chain's agreement with the earlier occurrences, against a direct count.
    @Test func agreementCountsTheOccurrencesThatWentOnAsTheChain() {
        let history = [5, 6, 7, 0, 5, 6, 7, 1, 5, 6, 8, 2, 5, 6]
        #expect(SuffixDrafter.agreement(history: history, length: 2, chain: [8, 2]) == [3, 1, 1])
        #expect(SuffixDrafter.agreement(history: history, length: 2, chain: [7, 1, 5]) == [3, 2, 1, 1])
        #expect(SuffixDrafter.agreement(history: history, length: 0, chain: [7]) == [0, 0])
        var generator = SplitMix64(seed: 9)
        for _ in 0..<200 {
            let history = (0..<30).map { _ in Int(generator.next() % 3) }
            let match = NGramDrafter.match(history: history, longest: 3, count: 5)
            let counts = SuffixDrafter.agreement(history: history, length: match.length, chain: match.proposal)
            guard match.length > 0 else { continue }
            let n = match.length
            let suffix = Array(history.suffix(n))
            var direct = [Int](repeating: 0, count: match.proposal.count + 1)
            for start in 0..<(history.count - n) where Array(history[start..<(start + n)]) == suffix {
                for d in 0...match.proposal.count {
                    let end = start + n + d
                    if end <= history.count && Array(history[(start + n)..<end]) == Array(match.proposal.prefix(d)) {
                        direct[d] += 1
                    }
                }
            }
            #expect(counts == direct, "\(history)")
            // The latest occurrence went on as the proposal: every level counts it.
            #expect(counts.allSatisfy { $0 >= 1 })
        }
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
