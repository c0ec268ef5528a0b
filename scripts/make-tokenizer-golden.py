#!/usr/bin/env python3
"""Golden token ids from an independent reference: llama.cpp's own tokenizer, through llama-cpp-python.

For each pinned model (fetched by scripts/fetch-models), tokenizes a varied corpus (code, several languages,
emoji, whitespace runs, special-token text, invalid UTF-8) with `Llama(vocab_only=True).tokenize(bytes,
add_bos=True, special=…)` and writes Tests/SpeculaModelsTests/Fixtures/tokenizer-golden.json. Texts are stored as
hex bytes so that invalid UTF-8 survives. The Swift tests encode the same bytes and compare ids exactly.

Usage: pip install llama-cpp-python==0.3.36 && python3 scripts/make-tokenizer-golden.py
"""
import json
import os
import pathlib

from llama_cpp import Llama

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/SpeculaModelsTests/Fixtures/tokenizer-golden.json"
MODELS = os.environ.get("SPECULA_MODELS", str(pathlib.Path.home() / ".cache/specula/models"))
FILES = {
    "qwen2": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    "smollm2": "smollm2-135m-instruct-q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}

TEXTS = [
    "Hello world!",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { printf(\"%d\\n\", i * i); }\t// loop",
    "import numpy as np\n\n\nx = np.arange(1_000_000).reshape(1000, -1)  # 1e6 elements\r\n",
    "   leading spaces, trailing spaces   ",
    "tabs\t\tand\n\n\nnewlines\r\n\r\nmixed \n \n  ",
    "Don't you think it's 'quoted'? I'LL SAY IT'S FINE, we've, they'd, I'm",
    "Numbers: 3.14159, 2,718, 1234567890, ٣٤٥, ⅷ, ²³",
    "Übermäßige Größe, naïve café, façade — «guillemets» and “quotes”",
    "Привет, как дела? Это тест токенизатора.",
    "你好，世界！这是一个分词测试。東京は日本の首都です。",
    "안녕하세요, 세계! مرحبا بالعالم. שלום עולם. नमस्ते दुनिया",
    "Emoji: 🤖🚀👩‍👩‍👧‍👦 🇫🇷 ❤️ 1️⃣ and symbols ∑∫√∞ ≠ ≤ ≥ → ⇒",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "<tool_call>{\"name\": \"f\"}</tool_call> <start_of_turn>user\n<end_of_turn>",
    "a" * 300 + " " + "ab" * 150,
    " " * 40 + "x" + "\n" * 12 + "y",
    "https://example.com/path?q=1&r=two#frag  user@example.org",
    "CamelCaseIdentifier snake_case_identifier kebab-case-identifier SCREAMING_CASE",
    "",
    " ",
    "\n",
]
INVALID = [
    b"invalid \xff\xfe bytes",
    b"truncated \xe2\x82 sequence",
    b"lone continuation \x80\x80 and \xc3",
    b"surrogate \xed\xa0\x80 and overlong \xc0\xaf",
]


def main():
    result = {"generator": "llama-cpp-python (llama.cpp tokenizer), vocab_only", "models": {}}
    for name, file in FILES.items():
        llm = Llama(model_path=os.path.join(MODELS, file), vocab_only=True, verbose=False)
        cases = []
        for text in [t.encode() for t in TEXTS] + INVALID:
            for special in (False, True):
                ids = llm.tokenize(text, add_bos=True, special=special)
                cases.append({"bytes": text.hex(), "parseSpecial": special, "ids": ids})
        result["models"][name] = {"file": file, "cases": cases}
        print(f"{name}: {len(cases)} cases")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
