import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaTestSupport
import SpeculaVerify
import Testing

/// Continuous batching (``ForwardBatcher``) on the synthetic pair: a batched pass computes every sequence's rows as
/// a pass of its own would; generations running side by side — joining and leaving at different steps, long prompts
/// fed in pieces, one cancelled mid-way — each give exactly the output they give alone; and a round enumerated
/// exactly while another generation shares its passes keeps the target's law.
@Suite("Continuous batching")
struct BatchingTests {
    static let target = GenerationSessionTests.target

    static func models() throws -> (target: LoadedModel, draft: LoadedModel) { try GenerationSessionTests.models() }

    // MARK: - The batched pass

    /// Three caches with different histories; each gets a different kind of segment (one token, a chain with all
    /// its logit rows, a tree with sibling rows at one position), one of them through a reduced output head.
    static func segments(_ model: Transformer, changeFirstToken: Bool = false) throws -> (
        segments: [ForwardSegment], caches: [KVCache]
    ) {
        let histories = [Array(1...5), [70, 71], Array(20...36)]
        let caches = try histories.map { history in
            let cache = model.makeCache(capacity: 64)
            _ = try model.forward(tokens: history, cache: cache, logitRows: [])
            return cache
        }
        caches[1].outputHead = try model.makeOutputHead(tokens: Array(0..<40) + [97, 98, 99])
        let p = caches[2].length
        let segments = [
            ForwardSegment(tokens: [changeFirstToken ? 9 : 6], cache: caches[0]),
            ForwardSegment(tokens: [72, 73, 74, 75], cache: caches[1], logitRows: [0, 1, 2, 3]),
            ForwardSegment(
                tokens: [40, 41, 42, 43], positions: [p, p + 1, p + 1, p + 2],
                visibility: [[0], [0, 1], [0, 2], [0, 1, 3]],
                cache: caches[2], logitRows: [0, 1, 2, 3]),
        ]
        return (segments, caches)
    }

    @Test func aBatchedPassComputesEverySequenceAsAlone() throws {
        let model = try Self.target.load()
        let (batch, batchCaches) = try Self.segments(model)
        let batched = try model.forward(batch: batch)
        let (alone, aloneCaches) = try Self.segments(model)
        for (index, segment) in alone.enumerated() {
            let rows = try model.forward(
                tokens: segment.tokens, positions: segment.positions, visibility: segment.visibility,
                cache: segment.cache, logitRows: segment.logitRows)
            #expect(rows == batched[index], "segment \(index): logits differ from its own pass")
            #expect(rows.count == (segment.logitRows ?? [0]).count)
        }
        // The rows stored in each cache are the same too: the next token's logits agree bit for bit.
        for (a, b) in zip(batchCaches, aloneCaches) {
            #expect(a.length == b.length)
            #expect(try model.forward(tokens: [3], cache: a) == model.forward(tokens: [3], cache: b))
        }
        // And the sequences are isolated: another token in the first segment changes its logits, not the others'.
        let (changed, _) = try Self.segments(model, changeFirstToken: true)
        let other = try model.forward(batch: changed)
        #expect(other[0] != batched[0])
        #expect(other[1] == batched[1] && other[2] == batched[2])
    }

    /// `bench model --sequences`' pass leaves each cache empty; a context its caches cannot hold is a clear error,
    /// not a trap.
    @Test func aTimedBatchedStepEmptiesItsCachesAndRejectsAContextTooLong() throws {
        let model = try Self.target.load()
        let caches = (0..<3).map { _ in model.makeCache(capacity: 33) }
        let seconds = try ModelTiming.batchedStep(model, caches: caches, context: 32, seed: 1)
        #expect(seconds > 0)
        #expect(caches.allSatisfy { $0.length == 0 })
        #expect(throws: EngineError.self) { try ModelTiming.batchedStep(model, caches: caches, context: 33, seed: 1) }
        #expect(caches.allSatisfy { $0.length == 0 })
    }

