import SpeculaModels

/// Caches kept between the turns of a conversation (or between requests that share a beginning, such as a system
/// prompt): the target's and the draft model's, each with the tokens whose rows it holds. A
/// ``GenerationSession`` given one takes the caches when it starts — keeping the rows of the longest prefix its
/// prompt shares with them, so only the new tokens are fed — and gives them back when its generation ends. A session
/// that fails gives nothing back (the next one starts from empty caches).
///
/// Rows reused this way are the rows a fresh prompt pass would compute: the forward pass is batch-invariant (a row's
/// arithmetic does not depend on the other rows of its pass), so the output is the same token for token.
///
/// One session at a time: a server with one generation slot keeps one of these per slot.
public final class PrefixCache: @unchecked Sendable {
    public private(set) var target: KVCache?
    public private(set) var targetTokens: [Int] = []
    public private(set) var draft: KVCache?
    public private(set) var draftTokens: [Int] = []

    public init() {}

    /// Takes the target's cache if it has `capacity` rows (else drops it).
    func takeTarget(capacity: Int) -> (KVCache, [Int])? {
        defer {
            target = nil
            targetTokens = []
        }
        guard let target, target.capacity == capacity, target.length == targetTokens.count else { return nil }
        return (target, targetTokens)
    }

    /// Takes the draft's cache if it has `capacity` rows (else leaves nothing).
    func takeDraft(capacity: Int) -> (KVCache, [Int])? {
        defer {
            draft = nil
            draftTokens = []
        }
        guard let draft, draft.capacity == capacity, draft.length == draftTokens.count else { return nil }
        return (draft, draftTokens)
    }

    func give(target cache: KVCache, holding tokens: [Int]) {
        guard cache.length == tokens.count else { return }
        target = cache
        targetTokens = tokens
    }

    func give(draft cache: KVCache, holding tokens: [Int]) {
        guard cache.length == tokens.count else { return }
        draft = cache
        draftTokens = tokens
    }

    /// Forgets both caches.
    public func clear() {
        target = nil
        draft = nil
        targetTokens = []
        draftTokens = []
    }
}
