/// A value in the Jinja subset: what chat templates see (messages, tools, flags) and compute.
public indirect enum JinjaValue: Sendable, Equatable {
    case undefined
    case none
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JinjaValue])
    /// Keys in insertion order (as Python dicts keep them, which `tojson` shows).
    case object([(String, JinjaValue)])

    public static func == (a: JinjaValue, b: JinjaValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.integer(let x), .number(let y)), (.number(let y), .integer(let x)): return Double(x) == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Python truthiness: empty strings, lists and dicts, zero, none and undefined are false.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let v): return v
        case .integer(let v): return v != 0
        case .number(let v): return v != 0
        case .string(let v): return !v.isEmpty
        case .array(let v): return !v.isEmpty
        case .object(let v): return !v.isEmpty
        }
    }

    subscript(key: String) -> JinjaValue {
        if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 ?? .undefined }
        return .undefined
    }

    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "none"
        case .bool: return "bool"
        case .integer: return "int"
        case .number: return "float"
        case .string: return "string"
        case .array: return "list"
        case .object: return "dict"
        }
    }

    /// How `{{ value }}` prints, as Python's `str()` would (undefined prints as nothing).
    func rendered() throws -> String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let v): return v ? "True" : "False"
        case .integer(let v): return String(v)
        case .number(let v): return Self.pythonFloat(v)
        case .string(let v): return v
        case .array, .object: return pythonRepr()
        }
    }

    func pythonRepr() -> String {
        switch self {
        case .string(let v):
            return "'"
                + v.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'").replacingAll("\n", with: "\\n")
                + "'"
        case .array(let values): return "[" + values.map { $0.pythonRepr() }.joined(separator: ", ") + "]"
        case .object(let pairs):
            return "{" + pairs.map { "'\($0.0)': " + $0.1.pythonRepr() }.joined(separator: ", ") + "}"
        default: return (try? rendered()) ?? ""
        }
    }

    static func pythonFloat(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        // Python prints integral floats with one decimal: 3.0
        if v == v.rounded() && abs(v) < 1e16 { return String(Int(v)) + ".0" }
        return "\(v)"
    }

    /// JSON as Python's `json.dumps(value, ensure_ascii=False)` writes it (the `tojson` filter of chat templates).
    func json() -> String {
        switch self {
        case .undefined, .none: return "null"
        case .bool(let v): return v ? "true" : "false"
        case .integer(let v): return String(v)
        case .number(let v):
            return Self.pythonFloat(v).replacingAll("nan", with: "NaN").replacingAll("inf", with: "Infinity")
        case .string(let v):
            var out = "\""
            for scalar in v.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                default:
                    if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        case .array(let values): return "[" + values.map { $0.json() }.joined(separator: ", ") + "]"
        case .object(let pairs):
            return "{" + pairs.map { JinjaValue.string($0.0).json() + ": " + $0.1.json() }.joined(separator: ", ") + "}"
        }
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        if target.isEmpty { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension Substring {
    func firstRange(of target: String) -> Range<Index>? {
        guard let first = target.first else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index] == first && self[index...].hasPrefix(target) {
                return index..<self.index(index, offsetBy: target.count)
            }
            index = self.index(after: index)
        }
        return nil
    }
}
