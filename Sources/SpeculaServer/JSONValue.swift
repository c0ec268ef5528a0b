import Foundation

/// A JSON document as parsed, so that a request's fields can be checked one by one and each error can name its
/// field (a typed decoder stops at the first mismatch with a message about Swift types).
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    /// An integer literal that fits 64 bits.
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses a request body; a body that is not JSON, or whose top level is not an object, is a 400.
    public static func parseObject(_ data: Data) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw APIError.invalidJSON(Self.describe(error))
        }
        guard case .object(let object) = value else {
            throw APIError.invalidRequest("the request body must be a JSON object", param: nil)
        }
        return object
    }

    static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            let underlying = context.underlyingError.map { error -> String in
                (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            }
            return [context.debugDescription, underlying].compactMap { $0 }.joined(separator: " ")
        }
        return "\(error)"
    }

    /// The name of this value's JSON type, for error messages.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Reads the fields of one JSON object, each checked for its type and range; errors name the field by its path
/// (`speculative.n_max`, `messages[2].content`). Fields not read are ignored, as OpenAI's API does.
struct FieldReader {
    let object: [String: JSONValue]
    let path: String

    init(_ object: [String: JSONValue], path: String = "") {
        self.object = object
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// The field's value, nil when absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    func typeError(_ key: String, _ expected: String, _ got: JSONValue) -> APIError {
        .invalidRequest("'\(name(key))' must be \(expected), not \(got.typeName)", param: name(key))
    }

    func rangeError(_ key: String, _ reason: String) -> APIError {
        .invalidRequest("'\(name(key))' \(reason)", param: name(key))
    }

    func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw typeError(key, "a string", value) }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else { throw typeError(key, "a boolean", value) }
        return flag
    }

    func double(_ key: String, in range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let value = value(key) else { return nil }
        let number: Double
        switch value {
        case .integer(let n): number = Double(n)
        case .number(let x): number = x
        default: throw typeError(key, "a number", value)
        }
        if let range, !range.contains(number) {
            throw rangeError(key, "must be in [\(range.lowerBound), \(range.upperBound)] (got \(number))")
        }
        return number
    }

    func integer(_ key: String, in range: ClosedRange<Int64>? = nil) throws -> Int64? {
        guard let value = value(key) else { return nil }
        let number: Int64
        switch value {
        case .integer(let n): number = n
        case .number(let x) where x.rounded() == x && abs(x) < 9e15: number = Int64(x)
        default: throw typeError(key, "an integer", value)
        }
        if let range, !range.contains(number) {
            throw rangeError(key, "must be in \(range.lowerBound)…\(range.upperBound) (got \(number))")
        }
        return number
    }

    func object(_ key: String) throws -> FieldReader? {
        guard let value = value(key) else { return nil }
        guard case .object(let fields) = value else { throw typeError(key, "an object", value) }
        return FieldReader(fields, path: name(key))
    }

    func array(_ key: String) throws -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let items) = value else { throw typeError(key, "an array", value) }
        return items
    }
}
