import SpeculaModels
import SpeculaVerify

/// Speculative decoding of chains with a draft model: draft γ tokens, one target pass over them, verify, commit
/// the accepted path in both caches, and continue from the correction or bonus token.
///
/// This first engine drafts a single chain (trees, the n-gram drafter and the cost model come next). Temperature 0
/// uses the greedy walk, whose output equals plain greedy decoding token for token because the forward pass is
/// batch-invariant; above 0 the chain is verified token by token (Leviathan et al.) or as a block (Sun et al.).
public final class SpeculativeDecoder {
    public enum ChainVerifier: String, Sendable, CaseIterable {
        case token
        case block
    }

    public let target: Transformer
    public let draft: Transformer
    public let settings: SamplingSettings
    public let depth: Int
    public let verifier: ChainVerifier
    let targetCache: KVCache
    let draftCache: KVCache
    var generator: SplitMix64
    var step: UInt64 = 0
    /// Tokens emitted so far (prompt included), for the penalties.
    public private(set) var history: [Int] = []
    /// The last emitted token: the root of the next round (no KV entry yet in either cache).
    var root: Int = 0
    /// Draft-cache rows missing before the root (a fully accepted chain's last draft was never fed).
    var draftBacklog: [Int] = []
    public private(set) var telemetry = Telemetry()

    /// Counts of one generation.
    public struct Telemetry: Sendable {
        public var rounds = 0
        public var draftedTokens = 0
        public var acceptedTokens = 0
        public var emittedTokens = 0
        /// Tokens per target pass, bonus and correction included.
        public var tokensPerStep: Double { rounds == 0 ? 0 : Double(emittedTokens) / Double(rounds) }
        public var acceptanceRate: Double { draftedTokens == 0 ? 0 : Double(acceptedTokens) / Double(draftedTokens) }
    }

    public init(
        target: Transformer, draft: Transformer, targetTokenizer: Tokenizer, draftTokenizer: Tokenizer,
        settings: SamplingSettings, depth: Int, verifier: ChainVerifier = .token, capacity: Int, seed: UInt64 = 0
    ) throws {
        try targetTokenizer.requireSameVocabulary(as: draftTokenizer)
        if target.vocabularySize != draft.vocabularySize {
            throw TokenizerError.mismatch(
                reason: "output sizes differ (\(target.vocabularySize) vs \(draft.vocabularySize))")
        }
        if depth < 1 { throw VerifyError.invalidSetting(name: "depth", value: "\(depth)", reason: "must be ≥ 1") }
        try settings.validate()
        self.target = target
        self.draft = draft
        self.settings = settings
        self.depth = depth
        self.verifier = verifier
        targetCache = target.makeCache(capacity: capacity)
        draftCache = draft.makeCache(capacity: capacity)
        generator = SplitMix64(seed: seed)
    }

    /// Feeds the prompt (all but its last token) to both models; the last token becomes the first root.
    public func start(prompt: [Int]) throws {
        guard let last = prompt.last else { throw ModelError.invalid(path: "prompt", reason: "the prompt is empty") }
        _ = targetCache.trim(to: 0)
        _ = draftCache.trim(to: 0)
        let body = Array(prompt.dropLast())
        if !body.isEmpty {
            _ = try target.forward(tokens: body, cache: targetCache)
            _ = try draft.forward(tokens: body, cache: draftCache)
        }
        history = prompt
        root = last
        draftBacklog = []
        telemetry = Telemetry()
    }

    /// The target's logits after the emitted text (feeds the root to a scratch copy of the state: for tests and
    /// checks; it does not change the decoder).
    public func rootLogits() throws -> [Float] {
        let length = targetCache.length
        defer { _ = targetCache.trim(to: length) }
        return try target.forward(tokens: [root], cache: targetCache)[0]
    }

    func process(_ logits: [Float]) throws -> [Double] {
        try settings.process(logits: logits.map(Double.init), history: history)
    }

    /// One round: returns the emitted tokens (at least one).
    public func round() throws -> [Int] {
        let prefix = targetCache.length
        // The root and at least one draft must fit.
        let room = targetCache.capacity - prefix - 1
        if room < 1 { throw ModelError.contextOverflow(needed: prefix + 2, capacity: targetCache.capacity) }
        let gamma = min(depth, room)
        // 1. Draft a chain: feed the backlog and the root, then each draft but the last.
        var drafts: [Int] = []
        var draftVectors: [[Double]] = []
        var feed = draftBacklog + [root]
        draftBacklog = []
        for position in 0..<gamma {
            let logits = try draft.forward(tokens: feed, cache: draftCache)[0]
            let q = try process(logits)
            let token =
                settings.isGreedy
                ? Probability.argmax(q) : (Probability.sampleIndex(q, uniform: generator.nextUniform()) ?? 0)
            drafts.append(token)
            draftVectors.append(q)
            feed = [token]
            if position == gamma - 1 { break }
        }
        // 2. One target pass over the root and the drafts.
        let nodes = [root] + drafts
        let logits = try target.forward(tokens: nodes, cache: targetCache, logitRows: Array(nodes.indices))
        let targetVectors = try logits.map(process)
        // 3. Verify.
        var tree = DraftTree(rootToken: root)
        for (index, token) in drafts.enumerated() {
            tree.expand(index, draft: draftVectors[index], law: .withoutReplacement, childTokens: [token])
        }
        let result: TreeWalkResult
        if settings.isGreedy {
            result = try TreeWalk.greedyWalk(tree: tree, target: targetVectors)
        } else {
            var uniforms = CounterRandom(seed: generator.next(), step: step, node: 0)
            switch verifier {
            case .token:
                var decision = NodeDecision()
                result = try TreeWalk.walk(
                    tree: tree, target: targetVectors, verifier: { _ in TokenVerifier() }, decision: &decision,
                    using: &uniforms)
            case .block:
                result = try TreeWalk.blockWalk(tree: tree, target: targetVectors, using: &uniforms)
            }
        }
        step += 1
        // 4. Commit the accepted path in both caches; the last emitted token is the next root.
        let accepted = result.acceptedNodes.count
        targetCache.commit(prefix: prefix, kept: Array(0...accepted))
        // The draft holds rows for the root and drafts 1…γ−1 at the same positions as the target.
        draftCache.commit(prefix: prefix, kept: Array(0...min(accepted, gamma - 1)))
        if accepted == gamma { draftBacklog = [drafts[gamma - 1]] }
        let emitted = result.emittedTokens
        root = emitted[emitted.count - 1]
        history += emitted
        telemetry.rounds += 1
        telemetry.draftedTokens += gamma
        telemetry.acceptedTokens += accepted
        telemetry.emittedTokens += emitted.count
        return emitted
    }
}
