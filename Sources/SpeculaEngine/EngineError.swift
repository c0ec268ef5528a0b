import SpeculaModels
import SpeculaVerify

/// What went wrong in a generation, split the way a caller answers it: bad input (the request, the flags, the prompt
/// or the model pair; a server's 400) or a fault (a bug or the machine; a server's 500).
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A setting or an input that cannot be used, named by `field`.
    case badInput(field: String, reason: String)
    /// The prompt and the tokens asked for do not fit the context.
    case contextLengthExceeded(promptTokens: Int, maxTokens: Int, context: Int)
    /// Anything else: an inconsistency that is not the caller's fault.
    case fault(String)

    public var isBadInput: Bool {
        if case .fault = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case .badInput(let field, let reason): return "\(field): \(reason)"
        case .contextLengthExceeded(let prompt, let maxTokens, let context):
            return
                "the prompt (\(prompt) tokens) and max tokens \(maxTokens) exceed the context of \(context) positions"
        case .fault(let message): return message
        }
    }

    /// An error of a lower layer, classified: invalid settings, vectors and model pairs are bad input, a context
    /// overflow past the checks made before decoding is a fault.
    public static func classify(_ error: any Error) -> EngineError {
        switch error {
        case let error as EngineError: return error
        case let error as VerifyError: return .badInput(field: "settings", reason: error.description)
        case let error as TokenizerError: return .badInput(field: "draft", reason: error.description)
        case let error as ModelError:
            if case .contextOverflow = error { return .fault(error.description) }
            return .badInput(field: "model", reason: error.description)
        default: return .fault("\(error)")
        }
    }
}
