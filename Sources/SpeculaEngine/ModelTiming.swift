import SpeculaModels

/// Timed forward passes for the benchmarks (`bench model`, the estimates printed before a run), so that no front end
/// runs a model pass of its own.
public enum ModelTiming {
    /// Seconds of one pass over `tokens` after `context` placeholder rows (attention costs the same whatever the rows
    /// hold); every row's logits with `allLogits`, else the last's. The rows are trimmed away after.
    public static func pass(
        _ model: Transformer, cache: KVCache, context: Int, tokens: [Int], allLogits: Bool = true
    ) throws -> Double {
        if context < 0 || tokens.isEmpty || context + tokens.count > cache.capacity {
            throw EngineError.badInput(
                field: "context",
                reason: "\(context) rows and \(tokens.count) tokens do not fit a cache of \(cache.capacity)")
        }
        _ = cache.trim(to: 0)
        if context > 0 { try cache.fillWithPlaceholders(length: context) }
        let start = ContinuousClock.now
        _ = try model.forward(tokens: tokens, cache: cache, logitRows: allLogits ? Array(tokens.indices) : nil)
        let seconds = GenerationSession.seconds(since: start)
        _ = cache.trim(to: 0)
        return seconds
    }

    /// Seconds of one batched pass over `caches.count` sequences, each one token after `context` rows of its own
    /// cache (``Transformer/forward(batch:)``, as a server's batcher runs the decoding steps of several requests):
    /// every sequence's logits, each cache emptied before and after.
    public static func batchedStep(_ model: Transformer, caches: [KVCache], context: Int, seed: Int) throws -> Double {
        for cache in caches where context + 1 > cache.capacity {
            throw EngineError.badInput(
                field: "context", reason: "\(context) rows and 1 token do not fit a cache of \(cache.capacity)")
        }
        var segments: [ForwardSegment] = []
        for (index, cache) in caches.enumerated() {
            _ = cache.trim(to: 0)
            if context > 0 { try cache.fillWithPlaceholders(length: context) }
            segments.append(
                ForwardSegment(tokens: [(seed * 31 + index * 7919 + 13) % model.vocabularySize], cache: cache))
        }
        let start = ContinuousClock.now
        _ = try model.forward(batch: segments)
        let seconds = GenerationSession.seconds(since: start)
        for cache in caches { _ = cache.trim(to: 0) }
        return seconds
    }

    /// Median seconds of a one-token step after 64 tokens of context.
    public static func stepSeconds(_ model: Transformer, repeats: Int = 5) throws -> Double {
        let cache = model.makeCache(capacity: 80)
        var samples: [Double] = []
        for run in 0..<max(1, repeats) {
            samples.append(try pass(model, cache: cache, context: 64, tokens: [run + 1]))
        }
        return samples.sorted()[samples.count / 2]
    }
}

extension AdaptivePolicy {
    /// The priors of generations that run beside others (``targetStepPrior``, ``draftTokenPrior``): each model's
    /// one-row step measured alone, after a warm-up round (each model's first passes after a load run cold, about a
    /// third slower). A few hundred milliseconds; a server with several slots measures them once at start.
    public static func measuredAlone(target: Transformer, draft: Transformer?) -> AdaptivePolicy {
        var policy = AdaptivePolicy(hasDraftModel: draft != nil)
        func step(_ model: Transformer) -> Double? {
            _ = try? ModelTiming.stepSeconds(model, repeats: 3)
            return try? ModelTiming.stepSeconds(model)
        }
        policy.targetStepPrior = step(target)
        if let draft { policy.draftTokenPrior = step(draft) }
        return policy
    }
}
