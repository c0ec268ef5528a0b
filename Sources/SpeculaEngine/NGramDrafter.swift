/// Prompt-lookup drafting: proposals copied from the text itself, no model.
public enum NGramDrafter {
    /// The tokens that followed the most recent earlier occurrence of the last `n` tokens of `history`, for `n`
    /// from `longest` down to `shortest` (the first length with an occurrence wins), at most `count` of them; empty
    /// when no such suffix occurs earlier.
    /// - Complexity: O(`history.count` · `longest`).
    public static func propose(history: [Int], longest: Int, shortest: Int = 1, count: Int) -> [Int] {
        match(history: history, longest: longest, shortest: shortest, count: count).proposal
    }

    /// ``propose(history:longest:shortest:count:)`` with the length of the n-gram that matched (0: none).
    public static func match(history: [Int], longest: Int, shortest: Int = 1, count: Int) -> (
        proposal: [Int], length: Int
    ) {
        guard count > 0, history.count >= 2 else { return ([], 0) }
        for n in stride(from: min(longest, history.count - 1), through: max(shortest, 1), by: -1) {
            let suffixStart = history.count - n
            // Earlier occurrences start at most one before the suffix (they may overlap it).
            var start = suffixStart - 1
            while start >= 0 {
                if endsWith(history, occurrenceAt: start, length: n) {
                    let from = start + n
                    return (Array(history[from..<min(from + count, history.count)]), n)
                }
                start -= 1
            }
        }
        return ([], 0)
    }

    /// Whether the `length` tokens of `history` from `start` equal its last `length` tokens.
    static func endsWith(_ history: [Int], occurrenceAt start: Int, length: Int) -> Bool {
        let suffixStart = history.count - length
        for k in 0..<length where history[start + k] != history[suffixStart + k] { return false }
        return true
    }
}
