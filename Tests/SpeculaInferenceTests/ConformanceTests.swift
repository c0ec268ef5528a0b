import SpeculaModels
import Testing

/// Full sequence = incremental; a tree verified in one pass = its chains decoded one token at a time; trim and
/// commit leave the cache as plain decoding would. All bit for bit: the kernels compute a row of a batch exactly as
/// they compute a single token.
@Suite("Conformance and batch invariance", .enabled(if: Models.present || Models.required), .serialized)
struct ConformanceTests {
    static let prompt = [785, 6722, 315, 9625, 374, 12095, 13, 576, 6722, 315]  // Qwen ids: "The capital of France ..."

    static func tokens(for model: Transformer) -> [Int] {
        prompt.map { $0 % model.vocabularySize }
    }

    @Test(arguments: ["smollm2", "draft", "gemma3"])
    func fullSequenceEqualsIncremental(model name: String) throws {
        let model = try Models.transformer(name)
        let tokens = Self.tokens(for: model)
        let full = try model.forward(
            tokens: tokens, cache: model.makeCache(capacity: 64), logitRows: Array(tokens.indices))
        let cache = model.makeCache(capacity: 64)
        for (index, token) in tokens.enumerated() {
            let single = try model.forward(tokens: [token], cache: cache)[0]
            #expect(single == full[index], "\(name): position \(index) differs")
        }
    }

    /// A 12-token tree (root + 11 drafts, branching) verified in one pass: each node's logits equal those of its
    /// root-to-node chain decoded one token at a time after the same prefix.
    @Test(arguments: ["draft", "smollm2", "gemma3"])
    func treeEqualsChains(model name: String) throws {
        let model = try Models.transformer(name)
        let prefix = Array(Self.tokens(for: model).prefix(6))
        // parents (−1 = the root's parent is the prefix); node tokens.
        let parents = [-1, 0, 0, 1, 1, 2, 3, 3, 4, 5, 6, 8]
        let nodeTokens = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200].map {
            $0 % model.vocabularySize
        }
        func ancestors(_ node: Int) -> [Int] {
            var chain: [Int] = []
            var current = node
            while current >= 0 {
                chain.append(current)
                current = parents[current]
            }
            return chain.reversed()
        }
        let cache = model.makeCache(capacity: 64)
        _ = try model.forward(tokens: prefix, cache: cache)
        let positions = (0..<nodeTokens.count).map { prefix.count + ancestors($0).count - 1 }
        let tree = try model.forward(
            tokens: nodeTokens, positions: positions, visibility: (0..<nodeTokens.count).map(ancestors), cache: cache,
            logitRows: Array(nodeTokens.indices))
        for node in nodeTokens.indices {
            let chainCache = model.makeCache(capacity: 64)
            _ = try model.forward(tokens: prefix, cache: chainCache)
            var last: [Float] = []
            for step in ancestors(node) { last = try model.forward(tokens: [nodeTokens[step]], cache: chainCache)[0] }
            #expect(last == tree[node], "\(name): node \(node) differs from its chain")
        }
        // Commit the path root → 1 → 3 → 6 → 10 and continue: equals plain decoding of that path.
        let path = ancestors(10)
        cache.commit(prefix: prefix.count, kept: path)
        #expect(cache.length == prefix.count + path.count)
        let next = try model.forward(tokens: [7 % model.vocabularySize], cache: cache)[0]
        let plain = model.makeCache(capacity: 64)
        _ = try model.forward(tokens: prefix + path.map { nodeTokens[$0] }, cache: plain)
        #expect(try model.forward(tokens: [7 % model.vocabularySize], cache: plain)[0] == next)
    }

    @Test func trimThenRedecodeGivesTheSameLogits() throws {
        let model = try Models.transformer("smollm2")
        let tokens = Self.tokens(for: model)
        let cache = model.makeCache(capacity: 64)
        let first = try model.forward(tokens: tokens, cache: cache)[0]
        _ = try model.forward(tokens: [1, 2, 3], cache: cache)
        #expect(cache.trim(to: tokens.count) == 3)
        _ = cache.trim(to: tokens.count - 1)
        let again = try model.forward(tokens: [tokens.last ?? 0], cache: cache)[0]
        #expect(again == first)
    }

    @Test func contextOverflowIsAnError() throws {
        let model = try Models.transformer("smollm2")
        let cache = model.makeCache(capacity: 4)
        #expect(throws: ModelError.contextOverflow(needed: 5, capacity: 4)) {
            try model.forward(tokens: [1, 2, 3, 4, 5], cache: cache)
        }
        #expect(cache.length == 0)
        #expect(throws: ModelError.self) { try model.forward(tokens: [model.vocabularySize], cache: cache) }
    }
}
