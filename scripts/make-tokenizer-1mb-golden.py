#!/usr/bin/env python3
"""Golden token ids for one megabyte of mixed text, from llama.cpp's own tokenizer, stored as block hashes.

The text is rebuilt by the Swift test from the same recipe (nothing large is committed): the Spec-Bench turns of
data/spec-bench/question.jsonl in file order and the `extras` below, each piece chosen by splitmix64 from `seed`
(`turn = next() % len(turns)`, then `extra = next() % len(extras)`), a piece being `turn + "\\n" + extra`, appended
while the total stays within `bytes` bytes (the first piece that does not fit ends the text). The fixture records
the text's length and FNV-1a-64 hash, so a drift in the recipe fails as such, not as a tokenizer difference.

For each pinned model and both settings of special-token parsing, the ids come from llama.cpp's `llama-tokenize`
(`--ids`, the model's own BOS rule, special tokens parsed — its default — or `--no-parse-special`), built from the vendored llama.cpp of
the llama-cpp-python sdist (`cmake --build build --target llama-tokenize`). The fixture keeps the id count and the
FNV-1a-64 hash of each block of 4,096 ids (little-endian int32), so a failure names the first block that differs.

Usage: python3 scripts/make-tokenizer-1mb-golden.py --llama-tokenize PATH [--models DIR]
Writes Tests/SpeculaModelsTests/Fixtures/tokenizer-1mb-golden.json.
"""
import argparse
import json
import os
import pathlib
import struct
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/SpeculaModelsTests/Fixtures/tokenizer-1mb-golden.json"
SOURCE = "data/spec-bench/question.jsonl"
FILES = {
    "qwen2": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    "smollm2": "smollm2-135m-instruct-q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}
SEED = 1
BYTES = 1_000_000
BLOCK = 4096
EXTRAS = [
    "def f(x):\n    return [i * i for i in range(x)]  # squares\n",
    "Привет, мир! 你好，世界！ 🤖🚀 naïve café\n",
    "\t\tif (a != b) { return -1; }\n",
    "    \n\n\n   trailing   \r\n\r\n",
    "x = 1_000_000 + 3.14159e-10 - 0x1F; y = '12345678901234567890'\n",
    "안녕하세요 مرحبا שלום नमस्ते สวัสดี Ελληνικά ქართული\n",
    "👩‍👩‍👧‍👦 🇫🇷 ❤️ 1️⃣ ∑∫√∞ ≠ ≤ ≥ → ⇒ «» “” — …\n",
    "<html><body class=\"a b\">&nbsp;</body></html> <|im_start|> <start_of_turn> <eos>\n",
    "I'M SURE it's FINE, we've they'd you'll; CamelCase snake_case kebab-case\n",
]
MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return f"{h:016x}"


def mixed_text():
    turns = [turn for line in (ROOT / SOURCE).open(encoding="utf-8") for turn in json.loads(line)["turns"]]
    rng = SplitMix64(SEED)
    data = bytearray()
    while True:
        turn = turns[rng.next() % len(turns)]
        extra = EXTRAS[rng.next() % len(EXTRAS)]
        piece = (turn + "\n" + extra).encode()
        if len(data) + len(piece) > BYTES:
            return bytes(data)
        data += piece


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-tokenize", required=True, help="path of llama.cpp's llama-tokenize")
    parser.add_argument("--models", default=os.environ.get("SPECULA_MODELS",
                                                           str(pathlib.Path.home() / ".cache/specula/models")))
    args = parser.parse_args()
    text = mixed_text()
    result = {"generator": "llama.cpp llama-tokenize (vendored in llama-cpp-python 0.3.36), --ids",
              "source": SOURCE, "seed": SEED, "bytes": BYTES, "extras": EXTRAS, "block": BLOCK,
              "textLength": len(text), "textFNV1a64": fnv1a64(text), "models": {}}
    with tempfile.NamedTemporaryFile(suffix=".txt") as handle:
        handle.write(text)
        handle.flush()
        for name, file in FILES.items():
            entry = {"file": file}
            for special in (False, True):
                command = [args.llama_tokenize, "-m", os.path.join(args.models, file), "-f", handle.name, "--ids",
                           "--no-escape", "--log-disable"] + ([] if special else ["--no-parse-special"])
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                ids = json.loads(output.strip().splitlines()[-1])
                packed = struct.pack(f"<{len(ids)}i", *ids)
                blocks = [fnv1a64(packed[i:i + 4 * BLOCK]) for i in range(0, len(packed), 4 * BLOCK)]
                entry["special" if special else "plain"] = {"count": len(ids), "blocks": blocks}
                print(f"{name} parseSpecial={special}: {len(ids)} ids, {len(blocks)} blocks")
            result["models"][name] = entry
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT} ({len(text)} bytes of text, FNV-1a-64 {result['textFNV1a64']})")


if __name__ == "__main__":
    main()
