import Foundation
import SpeculaModels
import Testing

/// The sliding window's edge, exactly. Gemma 3's real window (512) is too long for a window one key too wide to move
/// any logit measurably, so the model is loaded with a window of 4 on every layer (`Transformer.init(file:configure:)`).
/// A token then reaches the last position only through chains of at most `layers · (window − 1)` positions: the
/// token at exactly that distance must change the last logits, the one a position further must leave them
/// bit-identical. A window that admits one key too many (`>` for `≥` in the mask) reaches
/// `layers · window` and fails the second check; one that admits one too few fails the first. Checked for the
/// prompt in one pass (keys in the batch) and for tokens fed one at a time (keys in the cache).
@Suite("Sliding window: the edge of the mask", .enabled(if: Models.present || Models.required))
struct SlidingWindowTests {
    static let window = 4

    static func model() throws -> Transformer {
        let file = try GGUFFile(path: Models.directory + "/" + (Models.files["gemma3"] ?? ""))
        return try Transformer(file: file) { config in
            config.slidingWindow = window
            config.slidingLayers = Set(0..<config.layerCount)
        }
    }

    /// The last position's logits, the whole sequence in one pass or the last `stepped` tokens one at a time.
    static func lastLogits(_ model: Transformer, _ tokens: [Int], stepped: Int) throws -> [Float] {
        let cache = model.makeCache(capacity: tokens.count + 1)
        var logits = try model.forward(tokens: Array(tokens.dropLast(stepped)), cache: cache)[0]
        for token in tokens.suffix(stepped) { logits = try model.forward(tokens: [token], cache: cache)[0] }
        return logits
    }

    @Test(arguments: [0, 12])
    func aTokenReachesTheLastPositionExactlyWithinTheReceptiveField(stepped: Int) throws {
        let model = try Self.model()
        let reach = model.config.layerCount * (Self.window - 1)
        let tokens = (0..<(reach + 20)).map { 1000 + ($0 * 7919) % 5000 }
        let last = tokens.count - 1
        let base = try Self.lastLogits(model, tokens, stepped: stepped)
        func changed(at position: Int) throws -> [Float] {
            var other = tokens
            other[position] = 7
            return try Self.lastLogits(model, other, stepped: stepped)
        }
        #expect(try changed(at: last - reach) != base, "the token at the edge of the receptive field must matter")
        #expect(try changed(at: last - reach - 1) == base, "a token beyond the receptive field must not")
        #expect(try changed(at: 0) == base)
    }

    @Test func oneTokenAtATimeEqualsOnePass() throws {
        let model = try Self.model()
        let tokens = (0..<60).map { 1000 + ($0 * 7919) % 5000 }
        #expect(try Self.lastLogits(model, tokens, stepped: 0) == Self.lastLogits(model, tokens, stepped: 15))
    }
}
