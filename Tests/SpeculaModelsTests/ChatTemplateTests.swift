import Foundation
import SpeculaModels
import Testing

/// Chat templates rendered by Specula's Jinja subset against Python's jinja2 under Hugging Face's settings
/// (scripts/make-chat-template-fixtures.py): the pinned models' templates, Gemma 3's built-in one, and templates
/// that exercise each supported construct.
@Suite("Chat templates against jinja2")
struct ChatTemplateTests {
    struct Fixture: Decodable {
        var templates: [String: String]
        var conversations: [String: [Message]]
        var tools: [JSONAny]
        var cases: [Case]
    }
    struct Message: Decodable {
        var role: String
        var content: String
        var tool_calls: [ToolCall]?
    }
    struct ToolCall: Decodable {
        var function: Function
    }
    struct Function: Decodable {
        var name: String
        var arguments: JSONAny
    }
    struct Case: Decodable {
        var template: String
        var conversation: String
        var addGenerationPrompt: Bool
        var tools: Bool
        var output: String?
        var error: String?
    }

    /// Any JSON value, decoded into a JinjaValue (object keys in file order are not kept by JSONDecoder, so the
    /// fixtures use objects whose key order is irrelevant or single-keyed where `tojson` shows them).
    struct JSONAny: Decodable {
        var value: JinjaValue
        init(from decoder: Decoder) throws {
            if let container = try? decoder.container(keyedBy: Key.self) {
                var pairs: [(String, JinjaValue)] = []
                for key in container.allKeys {
                    pairs.append((key.stringValue, try container.decode(JSONAny.self, forKey: key).value))
                }
                value = .object(pairs)
                return
            }
            if var array = try? decoder.unkeyedContainer() {
                var values: [JinjaValue] = []
                while !array.isAtEnd { values.append(try array.decode(JSONAny.self).value) }
                value = .array(values)
                return
            }
            let single = try decoder.singleValueContainer()
            if single.decodeNil() {
                value = .none
            } else if let bool = try? single.decode(Bool.self) {
                value = .bool(bool)
            } else if let integer = try? single.decode(Int.self) {
                value = .integer(integer)
            } else if let number = try? single.decode(Double.self) {
                value = .number(number)
            } else {
                value = .string(try single.decode(String.self))
            }
        }
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    static let fixture: Fixture? = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/chat-templates.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(Fixture.self, from: data)
    }()

    @Test func everyCaseRendersLikeJinja2() throws {
        let fixture = try #require(Self.fixture)
        #expect(fixture.cases.count == 90)
        var templates: [String: ChatTemplate] = [:]
        for (name, source) in fixture.templates { templates[name] = try ChatTemplate(source: source) }
        for c in fixture.cases {
            let template = try #require(templates[c.template])
            let messages = try #require(fixture.conversations[c.conversation]).map { message in
                ChatMessage(
                    role: message.role, content: message.content,
                    toolCalls: (message.tool_calls ?? []).map {
                        ($0.function.name, Self.ordered($0.function.arguments.value))
                    })
            }
            let label = "\(c.template) / \(c.conversation) / generation \(c.addGenerationPrompt) / tools \(c.tools)"
            do {
                let output = try template.render(
                    messages: messages, addGenerationPrompt: c.addGenerationPrompt, bosToken: "<bos>",
                    eosToken: "<eos>",
                    tools: c.tools ? fixture.tools.map { Self.ordered($0.value) } : nil)
                #expect(c.error == nil, "\(label): jinja2 raised '\(c.error ?? "")' but Specula rendered")
                if let expected = c.output, output != expected {
                    Issue.record(
                        "\(label):\n--- ours\n\(output.debugDescription)\n--- jinja2\n\(expected.debugDescription)")
                }
            } catch let error as TemplateError {
                #expect(c.error != nil, "\(label): \(error)")
                if let expected = c.error { #expect(error.message.contains(expected), "\(error)") }
            }
        }
    }

    /// JSONDecoder loses key order; the fixture's objects are written in this canonical order.
    static func ordered(_ value: JinjaValue) -> JinjaValue {
        let order = ["type", "function", "name", "description", "parameters", "properties", "city", "days"]
        switch value {
        case .object(let pairs):
            return .object(
                pairs.sorted { (order.firstIndex(of: $0.0) ?? 99) < (order.firstIndex(of: $1.0) ?? 99) }
                    .map { ($0.0, ordered($0.1)) })
        case .array(let values): return .array(values.map(ordered))
        default: return value
        }
    }

