/// A Jinja subset, enough for the chat templates of the pinned models and their kin, rendered as Hugging Face
/// renders chat templates (jinja2 with `trim_blocks` and `lstrip_blocks`).
///
/// Supported: text; `{{ … }}`; `{% if %}`/`elif`/`else`; `{% for x in … %}` (also `for a, b in …`, with `loop.index`,
/// `index0`, `first`, `last`, `length`, and `{% else %}`); `{% set x = … %}`; comments; whitespace control (`-`).
/// Expressions: string, number, boolean and none literals, lists, names, `a.b`, `a['b']`, `a[i]`, slices `a[i:j]`,
/// `+ - * / // %`, `~`, comparisons, `in`/`not in`, `and`/`or`/`not`, `x if c else y`, filters (`trim`, `tojson`,
/// `length`, `upper`, `lower`, `string`, `first`, `last`, `default`, `join`), tests (`defined`, `undefined`,
/// `none`, `string`, `number`, `iterable`, `mapping`, `sequence`, `boolean`, `true`, `false`), and calls of
/// `raise_exception(message)`. Anything else is a ``TemplateError`` naming the construct and the line.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var description: String { "chat template, line \(line): \(message)" }
}

struct JinjaTemplate: Sendable {
    let nodes: [JinjaNode]

    init(_ source: String) throws {
        var parser = JinjaParser(tokens: try JinjaLexer.lex(source))
        nodes = try parser.parseBlock(until: [])
    }

    func render(_ variables: [String: JinjaValue]) throws -> String {
        var context = JinjaContext(scopes: [variables])
        var output = ""
        try context.render(nodes, into: &output)
        return output
    }
}

// MARK: lexing

enum JinjaToken: Equatable {
    case text(String)
    case expressionStart(line: Int)
    case expressionEnd
    case blockStart(line: Int)
    case blockEnd
    case name(String)
    case string(String)
    case integer(Int)
    case number(Double)
    case symbol(String)
}

