import SpeculaKernels
import SpeculaModels
import Testing

/// A batch of rows without a sliding window attends through `attendShared` (each block of cached keys and values
/// read once for every row) when the model has at least as many KV heads as its pool has threads, and through
/// `attend` (row by row) otherwise; which one runs on the pinned models depends on the host's core count. Both are
/// forced here on a synthetic model with 2 KV heads: a 1-thread pool takes the shared path, a 3-thread pool the
/// per-row one, and a single token always the per-row one. All must give the same logits bit for bit.
@Suite("Attention: the shared-prefix and per-row paths agree whatever the core count")
struct AttentionPathTests {
    static let spec: SyntheticModel = {
        var spec = SyntheticModel(vocabularySize: 97, seed: 11)
        spec.embeddingLength = 64
        spec.headCount = 4
        spec.kvHeadCount = 2
        spec.layerCount = 2
        return spec
    }()

    /// A 21-token prompt in one pass, then a 7-node tree (branching, positions after the prompt) in one pass.
    static func run(_ model: Transformer) throws -> (prompt: [[Float]], tree: [[Float]]) {
        let prompt = (0..<21).map { ($0 * 37 + 5) % 97 }
        let cache = model.makeCache(capacity: 64)
        let promptLogits = try model.forward(tokens: prompt, cache: cache, logitRows: Array(prompt.indices))
        let parents = [-1, 0, 0, 1, 1, 2, 4]
        func ancestors(_ node: Int) -> [Int] {
            var chain: [Int] = []
            var current = node
            while current >= 0 {
                chain.append(current)
                current = parents[current]
            }
            return chain.reversed()
        }
        let nodes = [3, 14, 15, 92, 65, 35, 89]
        let tree = try model.forward(
            tokens: nodes, positions: nodes.indices.map { prompt.count + ancestors($0).count - 1 },
            visibility: nodes.indices.map(ancestors), cache: cache, logitRows: Array(nodes.indices))
        return (promptLogits, tree)
    }

    @Test func sharedAndPerRowPathsAgree() throws {
        let shared = try Self.run(Self.spec.load(pool: WorkerPool(threadCount: 1)))
        let perRow = try Self.run(Self.spec.load(pool: WorkerPool(threadCount: 3)))
        #expect(shared.prompt == perRow.prompt, "the prompt pass differs between the two paths")
        #expect(shared.tree == perRow.tree, "the tree pass differs between the two paths")
        // One token at a time (always the per-row path) gives the prompt pass's rows too.
        let model = try Self.spec.load(pool: WorkerPool(threadCount: 1))
        let cache = model.makeCache(capacity: 64)
        for (index, token) in (0..<21).map({ ($0 * 37 + 5) % 97 }).enumerated() {
            #expect(try model.forward(tokens: [token], cache: cache)[0] == shared.prompt[index], "position \(index)")
        }
        // The logits depend on the context (equal constant rows would prove nothing).
        #expect(shared.prompt[20] != shared.prompt[19] && shared.tree[6] != shared.tree[5])
    }
}
