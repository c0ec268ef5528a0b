/// Evaluates parsed template nodes against variables (scopes: the globals, then one per loop iteration).
struct JinjaContext {
    var scopes: [[String: JinjaValue]]
    var line = 1

    func error(_ message: String) -> TemplateError { TemplateError(message: message, line: line) }

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        return .undefined
    }

    mutating func render(_ nodes: [JinjaNode], into output: inout String) throws {
        for node in nodes {
            switch node {
            case .text(let text):
                output += text
            case .output(let expression, let line):
                self.line = line
                output += try evaluate(expression).rendered()
            case .conditional(let branches, let otherwise, let line):
                self.line = line
                var taken = false
                for (condition, body) in branches where try evaluate(condition).truthy {
                    try render(body, into: &output)
                    taken = true
                    break
                }
                if !taken { try render(otherwise, into: &output) }
            case .loop(let targets, let iterable, let body, let otherwise, let line):
                self.line = line
                let items: [JinjaValue]
                switch try evaluate(iterable) {
                case .array(let values): items = values
                case .object(let pairs): items = pairs.map { .string($0.0) }
                case .string(let text): items = text.map { .string(String($0)) }
                case .undefined, .none: items = []
                case let other: throw error("cannot loop over a \(other.typeName)")
                }
                if items.isEmpty {
                    try render(otherwise, into: &output)
                    continue
                }
                for (index, item) in items.enumerated() {
                    var scope: [String: JinjaValue] = [
                        "loop": .object([
                            ("index", .integer(index + 1)), ("index0", .integer(index)),
                            ("first", .bool(index == 0)), ("last", .bool(index == items.count - 1)),
                            ("length", .integer(items.count)), ("revindex", .integer(items.count - index)),
                            ("revindex0", .integer(items.count - index - 1)),
                        ])
                    ]
                    if targets.count == 1 {
                        scope[targets[0]] = item
                    } else {
                        guard case .array(let parts) = item, parts.count == targets.count else {
                            throw error("cannot unpack a \(item.typeName) into \(targets.count) loop variables")
                        }
                        for (target, part) in zip(targets, parts) { scope[target] = part }
                    }
                    scopes.append(scope)
                    defer { scopes.removeLast() }
                    try render(body, into: &output)
                }
            case .assign(let name, let expression, let line):
                self.line = line
                let value = try evaluate(expression)
                scopes[scopes.count - 1][name] = value
            }
        }
    }

    func evaluate(_ expression: JinjaExpression) throws -> JinjaValue {
        switch expression {
        case .literal(let value): return value
        case .name(let name): return lookup(name)
        case .list(let items): return .array(try items.map(evaluate))
        case .attribute(let base, let name):
            let value = try evaluate(base)
            if case .object = value { return value[name] }
            return .undefined
        case .subscriptValue(let base, let key):
            let container = try evaluate(base)
            let index = try evaluate(key)
            switch (container, index) {
            case (.object, .string(let name)): return container[name]
            case (.array(let values), .integer(let i)):
                let k = i < 0 ? values.count + i : i
                return k >= 0 && k < values.count ? values[k] : .undefined
            case (.string(let text), .integer(let i)):
                let characters = Array(text)
                let k = i < 0 ? characters.count + i : i
                return k >= 0 && k < characters.count ? .string(String(characters[k])) : .undefined
            default: return .undefined
            }
        case .slice(let base, let start, let end):
            let value = try evaluate(base)
            func bound(_ e: JinjaExpression?, _ count: Int, _ fallback: Int) throws -> Int {
                guard let e else { return fallback }
                guard case .integer(let i) = try evaluate(e) else { throw error("slice bounds must be integers") }
                return Swift.min(Swift.max(i < 0 ? count + i : i, 0), count)
            }
            switch value {
            case .array(let values):
                let lower = try bound(start, values.count, 0)
                let upper = try bound(end, values.count, values.count)
                return .array(lower < upper ? Array(values[lower..<upper]) : [])
            case .string(let text):
                let characters = Array(text)
                let lower = try bound(start, characters.count, 0)
                let upper = try bound(end, characters.count, characters.count)
                return .string(lower < upper ? String(characters[lower..<upper]) : "")
            default: throw error("cannot slice a \(value.typeName)")
            }
        case .call(let name, let arguments):
            let values = try arguments.map(evaluate)
            switch name {
            case "raise_exception":
                throw error("template raised: " + ((try values.first?.rendered()) ?? ""))
            case "range":
                let numbers = values.compactMap { value -> Int? in
                    if case .integer(let i) = value { return i } else { return nil }
                }
                guard numbers.count == values.count, (1...2).contains(numbers.count) else {
                    throw error("range() takes 1 or 2 integers")
                }
                let (lower, upper) = numbers.count == 1 ? (0, numbers[0]) : (numbers[0], numbers[1])
                return .array(lower < upper ? (lower..<upper).map { .integer($0) } : [])
            default:
                throw error("unsupported function '\(name)'")
            }
        case .filter(let base, let name, let arguments):
            return try filter(try evaluate(base), name, try arguments.map(evaluate))
        case .test(let base, let name, let negated):
            let result = try test(try evaluate(base), name)
            return .bool(negated ? !result : result)
        case .not(let inner): return .bool(!(try evaluate(inner).truthy))
        case .negate(let inner):
            switch try evaluate(inner) {
            case .integer(let v):
                let (negated, overflow) = Int(0).subtractingReportingOverflow(v)
                if overflow { throw error("integer overflow in -\(v)") }
                return .integer(negated)
            case .number(let v): return .number(-v)
            case let other: throw error("cannot negate a \(other.typeName)")
            }
        case .binary(let op, let leftExpression, let rightExpression):
            if op == "and" {
                let left = try evaluate(leftExpression)
                return left.truthy ? try evaluate(rightExpression) : left
            }
            if op == "or" {
                let left = try evaluate(leftExpression)
                return left.truthy ? left : try evaluate(rightExpression)
            }
            return try binary(op, try evaluate(leftExpression), try evaluate(rightExpression))
        case .conditional(let value, let condition, let otherwise):
            if try evaluate(condition).truthy { return try evaluate(value) }
            return try otherwise.map(evaluate) ?? .undefined
        }
    }

    func binary(_ op: String, _ left: JinjaValue, _ right: JinjaValue) throws -> JinjaValue {
        switch op {
        case "==": return .bool(left == right)
        case "!=": return .bool(left != right)
        case "~": return .string(try left.rendered() + right.rendered())
        case "in":
            switch right {
            case .array(let values): return .bool(values.contains(left))
            case .object(let pairs):
                if case .string(let key) = left { return .bool(pairs.contains { $0.0 == key }) }
                return .bool(false)
            case .string(let text):
                guard case .string(let needle) = left else { throw error("'in <string>' needs a string on the left") }
                return .bool(needle.isEmpty || Substring(text).firstRange(of: needle) != nil)
            default: throw error("cannot test membership in a \(right.typeName)")
            }
        default: break
        }
        if case .undefined = left { throw error("'\(op)' on an undefined value") }
        if case .undefined = right { throw error("'\(op)' on an undefined value") }
        switch (left, right) {
        case (.string(let a), .string(let b)):
            switch op {
            case "+": return .string(a + b)
            case "<": return .bool(a < b)
            case ">": return .bool(a > b)
            case "<=": return .bool(a <= b)
            case ">=": return .bool(a >= b)
            default: break
            }
        case (.array(let a), .array(let b)) where op == "+":
            return .array(a + b)
        case (.integer(let a), .integer(let b)):
            switch op {
            // Checked: a template's arithmetic that leaves 64 bits is an error, not a crash.
            case "+", "-", "*":
                let (value, overflow) =
                    op == "+"
                    ? a.addingReportingOverflow(b)
                    : op == "-" ? a.subtractingReportingOverflow(b) : a.multipliedReportingOverflow(by: b)
                if overflow { throw error("integer overflow in \(a) \(op) \(b)") }
                return .integer(value)
            case "//":
                guard b != 0 else { throw error("division by zero") }
                let (quotient, overflow) = a.dividedReportingOverflow(by: b)
                if overflow { throw error("integer overflow in \(a) // \(b)") }
                // Python floors; Swift truncates toward zero.
                return .integer(quotient - (a % b != 0 && (a < 0) != (b < 0) ? 1 : 0))
            case "%":
                guard b != 0 else { throw error("modulo by zero") }
                let (r, overflow) = a.remainderReportingOverflow(dividingBy: b)
                if overflow { return .integer(0) }  // Int.min % -1
                return .integer(r != 0 && (r < 0) != (b < 0) ? r + b : r)  // Python's sign rule
            case "/":
                guard b != 0 else { throw error("division by zero") }
                return .number(Double(a) / Double(b))
            case "<": return .bool(a < b)
            case ">": return .bool(a > b)
            case "<=": return .bool(a <= b)
            case ">=": return .bool(a >= b)
            default: break
            }
        default:
            if let a = left.numeric, let b = right.numeric {
                switch op {
                case "+": return .number(a + b)
                case "-": return .number(a - b)
                case "*": return .number(a * b)
                case "/":
                    guard b != 0 else { throw error("division by zero") }
                    return .number(a / b)
                case "<": return .bool(a < b)
                case ">": return .bool(a > b)
                case "<=": return .bool(a <= b)
                case ">=": return .bool(a >= b)
                default: break
                }
            }
        }
        throw error("unsupported operation: \(left.typeName) \(op) \(right.typeName)")
    }

    func filter(_ value: JinjaValue, _ name: String, _ arguments: [JinjaValue]) throws -> JinjaValue {
        switch name {
        case "trim":
            return .string(String(try value.rendered().trimmingWhitespace()))
        case "tojson":
            return .string(value.json())
        case "length", "count":
            switch value {
            case .string(let text): return .integer(text.count)
            case .array(let values): return .integer(values.count)
            case .object(let pairs): return .integer(pairs.count)
            default: throw error("length of a \(value.typeName)")
            }
        case "upper": return .string(try value.rendered().uppercased())
        case "lower": return .string(try value.rendered().lowercased())
        case "string": return .string(try value.rendered())
        case "first", "last":
            guard case .array(let values) = value else { throw error("\(name) of a \(value.typeName)") }
            return (name == "first" ? values.first : values.last) ?? .undefined
        case "default", "d":
            if case .undefined = value { return arguments.first ?? .string("") }
            return value
        case "join":
            guard case .array(let values) = value else { throw error("join of a \(value.typeName)") }
            let separator = try arguments.first?.rendered() ?? ""
            return .string(try values.map { try $0.rendered() }.joined(separator: separator))
        default:
            throw error("unsupported filter '\(name)'")
        }
    }

    func test(_ value: JinjaValue, _ name: String) throws -> Bool {
        switch name {
        case "defined": if case .undefined = value { return false } else { return true }
        case "undefined": if case .undefined = value { return true } else { return false }
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "number":
            switch value {
            case .integer, .number: return true
            default: return false
            }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": return value == .bool(true)
        case "false": return value == .bool(false)
        case "mapping": if case .object = value { return true } else { return false }
        case "iterable", "sequence":
            switch value {
            case .string, .array: return true
            case .object: return name == "iterable"
            default: return false
            }
        default: throw error("unsupported test '\(name)'")
        }
    }
}

extension JinjaValue {
    var numeric: Double? {
        switch self {
        case .integer(let v): return Double(v)
        case .number(let v): return v
        case .bool(let v): return v ? 1 : 0
        default: return nil
        }
    }
}

extension String {
    /// Python's `str.strip()`: whitespace off both ends.
    func trimmingWhitespace() -> Substring {
        var text = Substring(self)
        while let first = text.unicodeScalars.first, first.properties.isWhitespace { text = text.dropFirst() }
        while let last = text.unicodeScalars.last, last.properties.isWhitespace { text = text.dropLast() }
        return text
    }
}
