indirect enum JinjaExpression: Sendable {
    case literal(JinjaValue)
    case name(String)
    case list([JinjaExpression])
    case attribute(JinjaExpression, String)
    case subscriptValue(JinjaExpression, JinjaExpression)
    case slice(JinjaExpression, JinjaExpression?, JinjaExpression?)
    case call(String, [JinjaExpression])
    case filter(JinjaExpression, String, [JinjaExpression])
    case test(JinjaExpression, String, negated: Bool)
    case not(JinjaExpression)
    case negate(JinjaExpression)
    case binary(String, JinjaExpression, JinjaExpression)
    case conditional(JinjaExpression, condition: JinjaExpression, otherwise: JinjaExpression?)
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpression, line: Int)
    case conditional([(JinjaExpression, [JinjaNode])], otherwise: [JinjaNode], line: Int)
    case loop(targets: [String], iterable: JinjaExpression, body: [JinjaNode], otherwise: [JinjaNode], line: Int)
    case assign(String, JinjaExpression, line: Int)
}

struct JinjaParser {
    let tokens: [JinjaToken]
    var position = 0
    var line = 1
    /// Nesting of blocks and expressions being parsed; past ``maxDepth`` the template is refused (the parser and
    /// the evaluator recurse once per level).
    var depth = 0
    static let maxDepth = 128

    init(tokens: [JinjaToken]) { self.tokens = tokens }

    mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw error("the template nests deeper than \(Self.maxDepth) levels") }
    }

    var current: JinjaToken? { position < tokens.count ? tokens[position] : nil }

    func error(_ message: String) -> TemplateError { TemplateError(message: message, line: line) }

    mutating func advance() -> JinjaToken? {
        defer { position += 1 }
        return current
    }

    mutating func expectSymbol(_ symbol: String) throws {
        guard case .symbol(symbol) = current else { throw error("expected '\(symbol)'") }
        position += 1
    }

    mutating func expectBlockEnd() throws {
        guard case .blockEnd = current else { throw error("expected '%}'") }
        position += 1
    }

    mutating func keyword(_ word: String) -> Bool {
        if case .name(word) = current {
            position += 1
            return true
        }
        return false
    }

    /// Parses nodes until a block tag whose keyword is in `terminators` (left unconsumed: the caller reads it).
    mutating func parseBlock(until terminators: Set<String>) throws -> [JinjaNode] {
        try enter()
        defer { depth -= 1 }
        var nodes: [JinjaNode] = []
        while let token = current {
            switch token {
            case .text(let text):
                position += 1
                nodes.append(.text(text))
            case .expressionStart(let tagLine):
                line = tagLine
                position += 1
                let expression = try parseExpression()
                guard case .expressionEnd = current else { throw error("expected '}}'") }
                position += 1
                nodes.append(.output(expression, line: tagLine))
            case .blockStart(let tagLine):
                line = tagLine
                guard case .name(let word) = tokens[safe: position + 1] else { throw error("expected a tag name") }
                if terminators.contains(word) { return nodes }
                position += 2
                nodes.append(try parseTag(word))
            default:
                throw error("unexpected token")
            }
        }
        if !terminators.isEmpty {
            throw error("missing {% \(terminators.sorted().joined(separator: " / ")) %}")
        }
        return nodes
    }

    mutating func parseTag(_ word: String) throws -> JinjaNode {
        let tagLine = line
        switch word {
        case "if":
            var branches: [(JinjaExpression, [JinjaNode])] = []
            var condition = try parseExpression()
            try expectBlockEnd()
            var otherwise: [JinjaNode] = []
            while true {
                let body = try parseBlock(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                position += 1  // blockStart
                guard case .name(let next) = advance() else { throw error("expected elif, else or endif") }
                if next == "elif" {
                    condition = try parseExpression()
                    try expectBlockEnd()
                    continue
                }
                try expectBlockEnd()
                if next == "else" {
                    otherwise = try parseBlock(until: ["endif"])
                    position += 2
                    try expectBlockEnd()
                }
                break
            }
            return .conditional(branches, otherwise: otherwise, line: tagLine)
        case "for":
            var targets: [String] = []
            while true {
                guard case .name(let target) = advance() else { throw error("expected a loop variable") }
                targets.append(target)
                guard case .symbol(",") = current else { break }
                position += 1
            }
            guard keyword("in") else { throw error("expected 'in'") }
            let iterable = try parseTernaryFree()
            if case .name("if") = current { throw error("unsupported: loop filters ('for … if …')") }
            if case .name("recursive") = current { throw error("unsupported: recursive loops") }
            try expectBlockEnd()
            let body = try parseBlock(until: ["else", "endfor"])
            position += 1
            guard case .name(let next) = advance() else { throw error("expected else or endfor") }
            try expectBlockEnd()
            var otherwise: [JinjaNode] = []
            if next == "else" {
                otherwise = try parseBlock(until: ["endfor"])
                position += 2
                try expectBlockEnd()
            }
            return .loop(targets: targets, iterable: iterable, body: body, otherwise: otherwise, line: tagLine)
        case "set":
            guard case .name(let name) = advance() else { throw error("expected a variable name after 'set'") }
            if case .symbol(".") = current { throw error("unsupported: attribute assignment (namespace objects)") }
            guard case .symbol("=") = current else {
                throw error("unsupported: block assignment ('{% set \(name) %}…')")
            }
            position += 1
            let value = try parseExpression()
            try expectBlockEnd()
            return .assign(name, value, line: tagLine)
        default:
            throw error("unsupported tag '\(word)'")
        }
    }

    // MARK: expressions, lowest precedence first

    mutating func parseExpression() throws -> JinjaExpression {
        try enter()
        defer { depth -= 1 }
        let value = try parseOr()
        if keyword("if") {
            let condition = try parseOr()
            var otherwise: JinjaExpression? = nil
            if keyword("else") { otherwise = try parseExpression() }
            return .conditional(value, condition: condition, otherwise: otherwise)
        }
        return value
    }

    /// An expression without a trailing conditional (a loop's iterable).
    mutating func parseTernaryFree() throws -> JinjaExpression { try parseOr() }

    mutating func parseOr() throws -> JinjaExpression {
        // Each link of the chain nests the tree one level deeper.
        let saved = depth
        defer { depth = saved }
        var left = try parseAnd()
        while keyword("or") {
            try enter()
            left = .binary("or", left, try parseAnd())
        }
        return left
    }

    mutating func parseAnd() throws -> JinjaExpression {
        // Each link of the chain nests the tree one level deeper.
        let saved = depth
        defer { depth = saved }
        var left = try parseNot()
        while keyword("and") {
            try enter()
            left = .binary("and", left, try parseNot())
        }
        return left
    }

    mutating func parseNot() throws -> JinjaExpression {
        if keyword("not") {
            try enter()
            defer { depth -= 1 }
            return .not(try parseNot())
        }
        return try parseComparison()
    }

    mutating func parseComparison() throws -> JinjaExpression {
        // Each link of the chain nests the tree one level deeper.
        let saved = depth
        defer { depth = saved }
        var left = try parseAdditive()
        while true {
            if case .symbol(let op) = current, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                position += 1
                try enter()
                left = .binary(op, left, try parseAdditive())
            } else if keyword("in") {
                try enter()
                left = .binary("in", left, try parseAdditive())
            } else if case .name("not") = current, case .name("in") = tokens[safe: position + 1] {
                position += 2
                try enter()
                left = .not(.binary("in", left, try parseAdditive()))
            } else {
                return left
            }
        }
    }

    mutating func parseAdditive() throws -> JinjaExpression {
        // Each link of the chain nests the tree one level deeper.
        let saved = depth
        defer { depth = saved }
        var left = try parseConcat()
        while case .symbol(let op) = current, op == "+" || op == "-" {
            position += 1
            try enter()
            left = .binary(op, left, try parseConcat())
        }
        return left
    }

    mutating func parseConcat() throws -> JinjaExpression {
        // Each link of the chain nests the tree one level deeper.
        let saved = depth
        defer { depth = saved }
        var left = try parseMultiplicative()
        while case .symbol("~") = current {
            position += 1
            try enter()
            left = .binary("~", left, try parseMultiplicative())
        }
        return left
    }

    mutating func parseMultiplicative() throws -> JinjaExpression {
        // Each link of the chain nests the tree one level deeper.
        let saved = depth
        defer { depth = saved }
        var left = try parseUnary()
        while case .symbol(let op) = current, ["*", "/", "//", "%"].contains(op) {
            position += 1
            try enter()
            left = .binary(op, left, try parseUnary())
        }
        return left
    }

    mutating func parseUnary() throws -> JinjaExpression {
        if case .symbol("-") = current {
            position += 1
            try enter()
            defer { depth -= 1 }
            return .negate(try parseUnary())
        }
        return try parseFilters(try parsePostfix(try parsePrimary()))
    }

    mutating func parseFilters(_ base: JinjaExpression) throws -> JinjaExpression {
        // Each link of the chain nests the tree one level deeper.
        let saved = depth
        defer { depth = saved }
        var value = base
        while true {
            if case .symbol("|") = current {
                position += 1
                guard case .name(let name) = advance() else { throw error("expected a filter name") }
                var arguments: [JinjaExpression] = []
                if case .symbol("(") = current { arguments = try parseArguments() }
                try enter()
                value = .filter(value, name, arguments)
            } else if keyword("is") {
                let negated = keyword("not")
                guard case .name(let name) = advance() else { throw error("expected a test name") }
                try enter()
                value = .test(value, name, negated: negated)
            } else {
                return value
            }
        }
    }

    mutating func parseArguments() throws -> [JinjaExpression] {
        try expectSymbol("(")
        var arguments: [JinjaExpression] = []
        if case .symbol(")") = current {
            position += 1
            return arguments
        }
        while true {
            if case .name = current, case .symbol("=") = tokens[safe: position + 1] {
                throw error("unsupported: keyword arguments")
            }
            arguments.append(try parseExpression())
            if case .symbol(",") = current {
                position += 1
                continue
            }
            try expectSymbol(")")
            return arguments
        }
    }

    mutating func parsePostfix(_ base: JinjaExpression) throws -> JinjaExpression {
        // Each link of the chain nests the tree one level deeper.
        let saved = depth
        defer { depth = saved }
        var value = base
        while true {
            if case .symbol(".") = current {
                position += 1
                guard case .name(let name) = advance() else { throw error("expected an attribute name after '.'") }
                if case .symbol("(") = current { throw error("unsupported: method call '.\(name)(…)'") }
                try enter()
                value = .attribute(value, name)
            } else if case .symbol("[") = current {
                position += 1
                var start: JinjaExpression? = nil
                if case .symbol(":") = current {} else { start = try parseExpression() }
                if case .symbol(":") = current {
                    position += 1
                    var end: JinjaExpression? = nil
                    if case .symbol("]") = current {} else { end = try parseExpression() }
                    if case .symbol(":") = current { throw error("unsupported: slice steps") }
                    try expectSymbol("]")
                    try enter()
                    value = .slice(value, start, end)
                } else {
                    try expectSymbol("]")
                    guard let start else { throw error("empty subscript") }
                    try enter()
                    value = .subscriptValue(value, start)
                }
            } else {
                return value
            }
        }
    }

    mutating func parsePrimary() throws -> JinjaExpression {
        guard let token = advance() else { throw error("unexpected end of template") }
        switch token {
        case .string(var text):
            // Adjacent string literals concatenate.
            while case .string(let more) = current {
                text += more
                position += 1
            }
            return .literal(.string(text))
        case .integer(let value): return .literal(.integer(value))
        case .number(let value): return .literal(.number(value))
        case .name(let name):
            switch name {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default:
                if case .symbol("(") = current { return .call(name, try parseArguments()) }
                return .name(name)
            }
        case .symbol("("):
            let inner = try parseExpression()
            try expectSymbol(")")
            return inner
        case .symbol("["):
            var items: [JinjaExpression] = []
            if case .symbol("]") = current {
                position += 1
                return .list(items)
            }
            while true {
                items.append(try parseExpression())
                if case .symbol(",") = current {
                    position += 1
                    if case .symbol("]") = current { break }
                    continue
                }
                break
            }
            try expectSymbol("]")
            return .list(items)
        case .symbol("{"):
            throw error("unsupported: dict literals")
        default:
            throw error("unexpected token in expression")
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { index >= 0 && index < count ? self[index] : nil }
}