    @Test func aBadSegmentFailsAloneInTheBatcher() throws {
        let model = try Self.target.load()
        let batcher = ForwardBatcher()
        let member = batcher.join()
        let cache = model.makeCache(capacity: 4)
        cache.batchMember = member
        #expect(throws: ModelError.self) { try model.forward(tokens: [1, 2, 3, 4, 5], cache: cache) }
        #expect(throws: ModelError.self) { try model.forward(tokens: [model.vocabularySize], cache: cache) }
        #expect(cache.length == 0)
        #expect(try model.forward(tokens: [1, 2], cache: cache).count == 1)
        member.leave()
        #expect(batcher.members == 0)
    }

    /// What a member sees of a pass it shared: another member's prompt fed in pieces counts as piece rows, not as
    /// rows the passes to come will carry (the default mode prices its rounds with `otherDecodingRows`); another
    /// member's decoding step counts as a decoding row.
    @Test(arguments: [true, false])
    func aSharedPassTellsPromptPiecesFromDecodingRows(otherIsPrompt: Bool) throws {
        let model = try Self.target.load()
        var seen: ForwardBatcher.PassShare?
        // A's first pass counts it as a member; B's pass then waits for A's next one, and the two share it. (If A's
        // step were asked before B's pass, A would run alone: run again until they shared a pass.)
        for _ in 0..<50 where seen?.segments != 2 {
            let batcher = ForwardBatcher(priority: [model], prefillChunk: 8)
            let (a, b) = (model.makeCache(capacity: 64), model.makeCache(capacity: 64))
            _ = try model.forward(tokens: [4, 5], cache: b, logitRows: [])
            let (memberA, memberB) = (batcher.join(), batcher.join())
            a.batchMember = memberA
            b.batchMember = memberB
            let counted = DispatchSemaphore(value: 0)
            let group = DispatchGroup()
            group.enter()
            Thread {
                _ = try? model.forward(tokens: [1, 2, 3], cache: a, logitRows: [])
                counted.signal()
                Thread.sleep(forTimeInterval: 0.02)
                _ = try? model.forward(tokens: [7], cache: a)
                memberA.leave()
                group.leave()
            }.start()
            group.enter()
            Thread {
                counted.wait()
                _ = try? model.forward(tokens: otherIsPrompt ? Array(10..<30) : [8], cache: b)
                memberB.leave()
                group.leave()
            }.start()
            group.wait()
            seen = a.lastPass
        }
        let share = try #require(seen)
        try #require(share.segments == 2, "the two members never shared a pass")
        #expect(share.ownRows == 1)
        if otherIsPrompt {
            // The prompt's first piece: 8 of its 20 rows, all of them piece rows.
            #expect(share.rows == 9 && share.otherPieceRows == 8 && share.otherDecodingRows == 0, "\(share)")
        } else {
            #expect(share.rows == 2 && share.otherPieceRows == 0 && share.otherDecodingRows == 1, "\(share)")
        }
    }

    // MARK: - Generations side by side

    struct Job: Sendable, CustomStringConvertible {
        var method: String
        var prompt: [Int]
        var maxTokens: Int
        var temperature = 0.0
        var seed: UInt64 = 0
        var description: String { "\(method) T=\(temperature) prompt \(prompt.count)" }

        func plan() throws -> DecodingPlan {
            let sampling = temperature == 0 ? SamplingSettings.greedy : SamplingSettings(temperature: temperature)
            let base = DecodingPlan(
                sampling: sampling, stop: StopConditions(maxTokens: maxTokens, atEndOfGeneration: false), seed: seed)
            return method == "plain" ? base : try DecodingPlan(method: method, base: base)
        }
    }

