/// Bad input to the verification layer: a vector, a draft tuple, a setting or a tree that does not fit.
///
/// Every case names what was wrong and where, so that a caller (the engine, the CLI) can report it as is.
/// Programmer errors (an index the library computed itself) are preconditions instead.
public enum VerifyError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyVocabulary(what: String)
    case lengthMismatch(what: String, expected: Int, actual: Int)
    case notFinite(what: String, index: Int, value: Double)
    case negative(what: String, index: Int, value: Double)
    case zeroMass(what: String)
    case notNormalized(what: String, total: Double)
    case unsupportedDraftCount(verifier: String, count: Int, supported: String)
    case tokenOutOfRange(what: String, token: Int, vocabularySize: Int)
    case draftsNotFromLaw(verifier: String, reason: String)
    case invalidSetting(name: String, value: String, reason: String)
    case invalidTree(reason: String)
    case tooLarge(what: String, size: Int, limit: Int)

    public var description: String {
        switch self {
        case .emptyVocabulary(let what):
            return "\(what): the vocabulary is empty"
        case .lengthMismatch(let what, let expected, let actual):
            return "\(what): expected \(expected) entries, got \(actual)"
        case .notFinite(let what, let index, let value):
            return "\(what): entry \(index) is \(value), not a finite number"
        case .negative(let what, let index, let value):
            return "\(what): entry \(index) is negative (\(value))"
        case .zeroMass(let what):
            return "\(what): total probability mass is zero"
        case .notNormalized(let what, let total):
            return "\(what): probabilities sum to \(total), not 1"
        case .unsupportedDraftCount(let verifier, let count, let supported):
            return "\(verifier): \(count) drafts at a node is not supported (supported: \(supported))"
        case .tokenOutOfRange(let what, let token, let vocabularySize):
            return "\(what): token \(token) is outside the vocabulary 0..<\(vocabularySize)"
        case .draftsNotFromLaw(let verifier, let reason):
            return "\(verifier): the drafts cannot come from its draft law: \(reason)"
        case .invalidSetting(let name, let value, let reason):
            return "\(name) = \(value): \(reason)"
        case .invalidTree(let reason):
            return "invalid draft tree: \(reason)"
        case .tooLarge(let what, let size, let limit):
            return "\(what): size \(size) exceeds the limit \(limit)"
        }
    }
}
