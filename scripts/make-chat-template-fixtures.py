#!/usr/bin/env python3
"""Chat-template fixtures rendered by Python's jinja2 as Hugging Face renders chat templates.

Templates: the `tokenizer.chat_template` of the pinned models (read from the GGUF files fetched by
scripts/fetch-models), Gemma 3's template as built into Specula (read from Sources/SpeculaModels/ChatTemplate.swift),
and small templates that exercise the supported Jinja constructs. Each is rendered for several conversations with
jinja2's ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), `raise_exception` and a `tojson` filter
as transformers defines them; outputs go to Tests/SpeculaModelsTests/Fixtures/chat-templates.json.

Usage: pip install jinja2==3.1.6 gguf==0.19.0 && python3 scripts/make-chat-template-fixtures.py
"""
import json
import os
import pathlib

from gguf import GGUFReader
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/SpeculaModelsTests/Fixtures/chat-templates.json"
MODELS = pathlib.Path(os.environ.get("SPECULA_MODELS", pathlib.Path.home() / ".cache/specula/models"))


def environment():
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def gguf_template(file):
    reader = GGUFReader(MODELS / file)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


def builtin_gemma3():
    source = (ROOT / "Sources/SpeculaModels/ChatTemplate.swift").read_text()
    start = source.index('public static let gemma3 = """\n') + len('public static let gemma3 = """\n')
    end = source.index('        """', start) - 1  # a Swift multi-line literal omits the line break before its end
    lines = [line[8:] if line.startswith("        ") else line.strip() for line in source[start:end].split("\n")]
    return "\n".join(lines).replace("\\\\", "\\")


CONSTRUCTS = {
    "whitespace": "A  {% if true %}\n  yes\n  {% endif %}\nB {%- if x %} x {% endif -%} C\n   {# note #}\n{{- ' D ' -}}  E\n"
                  "{% for m in messages %}  [{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}]\n{% endfor %}",
    "expressions": "{{ messages | length }} {{ (messages[0].content ~ '!') | upper }} {{ messages[1:] | length }} "
                   "{{ messages[-1]['role'] }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 1 + 2 * 3 }} {{ 'a' in 'cat' }} "
                   "{{ 'user' in ['user', 'x'] }} {{ missing is defined }} {{ missing is not defined }} "
                   "{{ none is none }} {{ messages is iterable }} {{ 3 is number }} {{ 'yes' if false else 'no' }} "
                   "{{ [1, 2, 3] | join('-') }} {{ missing | default('dflt') }} {{ '  pad  ' | trim }}|"
                   "{{ messages[0] | tojson }} {{ [1, 2.5, true, none, 'q\"\\n\\t'] | tojson }} {{ 'x' if false }}|"
                   "{{ messages[0].missing }}|{{ 10 / 4 }} {{ 2 * 1.5 }} {{ 'ab' < 'b' }} {{ not messages }}",
    "scoping": "{% set x = 'outer' %}{% for m in messages %}{% set x = m.role %}{{ x }} {% endfor %}{{ x }}"
               "{% for a, b in [[1, 2], [3, 4]] %} {{ a + b }}{% endfor %}{% for m in [] %}no{% else %} empty{% endfor %}",
}

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Write a function that reverses a string."}],
    "system-user": [{"role": "system", "content": "You are a terse assistant."},
                    {"role": "user", "content": "What is 2 + 2?"}],
    "multi-turn": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello. How can I help?"},
                   {"role": "user", "content": "  Tell me a joke.\n  "}],
    "tool-calls": [{"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "content": "",
                    "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                      "arguments": {"city": "Paris", "days": 2}}}]},
                   {"role": "tool", "content": "{\"temp\": 21}"}, {"role": "tool", "content": "sunny"},
                   {"role": "assistant", "content": "It is 21 °C and sunny."}],
    "unicode": [{"role": "user", "content": "Traduis « bonjour » 🤖 — 你好\n\n\tmerci"}],
}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]


def main():
    env = environment()
    templates = {
        "qwen2.5-coder-1.5b": gguf_template("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
        "qwen2.5-coder-0.5b": gguf_template("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
        "smollm2": gguf_template("smollm2-135m-instruct-q4_1.gguf"),
        "gemma3-builtin": builtin_gemma3(),
        **CONSTRUCTS,
    }
    cases = []
    for name, source in templates.items():
        template = env.from_string(source)
        for conversation, messages in CONVERSATIONS.items():
            for generation in (False, True):
                for tools in (None, TOOLS) if name.startswith("qwen") else (None,):
                    variables = {"messages": messages, "add_generation_prompt": generation, "bos_token": "<bos>",
                                 "eos_token": "<eos>"}
                    if tools is not None:
                        variables["tools"] = tools
                    try:
                        output, error = template.render(**variables), None
                    except TemplateError as exception:
                        output, error = None, str(exception)
                    cases.append({"template": name, "conversation": conversation, "addGenerationPrompt": generation,
                                  "tools": tools is not None, "output": output, "error": error})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"generator": "jinja2 (Hugging Face chat-template settings)", "templates": templates,
                               "conversations": CONVERSATIONS, "tools": TOOLS, "cases": cases}, ensure_ascii=False,
                              indent=1))
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