    /// Different plans, temperatures, lengths and prompts (two longer than the batcher's prompt piece). At T > 0 the
    /// plans are fixed shapes with a seed: their output is a function of the logits and the seed, so it must be the
    /// same token for token (the adaptive mode's choices depend on timing, so it runs at T = 0 only).
    static let jobs: [Job] = [
        Job(method: "chain:4/token", prompt: Array("the cat sat on".utf8).map(Int.init), maxTokens: 40),
        Job(method: "adaptive", prompt: Array(0..<40), maxTokens: 30),
        Job(method: "binary:3/rrsw", prompt: [104, 105], maxTokens: 24, temperature: 0.9, seed: 5),
        Job(method: "plain", prompt: Array(50..<75), maxTokens: 36, temperature: 1, seed: 9),
        Job(method: "ngram", prompt: Array("abcabcabcab".utf8).map(Int.init), maxTokens: 20),
        Job(method: "chain:3/block", prompt: Array(100..<130), maxTokens: 28, temperature: 0.8, seed: 3),
        Job(method: "plain", prompt: Array(0..<90).map { ($0 * 7) % 200 }, maxTokens: 16),
    ]

    static func runAlone(_ job: Job, _ target: LoadedModel, _ draft: LoadedModel) throws -> [Int] {
        let session = try GenerationSession(target: target, draft: draft, plan: job.plan())
        try session.start(prompt: job.prompt)
        try session.run()
        return session.generated
    }

