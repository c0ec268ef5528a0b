import SpeculaModels
import SpeculaVerify

/// Teacher-forced passes: a model's logits or processed distributions at given positions of a known text, in one
/// pass over a fresh cache (for measurements that compare a draft's distributions with the target's, and for
/// `specula logits`).
public enum Scoring {
    /// The logits after each of `rows` (indices into `tokens`).
    public static func logits(_ model: Transformer, tokens: [Int], rows: [Int]) throws -> [[Float]] {
        if tokens.isEmpty { throw EngineError.badInput(field: "tokens", reason: "the text has no tokens to score") }
        if let bad = rows.first(where: { $0 < 0 || $0 >= tokens.count }) {
            throw EngineError.badInput(field: "rows", reason: "row \(bad) outside 0..<\(tokens.count)")
        }
        let context = model.config.contextLength
        if tokens.count > context {
            throw EngineError.badInput(
                field: "tokens", reason: "\(tokens.count) tokens exceed the model's context of \(context)")
        }
        return try model.forward(tokens: tokens, cache: model.makeCache(capacity: tokens.count), logitRows: rows)
    }

    /// The distributions (`settings` applied, penalties seeing the text before each position) after
    /// `context + continuation[..<k]` for every k in `0..<continuation.count`: what a model proposes at each
    /// position of the continuation.
    public static func distributions(
        _ model: Transformer, context: [Int], continuation: [Int], settings: SamplingSettings
    ) throws -> [[Double]] {
        if context.isEmpty || continuation.isEmpty { return [] }
        let fed = context + continuation.dropLast()
        let rows = Array((context.count - 1)..<fed.count)
        let logits = try Self.logits(model, tokens: fed, rows: rows)
        return try logits.enumerated().map { position, row in
            try settings.process(logits: row.map(Double.init), history: context + continuation.prefix(position))
        }
    }
}
