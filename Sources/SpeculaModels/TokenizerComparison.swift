extension Tokenizer {
    /// Checks that `other` (a draft model's tokenizer) encodes exactly as this one (the target's): same model and
    /// pre-tokenizer, same token texts and types, same special ids and flags. Throws
    /// ``TokenizerError/mismatch(reason:)`` naming the first difference. Speculative decoding compares token ids
    /// across the two models, so anything less is refused.
    public func requireSameVocabulary(as other: Tokenizer) throws {
        if model != other.model {
            throw TokenizerError.mismatch(reason: "tokenizer models differ (\(model.name) vs \(other.model.name))")
        }
        for id in 0..<min(tokens.count, other.tokens.count) {
            if tokens[id] != other.tokens[id] {
                throw TokenizerError.mismatch(
                    reason:
                        "token \(id) is \(tokens[id].debugDescription) in the target, \(other.tokens[id].debugDescription) in the draft"
                )
            }
            if types[id] != other.types[id] {
                throw TokenizerError.mismatch(
                    reason: "token \(id) (\(tokens[id].debugDescription)) has type \(types[id]) vs \(other.types[id])")
            }
        }
        if tokens.count != other.tokens.count {
            throw TokenizerError.mismatch(
                reason:
                    "vocabulary sizes differ (\(tokens.count) vs \(other.tokens.count)); first extra token is \(max(tokens.count, other.tokens.count) == tokens.count ? tokens[other.tokens.count].debugDescription : other.tokens[tokens.count].debugDescription) at id \(min(tokens.count, other.tokens.count))"
            )
        }
        if bpe?.merges.count != other.bpe?.merges.count {
            throw TokenizerError.mismatch(
                reason: "merge tables differ in size (\(bpe?.merges.count ?? 0) vs \(other.bpe?.merges.count ?? 0))")
        }
        if let mine = bpe, let theirs = other.bpe {
            for (key, merge) in mine.merges where theirs.merges[key]?.rank != merge.rank {
                let left = tokens[Int(key >> 32)]
                let right = tokens[Int(key & 0xFFFF_FFFF)]
                throw TokenizerError.mismatch(
                    reason: "merge '\(left) \(right)' has rank \(merge.rank) in the target only")
            }
        }
        if let mine = spm, let theirs = other.spm, mine.scores != theirs.scores {
            let id = mine.scores.indices.first { mine.scores[$0] != theirs.scores[$0] } ?? 0
            throw TokenizerError.mismatch(reason: "token \(id) has score \(mine.scores[id]) vs \(theirs.scores[id])")
        }
        for (name, a, b) in [("BOS", bos, other.bos), ("EOS", eos, other.eos)] where a != b {
            throw TokenizerError.mismatch(
                reason: "\(name) ids differ (\(a.map(String.init) ?? "none") vs \(b.map(String.init) ?? "none"))")
        }
        if addBOS != other.addBOS || addEOS != other.addEOS || addSpacePrefix != other.addSpacePrefix {
            throw TokenizerError.mismatch(reason: "add-BOS/EOS/space-prefix flags differ")
        }
    }
}
