/// One chat message as templates see it: a role, text content, and optionally tool calls.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    /// Tool calls of an assistant message: each `(name, arguments as a JSON-like value)`.
    public var toolCalls: [(name: String, arguments: JinjaValue)]

    public init(role: String, content: String, toolCalls: [(name: String, arguments: JinjaValue)] = []) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
    }

    public static func == (a: ChatMessage, b: ChatMessage) -> Bool {
        a.role == b.role && a.content == b.content && a.toolCalls.count == b.toolCalls.count
            && zip(a.toolCalls, b.toolCalls).allSatisfy { $0.name == $1.name && $0.arguments == $1.arguments }
    }

    var value: JinjaValue {
        var pairs: [(String, JinjaValue)] = [("role", .string(role)), ("content", .string(content))]
        if !toolCalls.isEmpty {
            pairs.append(
                (
                    "tool_calls",
                    .array(
                        toolCalls.map {
                            .object([
                                ("type", .string("function")),
                                ("function", .object([("name", .string($0.name)), ("arguments", $0.arguments)])),
                            ])
                        })
                ))
        }
        return .object(pairs)
    }
}

/// A model's chat template (`tokenizer.chat_template`), rendered by Specula's Jinja subset exactly as Python's
/// jinja2 renders it under Hugging Face's settings (`trim_blocks`, `lstrip_blocks`, `raise_exception`,
/// `tojson`).
public struct ChatTemplate: Sendable {
    public let source: String
    let template: JinjaTemplate

    public init(source: String) throws {
        self.source = source
        template = try JinjaTemplate(source)
    }

    /// The model's template; for a `gemma3` file without one (the base model), Gemma 3's published instruction
    /// template. Nil when the file has none and no built-in applies.
    public static func forModel(_ file: GGUFFile) throws -> ChatTemplate? {
        if let source = file["tokenizer.chat_template"]?.string { return try ChatTemplate(source: source) }
        if file["general.architecture"]?.string == "gemma3" { return try ChatTemplate(source: gemma3) }
        return nil
    }

    /// Renders a conversation.
    /// - Parameters:
    ///   - addGenerationPrompt: end with the header of an assistant turn, for the model to continue.
    ///   - tools: tool definitions (JSON-like values), passed as `tools`.
    public func render(
        messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = "",
        tools: [JinjaValue]? = nil
    ) throws -> String {
        var variables: [String: JinjaValue] = [
            "messages": .array(messages.map(\.value)),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        if let tools { variables["tools"] = .array(tools) }
        return try template.render(variables)
    }

    /// Gemma 3's instruction-tuned chat template (as published with the Gemma 3 tokenizer configuration).
    public static let gemma3 = """
        {{ bos_token }}
        {%- if messages[0]['role'] == 'system' -%}
            {%- if messages[0]['content'] is string -%}
                {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
            {%- else -%}
                {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
            {%- endif -%}
            {%- set loop_messages = messages[1:] -%}
        {%- else -%}
            {%- set first_user_prefix = "" -%}
            {%- set loop_messages = messages -%}
        {%- endif -%}
        {%- for message in loop_messages -%}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
                {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
            {%- endif -%}
            {%- if (message['role'] == 'assistant') -%}
                {%- set role = "model" -%}
            {%- else -%}
                {%- set role = message['role'] -%}
            {%- endif -%}
            {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
            {%- if message['content'] is string -%}
                {{ message['content'] | trim }}
            {%- elif message['content'] is iterable -%}
                {%- for item in message['content'] -%}
                    {%- if item['type'] == 'image' -%}
                        {{ '<start_of_image>' }}
                    {%- elif item['type'] == 'text' -%}
                        {{ item['text'] | trim }}
                    {%- endif -%}
                {%- endfor -%}
            {%- else -%}
                {{ raise_exception("Invalid content type") }}
            {%- endif -%}
            {{ '<end_of_turn>\\n' }}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{'<start_of_turn>model\\n'}}
        {%- endif -%}

        """
}