enum JinjaLexer {
    static func lex(_ source: String) throws -> [JinjaToken] {
        let s = Array(source.unicodeScalars)
        var tokens: [JinjaToken] = []
        var i = 0
        var line = 1
        var text: [Unicode.Scalar] = []
        // Whitespace control carried from the previous tag.
        var stripNextLeading = false
        var trimNextNewline = false

        var sawTag = false
        // Whitespace control as jinja2 applies it with trim_blocks and lstrip_blocks: a "-" strips all whitespace
        // on its side; a block or comment tag eats the one newline after it; blanks between a line start and a
        // block tag go ("line start": after a newline in the text, or right after a tag whose match ended one).
        func flushText(nextTagStrips: Bool, nextTagIsBlock: Bool, nextTagPlus: Bool) {
            var body = text
            var lineStarting = !sawTag
            if stripNextLeading {
                var removedNewline = false
                while let first = body.first, first.properties.isWhitespace {
                    removedNewline = first == "\n"
                    body.removeFirst()
                }
                lineStarting = removedNewline
            } else if trimNextNewline, let first = body.first, first == "\n" {
                body.removeFirst()
                lineStarting = true
            }
            if nextTagStrips {
                while let last = body.last, last.properties.isWhitespace { body.removeLast() }
            } else if nextTagIsBlock && !nextTagPlus {
                let lineStart = (body.lastIndex(of: "\n") ?? -1) + 1
                if (lineStart > 0 || lineStarting) && lineStart < body.count
                    && body[lineStart...].allSatisfy({ $0.properties.isWhitespace })
                {
                    body.removeLast(body.count - lineStart)
                }
            }
            if !body.isEmpty { tokens.append(.text(String(String.UnicodeScalarView(body)))) }
            text.removeAll()
            stripNextLeading = false
            trimNextNewline = false
            sawTag = true
        }

        while i < s.count {
            if s[i] == "{" && i + 1 < s.count && (s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#") {
                let kind = s[i + 1]
                let tagLine = line
                var j = i + 2
                let strips = j < s.count && s[j] == "-"
                let plus = j < s.count && s[j] == "+"
                if strips || plus { j += 1 }
                flushText(nextTagStrips: strips, nextTagIsBlock: kind != "{", nextTagPlus: plus)
                if kind == "#" {
                    // Comment: skip to "#}".
                    while j + 1 < s.count && !(s[j] == "#" && s[j + 1] == "}") {
                        if s[j] == "\n" { line += 1 }
                        j += 1
                    }
                    if j + 1 >= s.count { throw TemplateError(message: "unclosed comment", line: tagLine) }
                    stripNextLeading = j > 0 && s[j - 1] == "-"
                    trimNextNewline = !stripNextLeading
                    i = j + 2
                    continue
                }
                tokens.append(kind == "{" ? .expressionStart(line: tagLine) : .blockStart(line: tagLine))
                let closing: Unicode.Scalar = kind == "{" ? "}" : "%"
                // Tokens until the closing "}}" or "%}".
                while true {
                    while j < s.count && s[j].properties.isWhitespace {
                        if s[j] == "\n" { line += 1 }
                        j += 1
                    }
                    if j >= s.count { throw TemplateError(message: "unclosed tag", line: tagLine) }
                    if s[j] == "-" && j + 2 < s.count && s[j + 1] == closing && s[j + 2] == "}" {
                        stripNextLeading = true
                        j += 3
                        break
                    }
                    if s[j] == closing && j + 1 < s.count && s[j + 1] == "}" {
                        trimNextNewline = kind == "%"
                        j += 2
                        break
                    }
                    let c = s[j]
                    if c == "'" || c == "\"" {
                        var value = String.UnicodeScalarView()
                        j += 1
                        while j < s.count && s[j] != c {
                            if s[j] == "\\" && j + 1 < s.count {
                                j += 1
                                switch s[j] {
                                case "n": value.append("\n")
                                case "t": value.append("\t")
                                case "r": value.append("\r")
                                default: value.append(s[j])
                                }
                            } else {
                                if s[j] == "\n" { line += 1 }
                                value.append(s[j])
                            }
                            j += 1
                        }
                        if j >= s.count { throw TemplateError(message: "unclosed string literal", line: tagLine) }
                        j += 1
                        tokens.append(.string(String(value)))
                    } else if c.properties.numericType != nil && c.isASCII {
                        var k = j
                        while k < s.count && s[k].isASCII && (s[k].properties.numericType != nil || s[k] == "_") {
                            k += 1
                        }
                        if k + 1 < s.count && s[k] == "." && s[k + 1].properties.numericType != nil {
                            k += 1
                            while k < s.count && s[k].isASCII && s[k].properties.numericType != nil { k += 1 }
                            tokens.append(.number(Double(String(String.UnicodeScalarView(s[j..<k]))) ?? 0))
                        } else {
                            let digits = String(String.UnicodeScalarView(s[j..<k])).filter { $0 != "_" }
                            tokens.append(.integer(Int(digits) ?? 0))
                        }
                        j = k
                    } else if c.properties.isAlphabetic || c == "_" {
                        var k = j
                        while k < s.count
                            && (s[k].properties.isAlphabetic || s[k] == "_"
                                || (s[k].isASCII && s[k].properties.numericType != nil))
                        { k += 1 }
                        tokens.append(.name(String(String.UnicodeScalarView(s[j..<k]))))
                        j = k
                    } else {
                        let two = j + 1 < s.count ? String(String.UnicodeScalarView([s[j], s[j + 1]])) : ""
                        if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
                            tokens.append(.symbol(two))
                            j += 2
                        } else if "()[]{}.,:|+-*/%<>=~".unicodeScalars.contains(c) {
                            tokens.append(.symbol(String(c)))
                            j += 1
                        } else {
                            throw TemplateError(message: "unexpected character '\(c)'", line: line)
                        }
                    }
                }
                tokens.append(kind == "{" ? .expressionEnd : .blockEnd)
                i = j
                continue
            }
            if s[i] == "\n" { line += 1 }
            text.append(s[i])
            i += 1
        }
        flushText(nextTagStrips: false, nextTagIsBlock: false, nextTagPlus: false)
        return tokens
    }
}