    @Test func builtInGemmaTemplateIsTheFixtureOne() throws {
        let fixture = try #require(Self.fixture)
        #expect(ChatTemplate.gemma3 == fixture.templates["gemma3-builtin"])
    }

    /// The built-in Gemma 3 template against Gemma's documented turn format, written out by hand (not rendered by
    /// any template engine): `<start_of_turn>ROLE\n…<end_of_turn>\n` with the assistant's role named `model`, a
    /// system message prepended to the first user turn followed by a blank line, and `<start_of_turn>model\n` as the
    /// generation prompt.
    @Test func builtInGemmaTemplateGivesGemmasTurnFormat() throws {
        let template = try ChatTemplate(source: ChatTemplate.gemma3)
        let conversation = [
            ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi!"),
            ChatMessage(role: "assistant", content: "Hello."), ChatMessage(role: "user", content: " Sum 2 and 2. "),
        ]
        #expect(
            try template.render(messages: conversation, addGenerationPrompt: true, bosToken: "<bos>")
                == "<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                + "<start_of_turn>user\nSum 2 and 2.<end_of_turn>\n<start_of_turn>model\n")
        #expect(
            try template.render(
                messages: [ChatMessage(role: "user", content: "Hi!")], addGenerationPrompt: false, bosToken: "<bos>")
                == "<bos><start_of_turn>user\nHi!<end_of_turn>\n")
        // Roles that do not alternate are refused, as the published template does.
        #expect(throws: TemplateError.self) {
            try template.render(
                messages: [ChatMessage(role: "user", content: "a"), ChatMessage(role: "user", content: "b")],
                addGenerationPrompt: true)
        }
    }

    @Test(arguments: [
        ("{% macro m() %}{% endmacro %}", "unsupported tag 'macro'"),
        ("{{ x | wordcount }}", "unsupported filter 'wordcount'"),
        ("{% if x %}", "missing {% elif / else / endif %}"),
        ("{{ 'a' ", "unclosed tag"),
        ("{{ {'a': 1} }}", "dict literals"),
        ("{% set ns.x = 1 %}", "attribute assignment"),
        ("{{ x.items() }}", "method call"),
    ])
    func unsupportedConstructsAreClearErrors(source: String, message: String) {
        do {
            _ = try ChatTemplate(source: source).render(messages: [], addGenerationPrompt: false)
            Issue.record("expected an error for \(source)")
        } catch let error as TemplateError {
            #expect(error.description.contains(message), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

/// The prompt `--chat` builds on each pinned model (`LoadedModel.promptTokens`), against each family's turn format
/// written out by hand: ChatML for Qwen2.5 and SmolLM2, Gemma's turns (with the built-in template, the base model's
/// file having none) for Gemma 3. The markers must be single special tokens, and a model that wants a BOS gets one.
@Suite("Chat prompts on the pinned models", .enabled(if: PinnedModels.allPresent || PinnedModels.required))
struct ChatPromptTests {
    @Test(arguments: [
        (
            "target",
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
        ),
        (
            "draft",
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
        ),
        (
            "smollm2",
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
        ),
        ("gemma3", "<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\n"),
    ])
    func chatPromptFollowsTheModelsFormat(model name: String, expected: String) throws {
        let path = try #require(PinnedModels.path(name))
        let file = try GGUFFile(path: path)
        let tokenizer = try Tokenizer(gguf: file)
        let messages = [
            ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi there"),
        ]
        let tokens = try LoadedModel.promptTokens(
            messages: messages, template: try ChatTemplate.forModel(file), tokenizer: tokenizer, path: path)
        #expect(tokenizer.decode(tokens, renderSpecial: true) == expected)
        let markers = ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "<bos>"]
        for marker in markers where expected.contains(marker) {
            let id = try #require(tokenizer.tokens.firstIndex(of: marker), "\(name) has no token \(marker)")
            #expect(
                tokens.filter { $0 == id }.count == expected.components(separatedBy: marker).count - 1,
                "\(name): \(marker) is not one special token at each place")
        }
        if let bos = tokenizer.bos, name == "gemma3" {
            #expect(tokens.first == bos && tokens.dropFirst().allSatisfy { $0 != bos }, "Gemma 3: exactly one BOS")
        }
    }
}