    /// Runs `jobs` on threads of their own through one batcher, job `order[k]` starting `k` steps of 3 ms apart;
    /// `cancelAfter[i]`: cancel job `i` after that many events. Returns each job's tokens and finish reason.
    static func runTogether(
        _ jobs: [Job], order: [Int], batcher: ForwardBatcher, cancelAfter: [Int: Int] = [:],
        _ target: LoadedModel, _ draft: LoadedModel
    ) -> [(tokens: [Int], reason: FinishReason?, error: String?)] {
        let results = Shared(
            [(tokens: [Int], reason: FinishReason?, error: String?)](
                repeating: ([], nil, nil), count: jobs.count))
        let group = DispatchGroup()
        for (rank, index) in order.enumerated() {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                Thread.sleep(forTimeInterval: 0.003 * Double(rank))
                do {
                    let session = try GenerationSession(target: target, draft: draft, plan: jobs[index].plan())
                    session.batcher = batcher
                    try session.start(prompt: jobs[index].prompt)
                    var events = 0
                    while try session.next() != nil {
                        events += 1
                        if let limit = cancelAfter[index], events == limit { session.cancel() }
                    }
                    results.update { $0[index] = (session.generated, session.finishReason, nil) }
                } catch {
                    results.update { $0[index].error = "\(error)" }
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()
        return results.read { $0 }
    }

    @Test(arguments: [[0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0], [3, 0, 6, 1, 5, 2, 4]])
    func everyGenerationGivesItsOwnOutputBesideOthers(order: [Int]) throws {
        let (target, draft) = try Self.models()
        let alone = try Self.jobs.map { try Self.runAlone($0, target, draft) }
        let batcher = ForwardBatcher(
            priority: [draft.transformer, target.transformer], prefillChunk: 8)
        let together = Self.runTogether(Self.jobs, order: order, batcher: batcher, target, draft)
        for (index, job) in Self.jobs.enumerated() {
            #expect(together[index].error == nil, "\(job): \(together[index].error ?? "")")
            #expect(alone[index].count == job.maxTokens)
            #expect(together[index].tokens == alone[index], "\(job): output differs beside others")
        }
        let statistics = batcher.statistics
        #expect(statistics.sharedPasses > 0, "no pass carried two generations")
        #expect(statistics.splitPrompts > 0, "no prompt was fed in pieces")
        #expect(batcher.members == 0, "every generation left")
    }

    /// Prompt pieces sized in time: a bound no pass can meet keeps them at the smallest budget, one every pass
    /// meets lets them grow; either way each generation gives its lone output.
    @Test(arguments: [1e-12, 1e6])
    func timeBoundedPiecesKeepEveryOutput(bound: Double) throws {
        let (target, draft) = try Self.models()
        let alone = try Self.jobs.map { try Self.runAlone($0, target, draft) }
        let batcher = ForwardBatcher(
            priority: [draft.transformer, target.transformer], prefillChunk: 8, prefillBound: bound)
        let together = Self.runTogether(Self.jobs, order: [0, 1, 2, 3, 4, 5, 6], batcher: batcher, target, draft)
        for (index, job) in Self.jobs.enumerated() {
            #expect(together[index].error == nil, "\(job): \(together[index].error ?? "")")
            #expect(together[index].tokens == alone[index], "\(job): output differs beside others")
        }
        let statistics = batcher.statistics
        #expect(statistics.piecePasses > 0, "no pass carried a prompt piece beside another generation")
        #expect(statistics.longestPiecePass > 0)
        let budget = try #require(batcher.promptBudget(of: target.transformer))
        if bound < 1 {
            #expect(budget == ForwardBatcher.PromptBudget.minimum)
        } else {
            #expect(budget >= 8)
        }
        #expect(ForwardBatcher(priority: [target.transformer]).promptBudget(of: target.transformer) == nil)
    }

    /// A generation decoding while a long prompt is fed under the smallest budget: every pass carries its step
    /// beside the prompt's piece (with one model, a pass of pieces alone would mean the step was held back).
    @Test func aDecodingStepIsNeverHeldBackByAPromptsBudget() throws {
        let (target, draft) = try Self.models()
        let jobs = [
            Job(method: "plain", prompt: [1, 2, 3], maxTokens: 60),
            Job(method: "plain", prompt: Array(0..<120).map { ($0 * 11) % 200 }, maxTokens: 2),
        ]
        let alone = try jobs.map { try Self.runAlone($0, target, draft) }
        // The second starts 3 ms after the first, which may have finished by then on this small model: run again
        // until the two overlapped.
        var overlapped = false
        for _ in 0..<50 where !overlapped {
            let batcher = ForwardBatcher(priority: [target.transformer], prefillChunk: 8, prefillBound: 1e-12)
            let together = Self.runTogether(jobs, order: [0, 1], batcher: batcher, target, draft)
            for index in jobs.indices { #expect(together[index].tokens == alone[index]) }
            let statistics = batcher.statistics
            overlapped = statistics.piecePasses > 0
            #expect(statistics.pieceOnlyPasses == 0, "\(statistics.pieceOnlyPasses) passes held a decoding step back")
        }
        #expect(overlapped, "the long prompt was never fed beside the decoding generation")
    }

    /// Only a segment's rows before its first logit row are cut: with every prompt at most the smallest piece,
    /// nothing is split under the smallest budget — not the 13-row chains to verify, which ask for every row.
    @Test func aChainToVerifyIsNeverCut() throws {
        let (target, draft) = try Self.models()
        let jobs = [
            Job(method: "chain:12/token", prompt: Array("the cat".utf8).map(Int.init), maxTokens: 40),
            Job(method: "plain", prompt: [5, 6, 7], maxTokens: 40),
        ]
        let alone = try jobs.map { try Self.runAlone($0, target, draft) }
        var shared = false
        for _ in 0..<50 where !shared {
            let batcher = ForwardBatcher(
                priority: [draft.transformer, target.transformer], prefillChunk: 8, prefillBound: 1e-12)
            let together = Self.runTogether(jobs, order: [0, 1], batcher: batcher, target, draft)
            for index in jobs.indices { #expect(together[index].tokens == alone[index]) }
            let statistics = batcher.statistics
            shared = statistics.sharedPasses > 0
            #expect(statistics.splitPrompts == 0, "a segment was cut \(statistics.splitPrompts) times")
        }
        #expect(shared, "the two generations never shared a pass")
    }

    /// The budget's steps on passes that cost a + b · rows reach the rows whose pass takes the bound, from above
    /// and from below, and stay in bounds where no piece fits.
    @Test(arguments: [(0.04, 0.006, 0.25), (0.04, 0.001, 0.25), (0.1, 0.02, 0.25), (0.3, 0.01, 0.25)])
    func thePromptBudgetFindsTheRowsThatTakeTheBound(a: Double, b: Double, bound: Double) {
        typealias Budget = ForwardBatcher.PromptBudget
        let ideal = (bound - a) / b
        for start in [8, 64, 1024] {
            var budget = Budget(rows: start)
            for _ in 0..<40 {
                let rows = budget.rows
                budget.update(pieceRows: rows, seconds: a + b * Double(rows), bound: bound)
            }
            let expected = min(max(ideal, Double(Budget.minimum)), Double(Budget.maximum))
            #expect(abs(Double(budget.rows) - expected) <= max(1, 0.02 * expected), "start \(start): \(budget.rows)")
            // A pass whose pieces were a short prompt's whole remainder, under the bound, teaches nothing.
            let before = budget.rows
            budget.update(pieceRows: 3, seconds: a + 3 * b, bound: bound)
            if a + 3 * b <= bound { #expect(budget.rows == before) }
        }
    }

    @Test func aCancelledGenerationLeavesTheOthersUnchanged() throws {
        let (target, draft) = try Self.models()
        let jobs = Array(Self.jobs.prefix(4))
        let alone = try jobs.map { try Self.runAlone($0, target, draft) }
        let batcher = ForwardBatcher(priority: [draft.transformer, target.transformer], prefillChunk: 8)
        let together = Self.runTogether(
            jobs, order: [0, 1, 2, 3], batcher: batcher, cancelAfter: [1: 3, 2: 2], target, draft)
        for index in [0, 3] {
            #expect(together[index].tokens == alone[index], "\(jobs[index]) changed beside a cancelled generation")
        }
        for index in [1, 2] {
            #expect(together[index].reason == .cancelled)
            #expect(together[index].tokens.count < jobs[index].maxTokens)
            // What it emitted before the cancellation is its own output's beginning.
            #expect(Array(alone[index].prefix(together[index].tokens.count)) == together[index].tokens)
        }
        #expect(batcher.members == 0)
    }

    /// A real model (the small pinned model, drafting for itself; real weights, the worker pool's threads, the
    /// shared and the per-token attention paths): four generations with different plans and prompts, the longest
    /// prompt fed in pieces, each equal to its lone output.
    @Test func realModelsGiveTheirLoneOutputsBesideOthers() throws {
        let path = TestModels.directory + "/smollm2-135m-instruct-q4_1.gguf"
        guard FileManager.default.fileExists(atPath: path) else {
            if TestModels.required { Issue.record("missing the small pinned model in \(TestModels.directory)") }
            return
        }
        let model = try LoadedModel(path: path)
        func tokens(_ text: String) throws -> [Int] {
            try model.promptTokens(messages: [ChatMessage(role: "user", content: text)])
        }
        let jobs = [
            Job(
                method: "adaptive", prompt: try tokens("Write a Python function that checks for palindromes."),
                maxTokens: 12),
            Job(
                method: "plain", prompt: try tokens("Name three rivers in Europe."), maxTokens: 8, temperature: 1,
                seed: 3),
            Job(
                method: "chain:3/token",
                prompt: try tokens(
                    String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 4)
                        + "Summarize."), maxTokens: 10),
            Job(method: "binary:2/rrsw", prompt: try tokens("Say hello."), maxTokens: 8, temperature: 0.8, seed: 2),
        ]
        let alone = try jobs.map { try Self.runAlone($0, model, model) }
        let batcher = ForwardBatcher(priority: [model.transformer], prefillChunk: 16)
        let together = Self.runTogether(jobs, order: [2, 0, 3, 1], batcher: batcher, model, model)
        for (index, job) in jobs.enumerated() {
            #expect(together[index].error == nil, "\(job): \(together[index].error ?? "")")
            #expect(together[index].tokens == alone[index], "\(job): output differs beside others")
        }
        #expect(batcher.statistics.sharedPasses > 0)
        #expect(batcher.statistics.splitPrompts > 0)
    }

    // MARK: - The law of a round beside another generation

    /// Small cases of ``RoundEnumerationTests`` (every outcome of one round, then of a few tokens): each path's
    /// passes wait on the other generation's, so the enumeration is kept short.
    static let lawCases: [RoundEnumerationTests.Case] = [
        .init(name: "chain token γ=2, 2 tokens", depth: 2),
        .init(name: "chain block γ=2, 2 tokens", chain: .block, depth: 2, settings: .init(temperature: 0.9, topK: 2)),
        .init(name: "rrsw, 2 then 1, 2 tokens", tree: [[], [0], [1], [0, 0]], verifier: "rrsw"),
        .init(
            name: "adaptive, 2 tokens", depth: 2, settings: .init(temperature: 0.9, topK: 2), length: 2,
            adaptive: true),
    ]

    @Test(arguments: lawCases)
    func aRoundKeepsTheTargetsLawBesideAnotherGeneration(_ testCase: RoundEnumerationTests.Case) throws {
        let target = try RoundEnumerationTests.target.load()
        let draft = try RoundEnumerationTests.target.draft(perturbation: 0.6).load()
        let batcher = ForwardBatcher(priority: [draft, target])
        let decoder = try SpeculativeDecoder(
            target: target, draft: draft, settings: testCase.settings, depth: testCase.depth, verifier: testCase.chain,
            tree: try testCase.tree.map { try TreeTopology(paths: $0) },
            nodeVerifier: RoundEnumerationTests.nodeVerifier(testCase.verifier), capacity: testCase.capacity)
        let member = batcher.join()
        decoder.targetCache.batchMember = member
        decoder.draftCache?.batchMember = member
        if testCase.adaptive { decoder.deferDraftPrefill = true }
        try decoder.start(prompt: RoundEnumerationTests.prompt)
        // The other generation: rounds of its own (another prompt, T = 1) on its own thread until the enumeration
        // ends, every pass shared with the enumerated decoder's.
        let stopping = Shared(false)
        let otherRounds = Shared(0)
        let otherDone = DispatchSemaphore(value: 0)
        let other = try SpeculativeDecoder(
            target: target, draft: draft, settings: SamplingSettings(temperature: 1), depth: 3, capacity: 64, seed: 4)
        let otherMember = batcher.join()
        other.targetCache.batchMember = otherMember
        other.draftCache?.batchMember = otherMember
        let otherDecoder = Shared(other)
        let thread = Thread {
            defer {
                otherMember.leave()
                otherDone.signal()
            }
            do {
                let other = otherDecoder.read { $0 }
                try other.start(prompt: [5, 3, 5, 3])
                while !stopping.read({ $0 }) {
                    if other.targetCache.length > 40 { try other.restart(prompt: [5, 3, 5, 3]) }
                    _ = try other.round()
                    otherRounds.update { $0 += 1 }
                }
            } catch {
                Issue.record("the other generation failed: \(error)")
            }
        }
        thread.start()
        let law = try Enumeration.law(maximumPaths: 400_000) { source -> [Int] in
            decoder.random = source
            try decoder.restart(prompt: RoundEnumerationTests.prompt)
            if testCase.adaptive { decoder.adaptive = RoundEnumerationTests.policy(hasDraftModel: true) }
            var emitted: [Int] = []
            while emitted.count < testCase.length { emitted += try decoder.round() }
            return Array(emitted.prefix(testCase.length))
        }
        // Leave first: a member that stays counted while it runs no pass would hold the other's passes forever.
        member.leave()
        stopping.update { $0 = true }
        otherDone.wait()
        let expected = try RoundEnumerationTests.targetLaw(
            target, context: RoundEnumerationTests.prompt, length: testCase.length, settings: testCase.settings)
        #expect(expected.count > 3)
        let keys = Set(law.keys).union(expected.keys)
        let distance = keys.map { abs((law[$0] ?? 0) - (expected[$0] ?? 0)) }.max() ?? 0
        #expect(distance < 1e-9, "\(testCase): max |Δ| = \(distance)")
        #expect(otherRounds.read { $0 } > 0)
        #expect(batcher.statistics.sharedPasses > 0, "the two generations never shared a pass")
    }
}

/// A value shared between a test's threads, read and changed under a lock.
final class Shared<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func read<T>(_ body: (Value) -> T) -> T { lock.withLock { body(value) } }
    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&value) } }
}
