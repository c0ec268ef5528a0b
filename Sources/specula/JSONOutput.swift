import Foundation
import SpeculaTheory

/// A JSON value that keeps its keys in the order they were added (documented output formats list keys in a fixed
/// order), rendered compactly or with indentation.
indirect enum JSONValue {
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])

    func rendered(indent: Int? = nil, level: Int = 0) -> String {
        let newline = indent == nil ? "" : "\n"
        let pad = { (depth: Int) in indent.map { String(repeating: " ", count: $0 * depth) } ?? "" }
        let separator = indent == nil ? ":" : ": "
        switch self {
        case .number(let value):
            if !value.isFinite { return "null" }
            if value == value.rounded() && abs(value) < 1e15 { return String(format: "%.1f", value) }
            return "\(value)"
        case .integer(let value): return "\(value)"
        case .string(let value): return JSONValue.quote(value)
        case .bool(let value): return value ? "true" : "false"
        case .array(let values):
            if values.isEmpty { return "[]" }
            let items = values.map { pad(level + 1) + $0.rendered(indent: indent, level: level + 1) }
            return "[" + newline + items.joined(separator: "," + newline) + newline + pad(level) + "]"
        case .object(let pairs):
            if pairs.isEmpty { return "{}" }
            let items = pairs.map {
                pad(level + 1) + JSONValue.quote($0.0) + separator + $0.1.rendered(indent: indent, level: level + 1)
            }
            return "{" + newline + items.joined(separator: "," + newline) + newline + pad(level) + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

/// Reads a vector argument: an inline JSON array (`[0.5, 0.5]`), `-` for standard input, or a file path.
func readVector(_ argument: String, name: String) throws -> [Double] {
    let text: String
    let trimmed = argument.trimmingCharacters(in: .whitespacesAndNewlines)
    let source: String
    if trimmed.hasPrefix("[") {
        text = trimmed
        source = "the \(name) argument"
    } else if trimmed == "-" {
        text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        source = "standard input"
    } else {
        guard let data = FileManager.default.contents(atPath: trimmed) else {
            throw CommandError("cannot read the \(name) file '\(trimmed)'")
        }
        text = String(decoding: data, as: UTF8.self)
        source = "'\(trimmed)'"
    }
    do { return try VectorText.parse(text, name: name, source: source) } catch let error as VectorText.ParseError {
        throw CommandError(error.description)
    }
}
