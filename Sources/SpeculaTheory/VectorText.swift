/// The text form of a probability or logit vector that `specula bound` reads: a JSON array of numbers. Parsed by
/// hand so that NaN and Infinity (not JSON, but what a careless writer produces) come back as values for the sampling
/// layer to refuse with a message that names the entry, rather than as a parse error.
public enum VectorText {
    /// Why a text is not a vector.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Parses `text`; `name` and `source` only word the error ("target in the target argument: entry 2 ...").
    public static func parse(_ text: String, name: String, source: String) throws -> [Double] {
        let body = trimmed(Substring(text))
        guard body.hasPrefix("["), body.hasSuffix("]"), body.count >= 2 else {
            throw ParseError(description: "\(name) in \(source) is not a JSON array of numbers")
        }
        let inner = trimmed(body.dropFirst().dropLast())
        if inner.isEmpty { return [] }
        var values: [Double] = []
        for (index, item) in inner.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let token = trimmed(item)
            switch token.lowercased() {
            case "nan": values.append(.nan)
            case "infinity", "inf": values.append(.infinity)
            case "-infinity", "-inf": values.append(-.infinity)
            default:
                guard let value = Double(token) else {
                    throw ParseError(description: "\(name) in \(source): entry \(index) ('\(token)') is not a number")
                }
                values.append(value)
            }
        }
        return values
    }

    /// `text` without leading and trailing white space (as JSON and a shell leave it).
    static func trimmed(_ text: Substring) -> Substring {
        var text = text
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
